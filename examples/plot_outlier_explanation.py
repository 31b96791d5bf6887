"""
=====================================================
Outlier detection on tabular data, with explanations
=====================================================

:class:`~sklae.AutoencoderOutlierDetector` scores each row of a table by how
badly a small ensemble of autoencoders reconstructs it and how isolated its
code is, with :class:`~sklearn.ensemble.IsolationForest`'s API. Its
``feature_errors`` method says which features the networks could not
explain: the reason a row was flagged.

We take scikit-learn's wine measurements (178 wines, 13 chemical features in
raw units), corrupt one feature of six wines as a data-entry error would, and
check that the detector finds those wines and names the corrupted features.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_wine

from sklae import AutoencoderOutlierDetector

wine = load_wine(as_frame=True).frame.drop(columns="target")
features = list(wine.columns)
rng = np.random.default_rng(0)
corrupted_rows = rng.choice(len(wine), size=6, replace=False)
corrupted_features = rng.choice(len(features), size=6, replace=False)
for row, feature in zip(corrupted_rows, corrupted_features):
    # A value ten times too large: a misplaced decimal point.
    wine.iloc[row, feature] *= 10
for row, feature in zip(corrupted_rows, corrupted_features):
    print(f"row {row:>3}: {features[feature]} multiplied by 10")

# %%
# The features keep their raw units: the detector scales them robustly itself.
detector = AutoencoderOutlierDetector(contamination=0.05, random_state=0).fit(wine)
scores = detector.score_samples(wine)
top = np.argsort(scores)[:8]  # lowest scores: the most abnormal rows
flagged = np.flatnonzero(detector.predict(wine) == -1)
print("flagged rows:", sorted(flagged.tolist()))
print("corrupted rows found:", sorted(set(flagged) & set(corrupted_rows.tolist())))

# %%
# Explanations of the eight most abnormal rows: each feature's share of the
# row's reconstruction error. Corrupted entries are outlined.
errors = detector.feature_errors(wine.iloc[top])
shares = errors / errors.sum(axis=1, keepdims=True)

fig, ax = plt.subplots(figsize=(10, 4.5))
image = ax.imshow(shares, cmap="Reds", vmin=0, vmax=1, aspect="auto")
ax.set_xticks(range(len(features)), features, rotation=45, ha="right")
ax.set_yticks(range(len(top)), [f"row {row}" for row in top])
for position, row in enumerate(top):
    for corrupted_row, feature in zip(corrupted_rows, corrupted_features):
        if row == corrupted_row:
            ax.add_patch(plt.Rectangle((feature - 0.5, position - 0.5), 1, 1, fill=False, lw=2.5))
fig.colorbar(image, label="share of the row's reconstruction error")
ax.set_title("Why the most abnormal wines were flagged (outlined: corrupted entries)")
fig.tight_layout()
plt.show()

# %%
# For the most abnormal row, the features ranked by their error.
worst = top[0]
ranking = np.argsort(errors[0])[::-1][:5]
for feature in ranking:
    value = wine.iloc[worst, feature]
    print(f"{features[feature]:>30}: error {errors[0, feature]:8.1f}  value {value:.2f}")
