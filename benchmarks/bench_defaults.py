"""Defaults only: sklae's autoencoder against PCA and MLPRegressor on data nobody tuned for.

Every model runs with its defaults (``random_state`` aside); nothing here is
tuned per data set. Reconstruction of held-out rows, on:

* every ADBench table in ``<data-dir>/adbench`` (inliers and outliers alike),
  standardised on the training split, 70/30 split, ``code_size = ceil(d / 4)``;
  the tables are reported in two fixed halves, A (the 1st, 3rd, ... file in
  name order) and B (the others): design choices were made on one half and
  confirmed on the other, so both are shown;
* scikit-learn's bundled tables (breast cancer, wine, diabetes), the same way;
* digits (``/ 16``, 75/25 split, code 8), labelled: kNN(5) accuracy on codes;
* 20000-image samples of MNIST and Fashion-MNIST (code 8 and 32, the standard
  test split), labelled; with ``--conv`` also the convolutional network
  (``image_shape=(28, 28)``);
* with ``--rdatasets``, instead of all these: the 216 numeric tables of the
  Rdatasets collection that the ``pydataset`` package ships (economics,
  medicine, social science; see ``_rdatasets.py``), the tables' way, in two
  halves by name order (R-A, R-B). No design choice here looked at them.

Per set: test MSE of ``AutoencoderTransformer(code_size=k)`` against ``PCA(k)``
(with the paired per-row difference in standard errors, so that a ratio
just above 1 can be told from the noise of the test rows) and against
``MLPRegressor`` fit ``X -> X`` with the same layout (hidden layers
the autoencoder's fitted widths, the code, the widths reversed: ``(128, 64, k, 64,
128)`` on these tables; its defaults otherwise), epochs run, fit seconds,
and fit time in *reference epochs*: one epoch of a fixed bare PyTorch loop
(hidden layers (128, 64), the tables' default, Adam, batch 256, one float32
tensor sliced by a fresh permutation) over the same training rows, timed in the
same run, so the figure survives a machine whose speed drifts.

Usage::

    python benchmarks/bench_defaults.py                  # tables, digits, MNIST-likes (MLP)
    python benchmarks/bench_defaults.py --conv           # and the convolutional default
    python benchmarks/bench_defaults.py --quick          # tables and digits only
    python benchmarks/bench_defaults.py --rdatasets --no-mlp   # 216 tables never looked at
    python benchmarks/bench_defaults.py --quick --set validation_fraction=0.2   # not a default

Results go to ``benchmarks/results/defaults[_quick|_rdatasets].md``. ``--set
NAME=VALUE`` (repeatable) gives the autoencoder a parameter other than its
default, to measure what a setting would change on the same sets; the report
is then titled and named for it (``defaults_quick_validation_fraction-0.2.md``),
never taken for the defaults' own.
"""

import argparse
import ast
import math
import re
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from _common import Timer, add_common_arguments, format_provenance_markdown, parse_args, provenance
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_wine
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPRegressor
from sklearn.preprocessing import StandardScaler
from torch import nn

from sklae import AutoencoderTransformer
from sklae.datasets import load_mnist_like

SEED = 0
IMAGE_ROWS = 20_000
# A model's test error counts as worse than PCA's when the mean paired
# per-row difference exceeds this many standard errors (one-sided, about 2.3%
# of ties would pass by chance).
SIGNIFICANT_Z = 2.0
# Relative differences of test error below this are rounding, not a difference.
SAME_ERROR = 1e-4
REFERENCE_EPOCHS = 3


# ---------------------------------------------------------------------- data


def table_sets(data_dir):
    """(name, half, X_train, X_test, k) of the ADBench and scikit-learn tables."""
    files = sorted((Path(data_dir) / "adbench").glob("*.npz"))
    tables = [
        (path.stem, "A" if i % 2 == 0 else "B", np.load(path)["X"]) for i, path in enumerate(files)
    ]
    tables += [
        ("sklearn_breast_cancer", "sklearn", load_breast_cancer().data),
        ("sklearn_wine", "sklearn", load_wine().data),
        ("sklearn_diabetes", "sklearn", load_diabetes().data),
    ]
    yield from split_tables(tables)


def rdatasets_sets():
    """The Rdatasets tables (see ``_rdatasets.py``), halves R-A and R-B by name order."""
    from _rdatasets import numeric_tables

    tables = numeric_tables()
    yield from split_tables(
        (name, "R-A" if i % 2 == 0 else "R-B", tables[name])
        for i, name in enumerate(sorted(tables))
    )


def split_tables(tables):
    """Each (name, half, X) as a standardised 70/30 split with ``k = ceil(d / 4)``."""
    for name, half, X in tables:
        X_train, X_test = train_test_split(
            np.asarray(X, dtype=np.float64), test_size=0.3, random_state=SEED
        )
        scaler = StandardScaler().fit(X_train)
        k = math.ceil(X.shape[1] / 4)
        yield name, half, scaler.transform(X_train), scaler.transform(X_test), k, None, None


def image_sets(data_dir, quick):
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X / 16.0, y, random_state=SEED)
    yield "digits", "images", X_train, X_test, 8, y_train, y_test
    if quick:
        return
    for name in ("mnist", "fashion_mnist"):
        X_train, y_train = load_mnist_like(name, "train", data_dir=data_dir)
        X_test, y_test = load_mnist_like(name, "test", data_dir=data_dir)
        X_train, y_train = X_train[:IMAGE_ROWS].astype(np.float32), y_train[:IMAGE_ROWS]
        for k in (8, 32):
            yield name, "images", X_train, X_test.astype(np.float32), k, y_train, y_test


# ---------------------------------------------------------------------- models


def reference_epoch_seconds(X_train, k):
    """Median seconds of one epoch of a bare PyTorch loop over ``X_train``."""
    d = X_train.shape[1]
    generator = torch.Generator().manual_seed(SEED)
    with torch.random.fork_rng():
        torch.manual_seed(SEED)
        network = nn.Sequential(
            nn.Linear(d, 128),
            nn.ReLU(),
            nn.Linear(128, 64),
            nn.ReLU(),
            nn.Linear(64, k),
            nn.Linear(k, 64),
            nn.ReLU(),
            nn.Linear(64, 128),
            nn.ReLU(),
            nn.Linear(128, d),
        )
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-3)
    rows = torch.as_tensor(X_train, dtype=torch.float32)
    seconds = []
    for _ in range(REFERENCE_EPOCHS):
        start = time.perf_counter()
        order = torch.randperm(len(rows), generator=generator)
        for first in range(0, len(rows), 256):
            batch = rows.index_select(0, order[first : first + 256])
            optimizer.zero_grad(set_to_none=True)
            loss = nn.functional.mse_loss(network(batch), batch)
            loss.backward()
            optimizer.step()
        seconds.append(time.perf_counter() - start)
    return float(np.median(seconds))


def row_errors(X, reconstruction):
    return np.mean((np.asarray(X, dtype=np.float64) - reconstruction) ** 2, axis=1)


def mse(X, reconstruction):
    return float(row_errors(X, reconstruction).mean())


def paired_z(errors, reference_errors):
    """Mean of the paired per-row differences in standard errors (> 0: worse than the reference).

    A test split is a sample too: a ratio just above 1 is a loss only if the rows
    agree on it.
    """
    difference = errors - reference_errors
    spread = difference.std(ddof=1)
    if abs(difference.mean()) <= SAME_ERROR * reference_errors.mean() or spread == 0:
        # The same model (a network that kept PCA's start), up to float32 rounding.
        return 0.0
    return float(difference.mean() / (spread / math.sqrt(len(difference))))


def knn_accuracy(codes_train, y_train, codes_test, y_test):
    if y_train is None:
        return None
    model = KNeighborsClassifier(n_neighbors=5).fit(codes_train, y_train)
    return float(model.score(codes_test, y_test))


def run_set(name, half, X_train, X_test, k, y_train, y_test, conv, with_mlp, settings=None):
    row = {"set": name, "half": half, "shape": X_train.shape, "k": k}
    row["reference_epoch_s"] = reference_epoch_seconds(X_train, k)

    with Timer() as timer:
        pca = PCA(k, random_state=SEED).fit(X_train)
    pca_errors = row_errors(X_test, pca.inverse_transform(pca.transform(X_test)))
    row["pca_mse"] = float(np.mean(pca_errors))
    row["pca_s"] = timer.seconds
    row["pca_knn"] = knn_accuracy(pca.transform(X_train), y_train, pca.transform(X_test), y_test)

    variants = [("sklae", {})]
    widths = None
    if conv:
        variants.append(("sklae_conv", {"image_shape": (28, 28)}))
    for label, extra in variants:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with Timer() as timer:
                model = AutoencoderTransformer(
                    code_size=k, random_state=SEED, **extra, **(settings or {})
                )
                model.fit(X_train)
        # score is the mean of score_samples: one pass over the test rows gives both.
        model_errors = -model.score_samples(X_test)
        row[f"{label}_mse"] = float(np.mean(model_errors))
        row[f"{label}_z"] = paired_z(model_errors, pca_errors)
        row[f"{label}_s"] = timer.seconds
        row[f"{label}_epochs"] = model.n_iter_
        row[f"{label}_warnings"] = sorted({type(w.message).__name__ for w in caught})
        row[f"{label}_knn"] = knn_accuracy(
            model.transform(X_train), y_train, model.transform(X_test), y_test
        )
        if label == "sklae":
            widths = model.hidden_layer_sizes_

    if with_mlp:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            with Timer() as timer:
                # The dense autoencoder's layout: its widths, the code, the widths reversed.
                layout = (*widths, k, *reversed(widths))
                mlp = MLPRegressor(hidden_layer_sizes=layout, random_state=SEED)
                mlp.fit(X_train, X_train)
        row["mlp_mse"] = mse(X_test, mlp.predict(X_test))
        row["mlp_s"] = timer.seconds
        row["mlp_epochs"] = mlp.n_iter_
    return row


# ---------------------------------------------------------------------- report


def geometric_mean(values):
    values = [v for v in values if v is not None]
    return float(np.exp(np.mean(np.log(values)))) if values else float("nan")


def fmt(value, spec=".4f"):
    return "" if value is None else format(value, spec)


def summary_lines(rows, label):
    lines = []
    groups = [("A", "ADBench half A"), ("B", "ADBench half B"), ("sklearn", "scikit-learn")]
    groups.append((("A", "B", "sklearn"), "all tables"))
    groups += [("R-A", "Rdatasets half R-A"), ("R-B", "Rdatasets half R-B")]
    groups.append((("R-A", "R-B"), "all Rdatasets tables"))
    for halves, title in groups:
        chosen = [
            r for r in rows if r["half"] in (halves if isinstance(halves, tuple) else (halves,))
        ]
        if not chosen:
            continue
        to_pca = [r[f"{label}_mse"] / r["pca_mse"] for r in chosen]
        significantly_worse = sum(r[f"{label}_z"] > SIGNIFICANT_Z for r in chosen)
        line = (
            f"| {title} | {len(chosen)} | {geometric_mean(to_pca):.3f} | {max(to_pca):.3f} | "
            f"{sum(v <= 1.0 + 1e-6 for v in to_pca)} of {len(chosen)} | "
            f"{significantly_worse} of {len(chosen)} |"
        )
        if "mlp_mse" in chosen[0]:
            to_mlp = [r[f"{label}_mse"] / r["mlp_mse"] for r in chosen]
            time_to_mlp = [r[f"{label}_s"] / r["mlp_s"] for r in chosen]
            line += f" {np.median(to_mlp):.3f} | {np.median(time_to_mlp):.3f} |"
        else:
            line += " | |"
        lines.append(line)
    return lines


def settings_text(settings):
    """``name=value, ...`` of the parameters given with ``--set``."""
    return ", ".join(f"{name}={value!r}" for name, value in settings.items())


def format_report(rows, stamp, conv, settings=None):
    labels = ["sklae"] + (["sklae_conv"] if conv else [])
    settings = settings or {}
    if settings:
        title = f"# Not the defaults ({settings_text(settings)}): AutoencoderTransformer"
        model = (
            f"`AutoencoderTransformer(code_size=k, random_state=0, {settings_text(settings)})`, "
            "every other parameter at its default (a setting measured, not the defaults)"
        )
    else:
        title = "# Defaults only: AutoencoderTransformer"
        model = (
            "`AutoencoderTransformer(code_size=k, random_state=0)` with every other "
            "parameter at its default"
        )
    out = [
        f"{title} against PCA and MLPRegressor",
        "",
        format_provenance_markdown(stamp),
        f"Held-out reconstruction MSE; `sklae` is {model}. `ref ep` is the fit "
        "time in epochs of a bare PyTorch loop over the same rows, timed in this run. "
        "`- PCA (SE)` is the mean of the paired per-row differences of test error from PCA's "
        "in standard errors of that mean (positive: worse than PCA): a test split is a "
        "sample too, and a ratio just above 1 is a loss only when the rows agree on it.",
        "",
        "## Summary over the tables",
        "",
        "| tables | n | geometric mean of MSE / PCA's | worst MSE / PCA's | at most PCA's | "
        f"worse than PCA by > {SIGNIFICANT_Z:g} SE | "
        "median MSE / MLPRegressor's | median time / MLPRegressor's |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        *summary_lines([r for r in rows if r["half"] != "images"], "sklae"),
        "",
        "## Every set",
        "",
        "| set | half | rows x d | k | PCA MSE | MLPRegressor MSE | model | MSE | / PCA | "
        "- PCA (SE) | / MLPRegressor | epochs | fit s | ref ep | kNN PCA | kNN model | warnings |",
        "|---|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        for label in labels:
            if f"{label}_mse" not in r:
                continue
            ratio_mlp = r[f"{label}_mse"] / r["mlp_mse"] if "mlp_mse" in r else None
            out.append(
                f"| {r['set']} | {r['half']} | {r['shape'][0]} x {r['shape'][1]} | {r['k']} | "
                f"{r['pca_mse']:.4f} | {fmt(r.get('mlp_mse'))} | {label} | "
                f"{r[f'{label}_mse']:.4f} | {r[f'{label}_mse'] / r['pca_mse']:.3f} | "
                f"{r[f'{label}_z']:+.2f} | {fmt(ratio_mlp, '.3f')} | {r[f'{label}_epochs']} | "
                f"{r[f'{label}_s']:.1f} | "
                f"{r[f'{label}_s'] / r['reference_epoch_s']:.1f} | {fmt(r['pca_knn'], '.3f')} | "
                f"{fmt(r[f'{label}_knn'], '.3f')} | {', '.join(r[f'{label}_warnings'])} |"
            )
    return "\n".join(out) + "\n"


def parse_setting(text):
    """``"name=value"`` as ``(name, value)``, the value read as a Python literal if it is one."""
    name, equals, value = text.partition("=")
    if not equals or not name.isidentifier():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    try:
        return name, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return name, value


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser, threads=None)
    parser.add_argument("--quick", action="store_true", help="tables and digits only")
    parser.add_argument("--conv", action="store_true", help="also the convolutional default")
    parser.add_argument("--no-mlp", action="store_true", help="skip MLPRegressor")
    parser.add_argument(
        "--rdatasets",
        action="store_true",
        help="only the Rdatasets tables that pydataset ships (see _rdatasets.py)",
    )
    parser.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        type=parse_setting,
        help="give the autoencoder this parameter (not a default; repeatable), "
        "e.g. validation_fraction=0.2",
    )
    args = parse_args(parser, argv)
    settings = dict(args.settings)
    if args.threads:
        torch.set_num_threads(args.threads)
    stamp = provenance(
        extra_packages=("pydataset",) if args.rdatasets else (), threads=torch.get_num_threads()
    )

    rows = []
    if args.rdatasets:
        sets = rdatasets_sets()
    else:
        sets = [*table_sets(args.data_dir), *image_sets(args.data_dir, args.quick)]
    for name, half, X_train, X_test, k, y_train, y_test in sets:
        conv = args.conv and name in ("mnist", "fashion_mnist")
        row = run_set(
            name,
            half,
            X_train,
            X_test,
            k,
            y_train,
            y_test,
            conv,
            with_mlp=not args.no_mlp,
            settings=settings,
        )
        rows.append(row)
        print(
            f"{name:24s} {half:8s} k={k:3d} sklae/PCA={row['sklae_mse'] / row['pca_mse']:.3f} "
            f"epochs={row['sklae_epochs']} fit={row['sklae_s']:.1f}s",
            flush=True,
        )

    stem = (
        "defaults_rdatasets" if args.rdatasets else "defaults_quick" if args.quick else "defaults"
    )
    for name, value in settings.items():
        stem += "_" + re.sub(r"[^A-Za-z0-9._]+", "-", f"{name}-{value}").strip("-")
    output = args.output_dir / f"{stem}.md"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(format_report(rows, stamp, args.conv, settings))
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
