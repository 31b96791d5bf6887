"""Image denoising: DenoisingAutoencoder against PCA and kernel PCA, in one run.

The setting of scikit-learn's example "Image denoising using kernel PCA": images
scaled to [0, 1], Gaussian noise added to the training and the test images, every
model fit on the *noisy* training images (no clean image is seen in training),
and the noisy test images denoised:

* ``digits``: ``load_digits() / 16``, 75/25 split (``random_state=0``), noise 0.25;
* ``mnist`` and ``fashion_mnist``: 28x28 images from the data folder (``--data-dir``,
  default ``$SKLAE_DATA_DIR``, else ``../shared/data``), noise 0.3.

Methods: ``PCA(32)`` (inverse of the projection), ``KernelPCA`` with the example's
settings (rbf, ``n_components=400``, ``gamma=1e-3``, ``alpha=5e-3``,
``fit_inverse_transform=True``) and with ``gamma`` scaled to the image size (the
example's images have 256 pixels: ``gamma = 1e-3 * 256 / n_pixels``), and
``DenoisingAutoencoder`` with a fully connected (MLP) and a convolutional network,
trained self-supervised on the noisy images with fresh Gaussian noise of the same
level each epoch. Kernel PCA is fit on a subsample of MNIST-sized data (its cost
grows with the cube of the rows). Reported: MSE to the clean test images, PSNR
(data range 1), fit seconds. Noise is drawn with ``np.random.RandomState(0)``,
test images first, as in the example.

Usage::

    python benchmarks/bench_denoising.py            # all data sets, writes results
    python benchmarks/bench_denoising.py --quick    # subsamples, a couple of minutes

Results go to ``benchmarks/results/denoising*`` (``--output-dir``, ``--output``).
"""

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
from _common import (
    Timer,
    add_common_arguments,
    format_provenance_markdown,
    parse_args,
    png_metadata,
    provenance,
    set_threads,
)
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA, KernelPCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from sklae import DenoisingAutoencoder
from sklae.datasets import load_mnist_like

EXAMPLE_PIXELS = 256  # USPS, 16x16, the images of scikit-learn's example
N_FIGURE_IMAGES = 8

# Per data set: noise, image shape, and the sizes of the full and the quick run.
DATASETS = {
    "digits": {"noise": 0.25, "shape": (8, 8)},
    "mnist": {"noise": 0.3, "shape": (28, 28)},
    "fashion_mnist": {"noise": 0.3, "shape": (28, 28)},
}
SIZES = {
    # n_train, n_test, n_kernel_pca, mlp epochs, conv epochs (MNIST-sized data only;
    # digits always uses all of its 1347 training and 450 test images).
    "full": {"n_train": 20000, "n_test": 10000, "n_kpca": 5000, "mlp": 20, "conv": 10},
    "quick": {"n_train": 5000, "n_test": 2000, "n_kpca": 2000, "mlp": 10, "conv": 5},
}
DIGITS_EPOCHS = {"full": {"mlp": 100, "conv": 60}, "quick": {"mlp": 50, "conv": 30}}
# Small batches and a larger step than Adam's default: more updates per epoch.
TRAINING = {"batch_size": 64, "learning_rate_init": 2e-3}


def load(name, size, data_dir):
    """Clean train and test images in [0, 1] as float32 rows."""
    if name == "digits":
        X, _ = load_digits(return_X_y=True)
        X_train, X_test = train_test_split((X / 16.0).astype(np.float32), random_state=0)
        return X_train, X_test
    X_train, _ = load_mnist_like(name, "train", data_dir)
    X_test, _ = load_mnist_like(name, "test", data_dir)
    rng = np.random.RandomState(0)
    # The first n rows of a random permutation: a subsample, the same for every method.
    X_train = X_train[np.sort(rng.permutation(len(X_train))[: size["n_train"]])]
    X_test = X_test[np.sort(rng.permutation(len(X_test))[: size["n_test"]])]
    return X_train, X_test


def add_noise(X_train, X_test, std):
    rng = np.random.RandomState(0)
    X_test_noisy = (X_test + rng.normal(scale=std, size=X_test.shape)).astype(np.float32)
    X_train_noisy = (X_train + rng.normal(scale=std, size=X_train.shape)).astype(np.float32)
    return X_train_noisy, X_test_noisy


def methods(name, size, mode):
    """(label, make_model, rows of the noisy training set to fit on) per method."""
    spec = DATASETS[name]
    n_pixels = int(np.prod(spec["shape"]))
    epochs = DIGITS_EPOCHS[mode] if name == "digits" else size
    n_kpca = None if name == "digits" else size["n_kpca"]
    scaled_gamma = 1e-3 * EXAMPLE_PIXELS / n_pixels

    def kernel_pca(gamma):
        return lambda: KernelPCA(
            n_components=400,
            kernel="rbf",
            gamma=gamma,
            fit_inverse_transform=True,
            alpha=5e-3,
            random_state=42,
        )

    def autoencoder(**params):
        return lambda: DenoisingAutoencoder(
            noise="gaussian",
            noise_level=spec["noise"],
            output_activation="sigmoid",
            random_state=0,
            **TRAINING,
            **params,
        )

    return [
        ("PCA(32)", lambda: PCA(n_components=32, random_state=42), None),
        ("KernelPCA, example (gamma=1e-3)", kernel_pca(1e-3), n_kpca),
        (f"KernelPCA, gamma scaled ({scaled_gamma:.2g})", kernel_pca(scaled_gamma), n_kpca),
        (
            "DAE, MLP 256-128-32",
            autoencoder(code_size=32, hidden_layer_sizes=(256, 128), max_iter=epochs["mlp"]),
            None,
        ),
        (
            "DAE, convolutional 16-32-32",
            autoencoder(
                code_size=32,
                image_shape=spec["shape"],
                conv_channels=(16, 32),
                max_iter=epochs["conv"],
            ),
            None,
        ),
    ]


def denoise(model, X_test_noisy):
    if isinstance(model, DenoisingAutoencoder):
        return model.predict(X_test_noisy)
    return model.inverse_transform(model.transform(X_test_noisy))


def psnr(mse):
    return 10 * np.log10(1.0 / mse)


def run_dataset(name, size, mode, data_dir):
    X_train, X_test = load(name, size, data_dir)
    X_train_noisy, X_test_noisy = add_noise(X_train, X_test, DATASETS[name]["noise"])
    mse_noisy = float(np.mean((X_test_noisy - X_test) ** 2))
    rows = [{"method": "noisy input", "mse": mse_noisy, "fit_s": None, "n_fit": None}]
    images = {"clean": X_test[:N_FIGURE_IMAGES], "noisy": X_test_noisy[:N_FIGURE_IMAGES]}
    for label, make_model, n_fit in methods(name, size, mode):
        fit_rows = X_train_noisy if n_fit is None else X_train_noisy[:n_fit]
        model = make_model()
        with Timer() as timer, warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(fit_rows)
        fit_seconds = timer.seconds
        denoised = denoise(model, X_test_noisy)
        mse = float(np.mean((denoised - X_test) ** 2))
        rows.append({"method": label, "mse": mse, "fit_s": fit_seconds, "n_fit": len(fit_rows)})
        images[label] = denoised[:N_FIGURE_IMAGES]
        print(f"  {name:14s} {label:34s} PSNR {psnr(mse):6.2f} dB  fit {fit_seconds:7.1f} s")
        sys.stdout.flush()
    info = {"n_train": len(X_train), "n_test": len(X_test), "noise": DATASETS[name]["noise"]}
    return rows, images, info


def plot(images, name, path, stamp):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shape = DATASETS[name]["shape"]
    labels = list(images)
    fig, axes = plt.subplots(
        len(labels),
        N_FIGURE_IMAGES,
        figsize=(N_FIGURE_IMAGES * 1.1, len(labels) * 1.2),
        squeeze=False,
    )
    for row, label in enumerate(labels):
        for column in range(N_FIGURE_IMAGES):
            axis = axes[row, column]
            axis.imshow(np.clip(images[label][column].reshape(shape), 0, 1), cmap="gray_r")
            axis.set_xticks([])
            axis.set_yticks([])
        axes[row, 0].set_ylabel(label.split(" (")[0].replace(", ", "\n"), fontsize=7)
    fig.suptitle(f"{name}: clean, noisy and denoised test images", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90, metadata=png_metadata(stamp))
    plt.close(fig)


def format_results(results, args, stamp, figures):
    lines = [
        "# Denoising: DenoisingAutoencoder vs PCA and kernel PCA",
        "",
        format_provenance_markdown(stamp),
        "Every model is fit on the **noisy** training images (as in scikit-learn's "
        "'Image denoising using kernel PCA' example); the noisy test images are denoised "
        "and compared with the clean ones. PSNR with data range 1. The autoencoders "
        "(`DenoisingAutoencoder(noise='gaussian', noise_level=<the noise std>, "
        "output_activation='sigmoid', batch_size=64, learning_rate_init=2e-3, random_state=0)`) "
        "add fresh noise of the same "
        "level to the noisy training images every epoch. Fit seconds are wall-clock, "
        "possibly on a shared machine: compare them within a row block only.",
        "",
        "MNIST and Fashion-MNIST: a random subsample of "
        f"{SIZES['quick' if args.quick else 'full']['n_train']} of the 60000 training images "
        "(to keep the run to minutes on 2 CPU cores); KernelPCA fit on the first "
        f"{SIZES['quick' if args.quick else 'full']['n_kpca']} of those (its fit cost grows "
        "with the cube of the rows).",
        "",
    ]
    for name, (rows, _, info) in results.items():
        kernel_psnr = [psnr(r["mse"]) for r in rows if r["method"].startswith("KernelPCA")]
        example_kpca = psnr(rows[2]["mse"])
        lines += [
            f"## {name}",
            "",
            f"{info['n_train']} training and {info['n_test']} test images, "
            f"Gaussian noise std {info['noise']}.",
            "",
            "| method | fit rows | test MSE | PSNR (dB) | vs example KernelPCA (dB) | fit s |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for row in rows:
            fit_s = "" if row["fit_s"] is None else f"{row['fit_s']:.1f}"
            n_fit = "" if row["n_fit"] is None else str(row["n_fit"])
            lines.append(
                f"| {row['method']} | {n_fit} | {row['mse']:.5f} | {psnr(row['mse']):.2f} | "
                f"{psnr(row['mse']) - example_kpca:+.2f} | {fit_s} |"
            )
        best_dae = max(psnr(r["mse"]) for r in rows if r["method"].startswith("DAE"))
        pca_psnr = psnr(rows[1]["mse"])
        best = max(rows[1:], key=lambda row: psnr(row["mse"]))["method"]
        lines += [
            "",
            f"Best DAE {best_dae:.2f} dB: {best_dae - example_kpca:+.2f} dB against the example "
            f"KernelPCA ({example_kpca:.2f} dB), {best_dae - max(kernel_psnr):+.2f} dB against "
            f"the best KernelPCA ({max(kernel_psnr):.2f} dB), {best_dae - pca_psnr:+.2f} dB "
            f"against PCA ({pca_psnr:.2f} dB). Highest PSNR: {best}.",
            "",
            f"![{name}]({figures[name]})",
            "",
        ]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--quick", action="store_true", help="subsamples, few epochs")
    parser.add_argument(
        "--output",
        default=None,
        help="markdown file to write, plots beside it (default: OUTPUT_DIR/denoising[_quick].md)",
    )
    add_common_arguments(parser)
    args = parse_args(parser, argv)
    set_threads(args.threads)
    mode = "quick" if args.quick else "full"
    size = SIZES[mode]
    stem = "denoising_quick" if args.quick else "denoising"
    output = Path(args.output) if args.output else args.output_dir / f"{stem}.md"
    output.parent.mkdir(parents=True, exist_ok=True)
    stamp = provenance(argv=argv, script=__file__)

    results, figures = {}, {}
    for name in args.datasets:
        print(f"{name}:")
        results[name] = run_dataset(name, size, mode, args.data_dir)
        figure = output.parent / f"{output.stem}_{name}.png"
        plot(results[name][1], name, figure, stamp)
        figures[name] = figure.name
    output.write_text(format_results(results, args, stamp, figures) + "\n")
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
