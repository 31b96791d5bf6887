"""
===========================================
Reconstructions and the code-size trade-off
===========================================

An autoencoder compresses each 64-pixel digit into ``code_size`` numbers and
decodes them back. This example shows held-out digits next to their
reconstructions from PCA and from an autoencoder with the same code size, then
measures the held-out reconstruction error for several code sizes: the
compression curve.

The same comparison on MNIST and Fashion-MNIST (28x28 images) is in the
benchmarks pages; it needs the data files, which this example does not.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split

from sklae import AutoencoderTransformer

# The examples train for a fixed, small number of epochs to stay fast; the
# estimators would otherwise warn that more epochs could still lower the loss.

X, y = load_digits(return_X_y=True)
X_train, X_test = train_test_split(X / 16.0, test_size=0.25, random_state=0)


def autoencoder(code_size):
    return AutoencoderTransformer(
        code_size=code_size,
        hidden_layer_sizes=(128,),
        output_activation="sigmoid",
        learning_rate_init=3e-3,
        max_iter=100,
        learning_rate="cosine",  # a fixed budget: anneal the rate to zero over it
        random_state=0,
    )


# %%
# Reconstructions with 8 numbers per digit (8x compression).
models = {"PCA(8)": PCA(8).fit(X_train), "autoencoder(8)": autoencoder(8).fit(X_train)}
shown = X_test[:10]
rows = {"original": shown}
for name, model in models.items():
    rows[name] = model.inverse_transform(model.transform(shown))

fig, axes = plt.subplots(len(rows), len(shown), figsize=(10, 3.3))
for axes_row, (name, images) in zip(axes, rows.items()):
    for ax, image in zip(axes_row, images):
        ax.imshow(image.reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
    axes_row[0].set_ylabel(name, rotation=0, ha="right", va="center")
plt.show()

# %%
# Held-out reconstruction error against code size. ``score`` is minus the
# mean squared error, for PCA's ``inverse_transform`` we compute it directly.
code_sizes = [2, 4, 8, 16]
errors = {"PCA": [], "autoencoder": []}
for code_size in code_sizes:
    pca = PCA(code_size).fit(X_train)
    errors["PCA"].append(np.mean((X_test - pca.inverse_transform(pca.transform(X_test))) ** 2))
    errors["autoencoder"].append(-autoencoder(code_size).fit(X_train).score(X_test))

for code_size, pca_error, ae_error in zip(code_sizes, errors["PCA"], errors["autoencoder"]):
    print(f"code size {code_size:>2}: PCA {pca_error:.4f}  autoencoder {ae_error:.4f}")

fig, ax = plt.subplots(figsize=(6, 4))
for name, values in errors.items():
    ax.plot(code_sizes, values, marker="o", label=name)
ax.set_xscale("log", base=2)
ax.set_xticks(code_sizes, [str(size) for size in code_sizes])
ax.set_xlabel("code size (numbers per 64-pixel digit)")
ax.set_ylabel("held-out reconstruction MSE")
ax.legend()
plt.show()
