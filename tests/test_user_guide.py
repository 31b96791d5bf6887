"""Every Python code block of the user guide runs, after the guide's own preamble.

``docs/user_guide/index.rst`` opens with the block the pages assume (the digits
as ``X``, a split, the estimators imported); each page's blocks then run in
order in one namespace, as a reader would paste them. A block that is a file to
run elsewhere (its first line names it, as ``# train.py`` for ``torchrun``) is
skipped.
"""

import re
import warnings
from pathlib import Path

import pytest
from sklearn.exceptions import ConvergenceWarning

from sklae import DivergenceWarning

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "user_guide"


def python_blocks(text):
    """The dedented bodies of the ``.. code-block:: python`` directives of ``text``."""
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        match = re.match(r"(\s*)\.\. code-block:: python\s*$", lines[i])
        i += 1
        if not match:
            continue
        indent, body = len(match.group(1)), []
        while i < len(lines) and (not lines[i].strip() or lines[i].startswith(" " * (indent + 1))):
            body.append(lines[i])
            i += 1
        depth = min(len(line) - len(line.lstrip()) for line in body if line.strip())
        blocks.append("\n".join(line[depth:] for line in body).strip() + "\n")
    return blocks


PREAMBLE = python_blocks((GUIDE / "index.rst").read_text())[0]
PAGES = sorted(path for path in GUIDE.glob("*.rst") if path.name != "index.rst")


def is_a_file_to_run_elsewhere(block):
    return re.match(r"#\s*[\w.-]+\.py\s*$", block.splitlines()[0]) is not None


def test_every_page_with_code_is_collected():
    assert sum(bool(python_blocks(page.read_text())) for page in PAGES) >= 12


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.stem)
def test_user_guide_blocks_run(page, tmp_path, monkeypatch):
    blocks = [b for b in python_blocks(page.read_text()) if not is_a_file_to_run_elsewhere(b)]
    if not blocks:
        pytest.skip("no Python code on this page")
    monkeypatch.chdir(tmp_path)  # blocks that write files write them here
    # MLflow logs to a local store in place of the reader's tracking server.
    store = (tmp_path / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", store)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    namespace = {"__name__": "__user_guide__"}
    with warnings.catch_warnings():
        # As for the README: a snippet that ends in a ConvergenceWarning or a
        # DivergenceWarning as written is a bad example.
        warnings.simplefilter("error", ConvergenceWarning)
        warnings.simplefilter("error", DivergenceWarning)
        exec(compile(PREAMBLE, "index.rst", "exec"), namespace)
        for number, block in enumerate(blocks):
            try:
                exec(compile(block, f"{page.name} block {number}", "exec"), namespace)
            except Exception as error:
                raise AssertionError(f"{page.name}, block {number} fails:\n{block}") from error
