"""What every benchmark script shares: options, the provenance stamp, a timer.

The scripts run as ``python benchmarks/bench_NAME.py``, which puts this folder on
``sys.path``, so they import this module as ``_common``.

Options (:func:`add_common_arguments`, resolved by :func:`parse_args`):

* ``--data-dir``: the folder of the data files, default ``$SKLAE_DATA_DIR``, else
  ``../shared/data`` relative to the repository root (:func:`default_data_dir`);
* ``--output-dir``: where result files go, default ``benchmarks/results``;
* ``--threads``: torch threads;
* ``--device``: ``cpu`` or ``cuda``, for the scripts that support it.

Provenance: :func:`provenance` returns a dict (command, git state, date, package
versions, threads, device, hardware). Every result file starts with it, in the
form its format allows: a bullet list under the title of a markdown file
(:func:`format_provenance_markdown`), ``#`` comment lines at the top of a CSV
file (:func:`format_provenance_comments`), a ``"provenance"`` key of a JSON
object, and a ``Provenance`` text chunk of a PNG file (:func:`png_metadata`).
Result files report measurements and plain comparisons only; goals live in the
issues and notes, not here.
"""

import json
import os
import platform
import shlex
import subprocess
import sys
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

BENCHMARKS_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCHMARKS_DIR.parent
RESULTS_DIR = BENCHMARKS_DIR / "results"

# Reported in every stamp, by distribution name.
CORE_PACKAGES = ("sklae", "torch", "scikit-learn", "skorch", "numpy")
# Distribution name -> import name, where they differ.
IMPORT_NAMES = {
    "scikit-learn": "sklearn",
    "scikit-image": "skimage",
    "dask-ml": "dask_ml",
}


# --------------------------------------------------------------------- options


def default_data_dir():
    """``$SKLAE_DATA_DIR``, else ``../shared/data`` relative to the repository root.

    The same rule as :func:`sklae.datasets.default_data_dir`, but anchored at this
    checkout's root rather than at the imported ``sklae`` package, so that it also
    holds when sklae is installed elsewhere than in this source tree.
    """
    if os.environ.get("SKLAE_DATA_DIR"):
        return Path(os.environ["SKLAE_DATA_DIR"])
    return REPO_ROOT.parent / "shared" / "data"


def add_common_arguments(
    parser,
    *,
    data_dir=True,
    device=False,
    threads=None,
    threads_help="torch threads (default: %(default)s; None = torch's own choice)",
):
    """Add ``--data-dir`` (if ``data_dir``), ``--output-dir``, ``--threads`` and
    ``--device`` (if ``device``) to the argparse ``parser``; ``threads`` is the
    default thread count. Read the options back with :func:`parse_args`."""
    if data_dir:
        parser.add_argument(
            "--data-dir",
            type=Path,
            default=None,
            help="folder of the data files (default: $SKLAE_DATA_DIR, else ../shared/data "
            f"relative to the repository root; now {default_data_dir()})",
        )
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=None,
        help="folder for the result files (default: benchmarks/results)",
    )
    parser.add_argument("--threads", type=int, default=threads, help=threads_help)
    if device:
        parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    return parser


def parse_args(parser, argv=None):
    """``parser.parse_args(argv)`` with the common options resolved.

    ``args.output_dir`` becomes a path (``benchmarks/results`` unless given) and
    ``args.output_dir_given`` says whether it was given; ``args.data_dir`` becomes
    a path (:func:`default_data_dir` unless given).
    """
    args = parser.parse_args(argv)
    args.output_dir_given = args.output_dir is not None
    if args.output_dir is None:
        args.output_dir = RESULTS_DIR
    if getattr(args, "data_dir", False) is None:
        args.data_dir = default_data_dir()
    return args


def set_threads(threads):
    """``torch.set_num_threads(threads)`` unless ``threads`` is None."""
    if threads:
        import torch

        torch.set_num_threads(threads)


# ---------------------------------------------------------------------- timing


class Timer:
    """Wall-clock seconds of a ``with`` block, in ``.seconds``.

    On a CUDA ``device`` it waits for the device's queued work at both ends, so
    that asynchronous kernels count where they were launched.
    """

    def __init__(self, device="cpu"):
        self.device = str(device)
        self.seconds = None

    def _synchronize(self):
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.synchronize()

    def __enter__(self):
        self._synchronize()
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc_info):
        self._synchronize()
        self.seconds = time.perf_counter() - self._start


# ------------------------------------------------------------------ provenance


def command_line(argv=None, script=None):
    """The command that ran: ``python`` and ``sys.argv``, shell-quoted.

    When a script's ``main(argv)`` is called from Python with an explicit
    ``argv``, pass it with ``script=__file__``: the command is then that script
    (relative to the current folder) followed by ``argv``.
    """
    words = sys.argv if argv is None else [os.path.relpath(script or sys.argv[0]), *argv]
    return "python " + shlex.join(words)


def git_state():
    """``(sha, dirty, changed paths)`` of the checkout; Nones outside a git checkout.

    ``dirty`` follows ``git status --porcelain`` (untracked files included),
    ignoring ``benchmarks/results/``: the files a run writes do not make it dirty.
    """

    def git(*arguments):
        return subprocess.run(
            ["git", "-C", str(REPO_ROOT), *arguments],
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    try:
        sha = git("rev-parse", "HEAD").strip()
        status = git("status", "--porcelain", "--", ".", ":(top,exclude)benchmarks/results")
    except (OSError, subprocess.CalledProcessError):
        return None, None, []
    changed = [line[3:] for line in status.splitlines() if line.strip()]
    return sha, bool(changed), changed


def package_version(name):
    """Version of the distribution ``name``: the imported module's ``__version__``
    if it is imported, else the installed metadata; None if not installed."""
    module = sys.modules.get(IMPORT_NAMES.get(name, name.replace("-", "_")))
    version = getattr(module, "__version__", None)
    if version:
        return str(version)
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def cpu_model():
    """The CPU's model name, from ``/proc/cpuinfo`` where there is one."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Hardware", "Model") and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_names():
    """Names of the CUDA devices torch sees (an empty list without one)."""
    import torch

    if not torch.cuda.is_available():
        return []
    return [torch.cuda.get_device_name(index) for index in range(torch.cuda.device_count())]


def provenance(extra_packages=(), device="cpu", threads=None, argv=None, script=None):
    """Where a result comes from, as a JSON-serialisable dict.

    Parameters
    ----------
    extra_packages : sequence of str
        Distribution names of the baseline packages this run used (``"pyod"``,
        ``"scikit-image"``, ``"dask-ml"``...), reported after the core ones
        (Python, sklae, torch, scikit-learn, skorch, numpy). Pass only those the
        run imported.
    device : str
        The torch device the run trained on.
    threads : int, optional
        Torch threads of the run; default ``torch.get_num_threads()`` now.
    argv, script : optional
        See :func:`command_line`; by default the command is ``sys.argv``.
    """
    import torch

    sha, dirty, changed = git_state()
    versions = {"python": platform.python_version()}
    for name in (*CORE_PACKAGES, *extra_packages):
        versions[name] = package_version(name) or "not installed"
    try:
        usable_cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        usable_cpus = os.cpu_count()
    return {
        "command": command_line(argv, script),
        "git_sha": sha,
        "git_dirty": dirty,
        "git_changed_paths": changed,
        "date_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": versions,
        "torch_threads": threads if threads else torch.get_num_threads(),
        "device": str(device),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "usable_cpus": usable_cpus,
        "gpus": gpu_names(),
        "platform": platform.platform(),
    }


def provenance_lines(stamp):
    """The stamp as ``key: value`` lines, the text of every format."""
    if stamp["git_sha"] is None:
        git = "unknown (not a git checkout)"
    elif stamp["git_dirty"]:
        changed = stamp["git_changed_paths"]
        shown = ", ".join(changed[:5]) + (", ..." if len(changed) > 5 else "")
        git = (
            f"{stamp['git_sha']}, working tree dirty ({len(changed)} changed "
            f"path(s) outside benchmarks/results/: {shown})"
        )
    else:
        git = f"{stamp['git_sha']}, working tree clean"
    versions = ", ".join(f"{name} {version}" for name, version in stamp["versions"].items())
    gpus = ", ".join(stamp["gpus"]) or "none"
    return [
        f"command: {stamp['command']}",
        f"git: {git}",
        f"date (UTC): {stamp['date_utc']}",
        f"versions: {versions}",
        f"torch threads: {stamp['torch_threads']}; device: {stamp['device']}",
        f"CPU: {stamp['cpu']} ({stamp['cpu_count']} logical CPUs, "
        f"{stamp['usable_cpus']} usable); GPU: {gpus}; {stamp['platform']}",
    ]


def format_provenance_markdown(stamp):
    """The stamp as a markdown block (no heading), to follow a file's title."""
    lines = provenance_lines(stamp)
    command = lines[0].removeprefix("command: ")
    lines[0] = f"command: `{command}`"
    return "\n".join(["Provenance:", "", *(f"- {line}" for line in lines), ""])


def format_provenance_comments(stamp, prefix="# "):
    """The stamp as comment lines (``# key: value``), for the top of a CSV file.

    Readers skip them with ``pandas.read_csv(path, comment="#")`` or
    ``numpy.genfromtxt`` (whose default ``comments`` is ``#``).
    """
    return "\n".join(prefix + line for line in ["provenance", *provenance_lines(stamp)]) + "\n"


def png_metadata(stamp):
    """``savefig(..., metadata=png_metadata(stamp))``: the stamp as a PNG text chunk."""
    return {"Provenance": json.dumps(stamp, indent=1)}
