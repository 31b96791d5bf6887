"""
======================================================
Variational autoencoder: new digits and the latent map
======================================================

A :class:`~sklae.VariationalAutoencoder` with a two-dimensional code is
trained on the digits. Its prior fills the code space, so decoding draws from
the prior gives new digits (``sample``), decoding a grid over the code space
shows the whole learnt map, and decoding the points of a line between two
codes morphs one digit into another.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from scipy.stats import norm
from sklearn.datasets import load_digits

from sklae import VariationalAutoencoder

X, y = load_digits(return_X_y=True)
X = X / 16.0
vae = VariationalAutoencoder(
    code_size=2,
    hidden_layer_sizes=(128, 64),
    loss="bce",
    learning_rate_init=3e-3,
    max_iter=150,
    random_state=0,
).fit(X)
print(f"mean ELBO per digit: {vae.score(X):.2f}")


def show_images(images, n_columns, title, size=0.9):
    n_rows = int(np.ceil(len(images) / n_columns))
    fig, axes = plt.subplots(n_rows, n_columns, figsize=(size * n_columns, size * n_rows))
    for ax in np.ravel(axes):
        ax.set_axis_off()
    for ax, image in zip(np.ravel(axes), images):
        ax.imshow(image.reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
    fig.suptitle(title)
    plt.show()


# %%
# New digits: codes drawn from the standard normal prior, decoded.
show_images(vae.sample(32, random_state=0), 8, "32 samples from the prior")

# %%
# The latent map: the posterior means of all digits, coloured by label ...
codes = vae.transform(X)
fig, ax = plt.subplots(figsize=(6, 5))
points = ax.scatter(codes[:, 0], codes[:, 1], c=y, cmap="tab10", s=6)
fig.colorbar(points, ticks=range(10), label="digit")
ax.set_title("posterior means")
plt.show()

# %%
# ... and the digits the decoder draws on a grid over the code space. The grid
# follows the prior's quantiles, so each cell covers the same prior mass.
quantiles = norm.ppf(np.linspace(0.05, 0.95, 10))
grid = np.array([[z1, z2] for z2 in quantiles[::-1] for z1 in quantiles])
show_images(vae.inverse_transform(grid), 10, "decoded grid over the code space", size=0.7)

# %%
# A walk through the latent space: the straight line between the codes of a
# 0 and of a 6, decoded at ten points.
start, end = codes[np.flatnonzero(y == 0)[0]], codes[np.flatnonzero(y == 6)[0]]
walk = np.linspace(start, end, num=10)
show_images(vae.inverse_transform(walk), 10, "from a 0 to a 6 in code space")
