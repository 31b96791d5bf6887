"""The demo behind ``python -m sklae``: an autoencoder against PCA on digits."""

import argparse
import time
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier

from ._transformer import AutoencoderTransformer


def compare_on_digits(code_size=8, random_state=0):
    """Fit PCA and an autoencoder on digits; score them on a held-out quarter.

    Returns a list of dicts, one per method, with the test reconstruction MSE,
    the accuracy of a logistic regression and of 5-nearest neighbours trained
    on the codes, and the fit seconds.
    """
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, random_state=random_state
    )
    methods = {
        f"PCA({code_size})": PCA(n_components=code_size, random_state=random_state),
        f"AutoencoderTransformer({code_size})": AutoencoderTransformer(
            code_size=code_size, random_state=random_state
        ),
    }
    rows = []
    for name, reducer in methods.items():
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            reducer.fit(X_train)
        fit_seconds = time.perf_counter() - start
        codes_train, codes_test = reducer.transform(X_train), reducer.transform(X_test)
        reconstruction = reducer.inverse_transform(codes_test)
        logistic = LogisticRegression(max_iter=2000).fit(codes_train, y_train)
        neighbours = KNeighborsClassifier(5).fit(codes_train, y_train)
        rows.append(
            {
                "method": name,
                "test MSE": float(np.mean((X_test - reconstruction) ** 2)),
                "logistic acc": logistic.score(codes_test, y_test),
                "kNN(5) acc": neighbours.score(codes_test, y_test),
                "fit s": fit_seconds,
            }
        )
    return rows


def format_table(rows):
    """Markdown table of ``compare_on_digits`` rows."""
    header = ["method", "test MSE", "logistic acc", "kNN(5) acc", "fit s"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * 4) + "|"]
    for row in rows:
        cells = [
            row["method"],
            f"{row['test MSE']:.4f}",
            f"{row['logistic acc']:.3f}",
            f"{row['kNN(5) acc']:.3f}",
            f"{row['fit s']:.2f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m sklae",
        description="Compare an autoencoder with PCA on scikit-learn's digits (8x8 images).",
    )
    parser.add_argument("--code-size", type=int, default=8, help="code width (default 8)")
    parser.add_argument("--random-state", type=int, default=0)
    args = parser.parse_args(argv)
    print(
        f"Digits (1797 images of 8x8 pixels scaled to [0, 1]), 75/25 split, "
        f"code size {args.code_size}:\n"
    )
    print(format_table(compare_on_digits(args.code_size, args.random_state)))
    print("\nLower test MSE = better reconstruction; accuracies are of classifiers on the codes.")


if __name__ == "__main__":
    main()
