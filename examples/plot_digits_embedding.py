"""
=======================================================
2-D embedding of the digits: PCA next to an autoencoder
=======================================================

Both methods map the 64 pixels of each 8x8 digit to two numbers. PCA keeps the
two directions of largest variance; the autoencoder learns a non-linear map
whose two-number code must let its decoder redraw the digit. The classes
separate better in the autoencoder's map, and its codes reconstruct the
digits with less error.
"""

# %%
# Data: 1797 digits as rows of 64 pixels, scaled to [0, 1].
import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA

from sklae import AutoencoderTransformer

X, y = load_digits(return_X_y=True)
X = X / 16.0

# %%
# Fit both, with two-dimensional codes.
pca = PCA(n_components=2).fit(X)
autoencoder = AutoencoderTransformer(
    code_size=2,
    hidden_layer_sizes=(128, 64),
    learning_rate_init=3e-3,
    max_iter=150,
    random_state=0,
).fit(X)

embeddings = {"PCA": pca.transform(X), "AutoencoderTransformer": autoencoder.transform(X)}
reconstruction_mse = {
    "PCA": ((X - pca.inverse_transform(embeddings["PCA"])) ** 2).mean(),
    "AutoencoderTransformer": -autoencoder.score(X),
}
for name, mse in reconstruction_mse.items():
    print(f"{name:>24}: reconstruction MSE {mse:.4f}")

# %%
# Each point is a digit, coloured by its label.
fig, axes = plt.subplots(1, 2, figsize=(11, 5))
for ax, (name, codes) in zip(axes, embeddings.items()):
    points = ax.scatter(codes[:, 0], codes[:, 1], c=y, cmap="tab10", s=6)
    ax.set_title(f"{name}\nreconstruction MSE {reconstruction_mse[name]:.4f}")
    ax.set_xticks([])
    ax.set_yticks([])
fig.colorbar(points, ax=axes, ticks=range(10), label="digit")
plt.show()
