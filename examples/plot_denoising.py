"""
==========================================
Denoising digits: before and after
==========================================

A :class:`~sklae.DenoisingAutoencoder` is trained on clean digits, corrupted
afresh with Gaussian noise in every epoch, to output the clean digit. It then
removes the noise from digits it has never seen. Projecting onto the first
principal components (PCA denoising) is shown for comparison.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split

from sklae import DenoisingAutoencoder

# The examples train for a fixed, small number of epochs to stay fast; the
# estimators would otherwise warn that more epochs could still lower the loss.

X, _ = load_digits(return_X_y=True)
X_train, X_test = train_test_split(X / 16.0, test_size=0.25, random_state=0)
noise_level = 0.3
X_noisy = X_test + np.random.default_rng(0).normal(scale=noise_level, size=X_test.shape)

# %%
# Train on clean rows only: the estimator corrupts them itself.
denoiser = DenoisingAutoencoder(
    noise="gaussian",
    noise_level=noise_level,
    hidden_layer_sizes=(128,),
    output_activation="sigmoid",
    batch_size=64,
    learning_rate_init=3e-3,
    max_iter=60,
    learning_rate="cosine",  # a fixed budget: anneal the rate to zero over it
    random_state=0,
).fit(X_train)
pca = PCA(n_components=12).fit(X_train)

denoised = {
    "noisy": X_noisy,
    "PCA(12)": pca.inverse_transform(pca.transform(X_noisy)),
    "autoencoder": denoiser.predict(X_noisy),
}
for name, images in denoised.items():
    print(f"{name:>22}: MSE to the clean digits {np.mean((images - X_test) ** 2):.4f}")

# %%
# Clean digits (top), their noisy versions, and the two denoised versions.
rows = {"clean": X_test, **denoised}
n_shown = 10
fig, axes = plt.subplots(len(rows), n_shown, figsize=(10, 4.4))
for axes_row, (name, images) in zip(axes, rows.items()):
    for ax, image in zip(axes_row, images[:n_shown]):
        ax.imshow(image.reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
    axes_row[0].set_ylabel(name, rotation=0, ha="right", va="center")
plt.show()
