"""
=============================================
MNIST and Fashion-MNIST reconstructions
=============================================

Held-out 28x28 images compressed to 8 numbers and decoded back, by PCA and by
an autoencoder, on handwritten digits (MNIST) and clothes (Fashion-MNIST).

The images come from local IDX files, found through
:func:`sklae.datasets.default_data_dir` (``$SKLAE_DATA_DIR``, else
``../shared/data`` beside the repository); nothing is downloaded. To stay
under a minute on two CPU cores the models see 10000 training images for a few
epochs; ``benchmarks/bench_vs_pca.py`` runs the full comparison.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.decomposition import PCA

from sklae import AutoencoderTransformer
from sklae.datasets import default_data_dir, load_mnist_like

CODE_SIZE = 8
N_TRAIN = 10000
N_SHOWN = 8
DATASETS = [name for name in ("mnist", "fashion_mnist") if (default_data_dir() / name).exists()]
if not DATASETS:
    print(f"No MNIST files under {default_data_dir()}: set SKLAE_DATA_DIR to show this example.")

# %%
# Fit PCA and an autoencoder on each data set, and reconstruct test images.
# Pixel data in [0, 1] suit a sigmoid output trained with binary cross-entropy.
reconstructions = {}
for name in DATASETS:
    X_train, _ = load_mnist_like(name, "train")
    X_test, _ = load_mnist_like(name, "test")
    X_train = X_train[np.random.default_rng(0).permutation(len(X_train))[:N_TRAIN]]
    pca = PCA(n_components=CODE_SIZE, random_state=0).fit(X_train)
    autoencoder = AutoencoderTransformer(
        code_size=CODE_SIZE,
        hidden_layer_sizes=(256, 64),
        loss="bce",
        learning_rate_init=2e-3,
        max_iter=15,
        learning_rate="cosine",  # a fixed budget: anneal the rate to zero over it
        random_state=0,
    ).fit(X_train)
    rows = {
        "original": X_test,
        f"PCA({CODE_SIZE})": pca.inverse_transform(pca.transform(X_test)),
        f"autoencoder({CODE_SIZE})": autoencoder.inverse_transform(autoencoder.transform(X_test)),
    }
    reconstructions[name] = rows
    for label, images in rows.items():
        if label != "original":
            print(f"{name:>13} {label:>16}: test MSE {np.mean((images - X_test) ** 2):.4f}")

# %%
# Each block: test images, then their PCA and autoencoder reconstructions.
for name, rows in reconstructions.items():
    fig, axes = plt.subplots(3, N_SHOWN, figsize=(N_SHOWN, 3.4))
    for row, (label, images) in enumerate(rows.items()):
        for column in range(N_SHOWN):
            axis = axes[row, column]
            axis.imshow(images[column].reshape(28, 28), cmap="gray_r", vmin=0, vmax=1)
            axis.set_xticks([])
            axis.set_yticks([])
        axes[row, 0].set_ylabel(label, fontsize=8)
    fig.suptitle(f"{name}: {CODE_SIZE} numbers per image")
    plt.show()
