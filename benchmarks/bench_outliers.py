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

Usage::

    python benchmarks/bench_outliers.py            # all 20 sets, 3 seeds
    python benchmarks/bench_outliers.py --quick    # 4 small sets, 1 seed, smoke test

Data come from ``../shared/data/adbench`` relative to the repository root, or
from ``--data-dir`` / the ``SKLAE_DATA_DIR`` environment variable (the folder
that holds ``adbench/``). Results go to ``benchmarks/results/outliers*``
(``--output-dir``).
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

from sklae import AutoencoderOutlierDetector

QUICK_SETS = ("14_glass", "42_WBC", "45_wine", "6_cardio")
OURS = "sklae_AE"
BASELINES = ("IForest", "LOF", "PCArec", "pyod_AE")


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


def pyod_available():
    try:
        import pyod  # noqa: F401
    except ImportError:
        return False
    return True


# Each method: (X, seed) -> outlyingness, larger = more abnormal.
def sklae_ae(X, seed):
    return -AutoencoderOutlierDetector(random_state=seed).fit(X).score_samples(X)


def iforest(X, seed):
    return -IsolationForest(random_state=seed).fit(X).score_samples(X)


def lof(X, seed):
    detector = LocalOutlierFactor()
    detector.fit(X)
    return -detector.negative_outlier_factor_


def pca_reconstruction(X, seed):
    X_scaled = StandardScaler().fit_transform(X)
    pca = PCA(math.ceil(X.shape[1] / 2)).fit(X_scaled)
    reconstruction = pca.inverse_transform(pca.transform(X_scaled))
    return np.sum((X_scaled - reconstruction) ** 2, axis=1)


def pyod_ae(X, seed):
    from pyod.models.auto_encoder import AutoEncoder

    X_scaled = StandardScaler().fit_transform(X)
    detector = AutoEncoder(random_state=seed, verbose=0)
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


def write_markdown(path, table, set_names, method_names, stamp, seeds):
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
            best = max(table[name, m][metric].mean() for m in method_names)
            cells = []
            for method in method_names:
                values = table[name, method][metric]
                cell = f"{values.mean():.3f} ± {values.std():.3f}"
                cells.append(f"**{cell}**" if values.mean() == best else cell)
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

    lines += ["## Seconds (fit + scoring), median over seeds", ""]
    lines.append("| data set | n x d | " + " | ".join(method_names) + " |")
    lines.append("|---|---:|" + "---:|" * len(method_names))
    for name in set_names:
        shape = table[name, method_names[0]].get("shape", "")
        cells = [f"{np.median(table[name, m]['seconds']):.3f}" for m in method_names]
        lines.append(f"| {name} | {shape} | " + " | ".join(cells) + " |")
    medians = {
        m: np.median([np.median(table[n, m]["seconds"]) for n in set_names]) for m in method_names
    }
    lines.append(
        "| **median over sets** | | "
        + " | ".join(f"**{medians[m]:.3f}**" for m in method_names)
        + " |"
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
    lines.append("")
    path.write_text("\n".join(lines))


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
    add_common_arguments(parser, threads=1, threads_help="torch threads (default 1)")
    args = parse_args(parser, argv)

    set_threads(args.threads)
    sets = load_sets(args.data_dir, args.quick)
    seeds = range(1 if args.quick else args.seeds)
    methods = {
        OURS: sklae_ae,
        "IForest": iforest,
        "LOF": lof,
        "PCArec": pca_reconstruction,
    }
    if not args.no_pyod and pyod_available():
        methods["pyod_AE"] = pyod_ae
    stamp = provenance(
        extra_packages=("pyod",) if "pyod_AE" in methods else (), argv=argv, script=__file__
    )
    records = run(sets, seeds, methods)

    set_names, method_names = list(sets), list(methods)
    table = summarise(records, set_names, method_names)
    for name, (X, _) in sets.items():
        table[name, method_names[0]]["shape"] = f"{X.shape[0]} x {X.shape[1]}"
    output_dir = args.output_dir
    output_dir.mkdir(parents=True, exist_ok=True)
    stem = "outliers_quick" if args.quick else "outliers"
    write_markdown(output_dir / f"{stem}.md", table, set_names, method_names, stamp, seeds)
    write_plot(output_dir / f"{stem}.png", table, set_names, method_names, stamp)
    with open(output_dir / f"{stem}.csv", "w") as handle:
        handle.write(format_provenance_comments(stamp))
        handle.write("data_set,method,seed,roc_auc,average_precision,seconds\n")
        for record in records:
            handle.write("{},{},{},{:.6f},{:.6f},{:.6f}\n".format(*record))
    print((output_dir / f"{stem}.md").read_text())


if __name__ == "__main__":
    main()
