"""
===============================
Pipeline and GridSearchCV
===============================

An :class:`~sklae.AutoencoderTransformer` is a scikit-learn transformer, so it
sits in a :class:`~sklearn.pipeline.Pipeline` between a scaler and a
classifier, and :class:`~sklearn.model_selection.GridSearchCV` tunes its
parameters with the rest. Two searches:

1. the classifier's accuracy chooses the code size and the network;
2. the autoencoder alone: its ``score`` (minus the reconstruction error) needs
   no scorer.
"""

# %%
import matplotlib.pyplot as plt
import pandas as pd
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler

from sklae import AutoencoderTransformer

# The examples train for a fixed, small number of epochs to stay fast; the
# estimators would otherwise warn that more epochs could still lower the loss.

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)

pipeline = Pipeline(
    [
        ("scale", MinMaxScaler()),
        (
            "autoencoder",
            AutoencoderTransformer(
                max_iter=60, learning_rate="cosine", learning_rate_init=3e-3, random_state=0
            ),
        ),
        ("classify", LogisticRegression(max_iter=1000)),
    ]
)
pipeline  # noqa: B018 (a notebook shows the pipeline's interactive diagram)

# %%
# Search over the code size and the width of the network; the pipeline's score
# is the classifier's accuracy. PCA in the autoencoder's place gives a baseline.
search = GridSearchCV(
    pipeline,
    {
        "autoencoder__code_size": [4, 8, 16],
        "autoencoder__hidden_layer_sizes": [(64,), (128, 64)],
    },
    cv=3,
)
search.fit(X_train, y_train)
print("best:", search.best_params_)
print(f"held-out accuracy: {search.score(X_test, y_test):.3f}")

results = pd.DataFrame(search.cv_results_)
table = results.pivot_table(
    index="param_autoencoder__code_size",
    columns=results["param_autoencoder__hidden_layer_sizes"].astype(str),
    values="mean_test_score",
)
# PCA in the same place, with the same folds, as a baseline.
table["PCA"] = [
    cross_val_score(pipeline.set_params(autoencoder=PCA(code_size)), X_train, y_train, cv=3).mean()
    for code_size in table.index
]
fig, ax = plt.subplots(figsize=(6, 4))
table.plot(ax=ax, marker="o", style=["-", "-", "--"])
ax.set_xlabel("code size")
ax.set_ylabel("cross-validated accuracy")
ax.legend(title="hidden layers")
plt.show()

# %%
# The autoencoder helps most where the code is shortest: with 4 numbers per
# digit its codes serve the linear classifier better than PCA's. With longer
# codes PCA keeps enough of the 64 pixels for this easy task and does as well
# or better, the more so as the autoencoders here train for only 60 epochs to
# keep the example fast (more epochs raise their accuracy). The search tells
# which to use for your data, at the price of the fits.

# %%
# The autoencoder alone: ``GridSearchCV`` uses its ``score``, minus the mean
# squared reconstruction error of the held-out fold.
reconstruction_search = GridSearchCV(
    AutoencoderTransformer(
        max_iter=60, learning_rate="cosine", learning_rate_init=3e-3, random_state=0
    ),
    {"code_size": [4, 8, 16]},
    cv=3,
)
reconstruction_search.fit(X_train / 16.0)
for code_size, score in zip(
    reconstruction_search.cv_results_["param_code_size"],
    reconstruction_search.cv_results_["mean_test_score"],
):
    print(f"code size {code_size:>2}: held-out reconstruction MSE {-score:.4f}")
