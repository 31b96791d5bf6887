"""
=============================
Image search in code space
=============================

An autoencoder's codes summarise what its decoder needs to redraw an image,
so images with close codes tend to look alike. Searching an image collection
is then a nearest-neighbour query on the codes. Here held-out digits query a
collection of training digits, once in code space (16 numbers per image) and
once in pixel space (64 numbers), and we count how many of the neighbours found
show the same digit. On these small, centred images the pixels are already a
good distance, and the codes, four times shorter, find neighbours about as
well; on larger images (784 pixels for MNIST) the index shrinks far more.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neighbors import NearestNeighbors

from sklae import AutoencoderTransformer

# The examples train for a fixed, small number of epochs to stay fast; the
# estimators would otherwise warn that more epochs could still lower the loss.

X, y = load_digits(return_X_y=True)
X_collection, X_queries, y_collection, y_queries = train_test_split(
    X / 16.0, y, test_size=0.2, random_state=0
)

autoencoder = AutoencoderTransformer(
    code_size=16,
    hidden_layer_sizes=(128,),
    output_activation="sigmoid",
    learning_rate_init=3e-3,
    max_iter=100,
    learning_rate="cosine",  # a fixed budget: anneal the rate to zero over it
    random_state=0,
).fit(X_collection)

n_neighbors = 6
index = NearestNeighbors(n_neighbors=n_neighbors).fit(autoencoder.transform(X_collection))
_, found = index.kneighbors(autoencoder.transform(X_queries))
pixel_index = NearestNeighbors(n_neighbors=n_neighbors).fit(X_collection)
_, pixel_found = pixel_index.kneighbors(X_queries)

# %%
# Precision of the search: the share of neighbours with the query's label,
# over all held-out queries.
for name, rows in {"code space (16)": found, "pixel space (64)": pixel_found}.items():
    precision = np.mean(y_collection[rows] == y_queries[:, None])
    print(f"{name:>17}: {precision:.3f} of the {n_neighbors} neighbours show the same digit")

# %%
# Results for five queries: the query on the left, its neighbours in code
# space to the right, nearest first.
queries = [0, 1, 2, 3, 4]
fig, axes = plt.subplots(len(queries), n_neighbors + 1, figsize=(8, 6.5))
for axes_row, query in zip(axes, queries):
    images = [X_queries[query], *X_collection[found[query]]]
    for column, (ax, image) in enumerate(zip(axes_row, images)):
        ax.imshow(image.reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
        if column:
            ax.set_title(str(y_collection[found[query][column - 1]]), fontsize=9)
    axes_row[0].set_title("query", fontsize=9)
    for spine in axes_row[0].spines.values():
        spine.set_edgecolor("tab:red")
        spine.set_linewidth(2)
plt.show()
