"""Sphinx configuration of the sklae documentation (built by ``make docs``).

The build is offline: no intersphinx inventories are fetched, and the gallery
uses scikit-learn's bundled data sets or synthetic data only.
"""

import os
import re
import sys
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

DOCS = Path(__file__).resolve().parent
REPOSITORY = DOCS.parent
sys.path.insert(0, str(REPOSITORY))

# One torch/BLAS thread: the examples train small networks, for which threads
# cost more than they save, and oversubscribe a shared machine badly. Set before
# torch is imported, and on torch itself for a build started without `make docs`.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import torch  # noqa: E402

import sklae  # noqa: E402

torch.set_num_threads(1)

project = "sklae"
author = "the sklae developers"
copyright = "the sklae developers"  # noqa: A001
version = release = sklae.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "**.ipynb_checkpoints", "auto_examples/*.md"]
templates_path = ["_templates"]

# Offline build: no inventories are downloaded, so references to other projects
# are written as literal names rather than links.
intersphinx_mapping = {}

autosummary_generate = True
autodoc_typehints = "none"

numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
# Without inventories, cross-references to numpy, scikit-learn or torch types in
# parameter lists cannot resolve; keep type descriptions as plain text.
numpydoc_xref_param_type = False
numpydoc_validation_checks = set()

# Cross-references into other projects (:class:`~sklearn.decomposition.PCA`,
# :func:`torch.export.load`, ...) cannot resolve offline; ignore those only.
nitpicky = False
suppress_warnings = ["myst.header"]

myst_heading_anchors = 3
myst_enable_extensions = ["dollarmath"]

sphinx_gallery_conf = {
    "examples_dirs": str(REPOSITORY / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": True,
    "remove_config_comments": True,
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib",),
    "doc_module": ("sklae",),
    "backreferences_dir": "generated/backreferences",
    "abort_on_example_error": True,
    "only_warn_on_example_error": False,
    "show_memory": False,
    "min_reported_time": 0,
}

html_theme = "pydata_sphinx_theme"
html_title = f"sklae {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 6,
    # The theme would otherwise look up a version switcher and icons online.
    "icon_links": [],
}
html_static_path = []
html_show_sourcelink = False

# Docstrings follow scikit-learn's conventions, written for scikit-learn's own
# site: ``:term:`fit``` points into its glossary, inherited methods link to its
# user guide, and fitted attributes are written bare (``n_features_in_``), which
# reStructuredText would read as a link. Offline, none of those targets exist:
# render them as literal text instead.
FOREIGN_TERM = re.compile(r":term:`([^`<]*?)(?:\s*<[^`>]*>)?`")
FOREIGN_LABEL = re.compile(r":ref:`([^`<]*?)(?:\s*<[^`>]*>)?`")
BARE_ATTRIBUTE = re.compile(r"(?<![`\w.*])([A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)*_)(?![`\w])")


def foreign_label_text(match):
    # A bare :ref:`label` shows the label's title, which only scikit-learn's site knows.
    has_title = "<" in match.group(0)
    return match.group(1).strip() if has_title else "scikit-learn's documentation"


def literal_foreign_references(app, what, name, obj, options, lines):
    from_sklearn = (getattr(obj, "__module__", None) or "").startswith("sklearn")
    for index, line in enumerate(lines):
        if line.lstrip().startswith((">>>", "...")):
            continue
        line = FOREIGN_TERM.sub(lambda match: f"``{match.group(1).strip()}``", line)
        if from_sklearn:
            line = FOREIGN_LABEL.sub(foreign_label_text, line)
        lines[index] = BARE_ATTRIBUTE.sub(r"``\1``", line)


def skip_builtin_members(app, what, name, obj, skip, options):
    """Leave out what exceptions inherit from Python itself (``args``, ``with_traceback``)."""
    owner = getattr(obj, "__objclass__", None)
    if owner is not None and owner.__module__ == "builtins":
        return True
    return None


def setup(app):
    app.connect("autodoc-process-docstring", literal_foreign_references)
    app.connect("autodoc-skip-member", skip_builtin_members)


warnings.filterwarnings(
    "ignore",
    message="Matplotlib is currently using agg",
    category=UserWarning,
)


def copy_benchmark_results():
    """Copy benchmarks/results (markdown tables and plots) into the docs source.

    Each ``NAME.md`` becomes a page. Plots it does not show itself are added at
    its end: ``NAME.png`` and ``NAME_*.png`` (each plot goes to the page with the
    longest matching name). Results added later are picked up by the next build.
    """
    source = REPOSITORY / "benchmarks" / "results"
    target = DOCS / "benchmark_results"
    target.mkdir(exist_ok=True)
    for stale in target.iterdir():
        stale.unlink()
    tables = {table.stem: table.read_text(encoding="utf-8") for table in source.glob("*.md")}
    shown = "\n".join(tables.values())
    extra_plots = {stem: [] for stem in tables}
    for plot in sorted(source.glob("*.png")):
        if plot.name in shown:
            continue
        owners = [stem for stem in tables if plot.stem == stem or plot.stem.startswith(stem + "_")]
        if owners:
            extra_plots[max(owners, key=len)].append(plot)
    for stem, text in sorted(tables.items()):
        if extra_plots[stem]:
            text += "\n\n## Plots\n"
            for plot in extra_plots[stem]:
                text += f"\n![{plot.stem}]({plot.name})\n"
        for plot in source.glob("*.png"):
            if plot.name in text:
                (target / plot.name).write_bytes(plot.read_bytes())
        (target / f"{stem}.md").write_text(text, encoding="utf-8")


copy_benchmark_results()


def write_api_reference():
    """Write api.rst: one autosummary entry per name in the public ``__all__`` lists.

    Generated, so that a public name added to sklae or a new public module
    (``sklae/NAME.py``) is documented without editing this page.
    """
    import importlib
    import inspect
    import pkgutil

    sections = {"Estimators": [], "Functions": [], "Exceptions and warnings": []}
    for name in sklae.__all__:
        obj = getattr(sklae, name)
        if inspect.isclass(obj) and issubclass(obj, BaseException):
            sections["Exceptions and warnings"].append(("class", name))
        elif inspect.isclass(obj):
            sections["Estimators"].append(("class", name))
        elif callable(obj):
            sections["Functions"].append(("function", name))
    at_top_level = {getattr(sklae, name) for name in sklae.__all__}
    lines = [
        "API reference",
        "=============",
        "",
        "Every public name of sklae. The estimators also have the methods every",
        "scikit-learn estimator has (``get_params``, ``set_params``, ``fit_transform``,",
        "``set_output``, ...), listed on their pages.",
        "",
        ".. currentmodule:: sklae",
        "",
    ]

    def entries(kind_and_names):
        block = []
        for kind in ("class", "function"):
            names = [name for entry_kind, name in kind_and_names if entry_kind == kind]
            if names:
                block += [
                    ".. autosummary::",
                    "   :toctree: generated",
                    f"   :template: {kind}.rst",
                    "",
                ]
                block += [f"   {name}" for name in names] + [""]
        return block

    for title, kind_and_names in sections.items():
        if kind_and_names:
            lines += [title, "-" * len(title), ""] + entries(kind_and_names)
    for info in sorted(pkgutil.iter_modules(sklae.__path__), key=lambda info: info.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"sklae.{info.name}")
        kind_and_names = []
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if obj in at_top_level or not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            kind_and_names.append(("class" if inspect.isclass(obj) else "function", name))
        if not kind_and_names:
            continue
        title = f":mod:`{module.__name__}`"
        lines += [title, "-" * len(title), "", f".. automodule:: {module.__name__}", ""]
        lines += [f".. currentmodule:: {module.__name__}", ""] + entries(kind_and_names)
    text = "\n".join(lines)
    target = DOCS / "api.rst"
    if not target.exists() or target.read_text(encoding="utf-8") != text:
        target.write_text(text, encoding="utf-8")


write_api_reference()


def write_practical_matters():
    """The user guide's last toctree, with the optional pages that exist."""
    entries = ["choosing", "training", "serving", "distributed"]
    entries += [f"../{page.stem}" for page in [DOCS / "bad_inputs.md"] if page.exists()]
    text = "\n".join(
        [".. toctree::", "   :maxdepth: 1", "   :caption: Practical matters", ""]
        + [f"   {entry}" for entry in entries]
        + [""]
    )
    target = DOCS / "user_guide" / "practical_matters.inc"
    if not target.exists() or target.read_text(encoding="utf-8") != text:
        target.write_text(text, encoding="utf-8")


write_practical_matters()
