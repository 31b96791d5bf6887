"""Noise of data: its level, estimated from the rows alone, and denoising whole images.

:func:`estimate_noise_level` is what ``DenoisingAutoencoder(noise_level="auto")``
uses; :func:`denoise_image` applies a denoiser trained on image patches to a
whole image.
"""

from functools import lru_cache
from numbers import Integral

import numpy as np
from sklearn.feature_extraction.image import extract_patches_2d, reconstruct_from_patches_2d
from sklearn.utils._param_validation import Interval, validate_params
from sklearn.utils.validation import check_array

from ._validation import evenly_spaced_rows

# Rows the noise level is estimated from, for larger data (an evenly spaced
# sample): the covariance spectrum of 20000 rows is already sharp.
NOISE_ESTIMATE_ROWS = 20_000
# Points of the grid the Marchenko-Pastur distribution is integrated on.
MP_GRID_POINTS = 4001
# Where there are about as many directions as rows, the Marchenko-Pastur lower
# edge reaches zero and bounds nothing: the aspect ratio is capped below 1.
MAX_EDGE_RATIO = 0.99
# Eigenvalues below this share of the largest are zero up to rounding.
ZERO_EIGENVALUE = 1e-10
# The estimate reads the spectrum of a table whose smaller dimension is at most
# this share of the larger (see estimate_noise_level).
MAX_ESTIMATE_RATIO = 0.5


@lru_cache(maxsize=4096)
def marchenko_pastur_median(ratio):
    """Median of the Marchenko-Pastur law of unit variance for aspect ratio ``ratio`` in (0, 1].

    The limiting distribution of the eigenvalues of the sample covariance of
    pure unit-variance noise, ``p`` variables and ``n`` rows, ``ratio = p / n``:
    its mean is 1 and its median below 1, more so the larger ``ratio``.
    """
    if ratio <= 0:
        return 1.0
    ratio = min(float(ratio), 1.0)
    low, high = (1 - np.sqrt(ratio)) ** 2, (1 + np.sqrt(ratio)) ** 2
    x = np.linspace(low, high, MP_GRID_POINTS)
    # At ratio 1 the grid starts at 0, where the density has an integrable
    # singularity: that one point counts as 0.
    spread = np.sqrt(np.maximum((high - x) * (x - low), 0.0))
    density = np.divide(spread, 2 * np.pi * ratio * x, out=np.zeros_like(x), where=x > 0)
    cumulative = np.concatenate([[0.0], np.cumsum((density[1:] + density[:-1]) / 2 * np.diff(x))])
    return float(np.interp(0.5, cumulative / cumulative[-1], x))


def covariance_spectrum(X):
    """Ascending eigenvalues of the sample covariance of ``X``'s rows, and its larger dimension.

    From the smaller of the two Gram matrices: with more columns than rows the
    nonzero eigenvalues of ``X^T X / n`` are those of ``X X^T / n``, scaled to
    ``/ max(n, d)`` so that pure noise follows the Marchenko-Pastur law of
    ratio ``min / max`` either way.
    """
    centred = X - X.mean(axis=0)
    n_rows, n_columns = centred.shape
    degrees = max(n_rows - 1, 1)
    if n_columns <= n_rows:
        gram = centred.T @ centred / degrees
        size = degrees
    else:
        gram = centred @ centred.T / n_columns
        size = n_columns
    eigenvalues = np.clip(np.linalg.eigvalsh(gram), 0.0, None)
    if n_columns > n_rows:
        # Centring removes one dimension: the smallest eigenvalue is zero.
        eigenvalues = eigenvalues[1:]
    return np.sort(eigenvalues), size


def prediction_threshold(columns_per_row):
    """The covariance eigenvalue, in noise variances, above which projecting new rows pays.

    In the spiked covariance model (Baik, Ben Arous and Peche, 2005; Paul,
    2007), a direction whose signal variance is ``l`` noise variances shows,
    in the covariance of ``n`` noisy rows of ``p`` columns, ``g = p / (n -
    1)``, a sample eigenvalue ``(1 + l) (1 + g / l)`` and an eigenvector whose
    squared cosine with the true one is ``(1 - g / l**2) / (1 + g / l)``.
    Projecting a new noisy row onto it keeps ``l`` times that cosine of
    signal and one noise variance of noise, so it pays for ``l > (1 +
    sqrt(1 + 8 g)) / 2``: a sample eigenvalue above ``(1 + l)(1 + g / l)``
    at that ``l``. With many more rows than columns the threshold is 2
    (keep a direction whose signal variance exceeds the noise's: Mallows'
    Cp, Stein's unbiased risk estimate); it is 4.5 for as many rows as
    columns, where noise alone spreads sample eigenvalues up to 4
    (the Marchenko-Pastur upper edge ``(1 + sqrt(g))**2``). For the rows the
    covariance was computed from, Gavish and Donoho's optimal hard threshold
    (2014) is higher, ``2 + 6 g`` for small ``g`` against ``2 + 4 g`` here,
    because there the projection also keeps each row's own noise along the
    directions it helped to estimate; ``predict`` serves new rows.
    """
    g = max(float(columns_per_row), 0.0)
    signal = (1.0 + np.sqrt(1.0 + 8.0 * g)) / 2.0
    return (1.0 + signal) * (1.0 + g / signal)


def detection_threshold(columns_per_row):
    """The covariance eigenvalue, in noise variances, above which a direction shows signal.

    Noise alone spreads the sample eigenvalues of ``n`` rows of ``p``
    columns up to the Marchenko-Pastur upper edge ``(1 + sqrt(g))**2``, ``g
    = p / (n - 1)``; a direction of signal variance ``l`` noise variances
    shows above it only when ``l > sqrt(g)`` (the phase transition of Baik,
    Ben Arous and Peche, 2005), and then its sample eigenvector carries part
    of the true one (:func:`prediction_weights`). 1 with many more rows than
    columns, 4 for as many.
    """
    return (1.0 + np.sqrt(max(float(columns_per_row), 0.0))) ** 2


def prediction_weights(eigenvalues, columns_per_row):
    """The weight of each principal direction in the best linear denoiser of new rows.

    ``eigenvalues`` are sample covariance eigenvalues in noise variances.
    In the spiked covariance model a direction of signal variance ``l``
    shows the eigenvalue ``(1 + l)(1 + g / l)`` and an eigenvector whose
    squared cosine with the true one is ``c2 = (1 - g / l**2) / (1 + g /
    l)`` (Paul, 2007); a new noisy row's score along it holds ``l * c2`` of
    signal and one noise variance, so the estimate that minimises the
    squared error along it keeps ``l * c2 / (l * c2 + 1)`` of the score (a
    Wiener weight, ``(e - 1) / e`` with many rows). Zero at and below the
    :func:`detection_threshold` (nothing of the true direction shows there),
    one half at :func:`prediction_threshold` (where keeping the whole
    projection starts to pay), towards one for strong directions.
    """
    g = max(float(columns_per_row), 0.0)
    eigenvalues = np.asarray(eigenvalues, dtype=np.float64)
    shown = eigenvalues > detection_threshold(g)
    # Eigenvalues of data with almost no noise reach infinity in noise
    # variances: their weight is one.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        # The signal variance l that shows the eigenvalue: the larger root of
        # l**2 + (1 + g - e) l + g = 0.
        excess = np.where(shown, eigenvalues - 1.0 - g, 0.0)
        root = np.sqrt(np.maximum(excess**2 - 4.0 * g, 0.0))
        signal = np.where(shown, (excess + root) / 2.0, 1.0)
        squared_cosine = np.clip((1.0 - g / signal**2) / (1.0 + g / signal), 0.0, 1.0)
        weights = 1.0 / (1.0 + 1.0 / (signal * squared_cosine))
    return np.where(shown, np.nan_to_num(weights, nan=1.0), 0.0)


def components_above_noise(X, noise_level, noisy=True):
    """How many principal directions of ``X`` carry signal.

    For noisy ``X`` (``noisy``), the directions whose covariance eigenvalue
    exceeds :func:`detection_threshold` times the noise variance
    ``noise_level**2``: every direction in which the data show signal at
    all, noise alone staying below (the Marchenko-Pastur edge). A network
    started at the best linear denoiser on them (:func:`prediction_weights`:
    weak directions start near zero weight) may use what a linear
    projection cannot; :func:`prediction_threshold` marks the narrower code
    where the whole projection pays. For clean ``X``, whose eigenvalues are
    the signal's, the directions whose variance exceeds the noise's. At
    least 1.
    """
    sample = evenly_spaced_rows(X, NOISE_ESTIMATE_ROWS)
    eigenvalues, size = covariance_spectrum(sample)
    variance = float(noise_level) ** 2
    if not noisy:
        return max(1, int(np.sum(eigenvalues > variance)))
    n_rows, n_columns = sample.shape
    degrees = max(n_rows - 1, 1)
    # The spectrum of a wide table comes from its rows' Gram matrix, scaled by
    # the columns (see covariance_spectrum): as the covariance's eigenvalues.
    covariance_eigenvalues = eigenvalues * (size / degrees)
    threshold = detection_threshold(n_columns / degrees) * variance
    return max(1, int(np.sum(covariance_eigenvalues > threshold)))


@validate_params(
    {
        "X": ["array-like", "sparse matrix"],
        "max_rows": [Interval(Integral, 3, None, closed="left")],
    },
    prefer_skip_nested_validation=True,
)
def estimate_noise_level(X, *, max_rows=NOISE_ESTIMATE_ROWS):
    """Standard deviation of additive white Gaussian noise in ``X``, from ``X`` alone.

    The noise of every entry adds ``sigma**2`` to every eigenvalue of the rows'
    covariance, while a signal that does not fill every direction (pixels of
    images, redundant columns of a table) leaves the smallest eigenvalues to the
    noise alone. Those follow the Marchenko-Pastur law, whose mean is
    ``sigma**2``. The estimate takes the largest set of smallest eigenvalues
    whose median is at least the Marchenko-Pastur median times their mean (a
    signal eigenvalue among them drags the mean above the median) and returns
    the square root of their mean: the test of Chen, Zhu and Heng (2015),
    "An efficient statistical method for image noise level estimation", with
    the median of the Marchenko-Pastur law in place of the mean, which keeps
    it unbiased when rows are not much more numerous than columns.

    On images and on tables whose columns share their information it is
    within a few percent of the truth for noise from 0.05 to 0.5 of the data's
    range (see the user guide). A table about as wide as long is read with
    every other column (or row, see :func:`square_free`), where the law's
    lower edge stays clear of zero. Where the signal fills every direction (a
    table of a few independent columns) the noise cannot be told from the
    signal by second moments: the estimate is then an upper bound, large when
    the noise is small. It never exceeds the bound the smallest eigenvalue
    sets (the lower edge of the Marchenko-Pastur law: noise alone would put
    an eigenvalue below it), which is the tighter one on such tables.

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        Noisy rows (at least 3 rows and 2 columns for an estimate).

    max_rows : int, default=20000
        Larger ``X`` is estimated from this many evenly spaced rows.

    Returns
    -------
    noise_level : float
        The estimated standard deviation, in the units of ``X``; 0.0 when
        ``X`` has fewer than 3 rows or 2 columns (nothing to estimate from).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from sklae import estimate_noise_level
    >>> X = load_digits().data / 16
    >>> noisy = X + np.random.default_rng(0).normal(scale=0.2, size=X.shape)
    >>> round(estimate_noise_level(noisy), 2)
    0.2
    """
    X = check_array(X, accept_sparse=("csr", "csc", "coo"), dtype=np.float64)
    sample = square_free(evenly_spaced_rows(X, max_rows))
    if sample.shape[0] < 3 or sample.shape[1] < 2:
        return 0.0
    eigenvalues, size = covariance_spectrum(sample)
    # Partial means of the m smallest eigenvalues, for every m at once.
    means = np.cumsum(eigenvalues) / np.arange(1, len(eigenvalues) + 1)
    variance = means[1]
    for count in range(len(eigenvalues), 1, -1):
        tail = eigenvalues[:count]
        if np.median(tail) >= means[count - 1] * marchenko_pastur_median(count / size):
            variance = means[count - 1]
            break
    return float(np.sqrt(min(variance, lower_edge_bound(eigenvalues, size))))


def square_free(X):
    """``X``, or every other entry of its smaller dimension when the two are alike.

    When rows and columns are about as many, the Marchenko-Pastur law of the
    noise's eigenvalues reaches down to zero (its lower edge ``(1 -
    sqrt(p / n))**2`` vanishes) and piles them there: the median test then
    took the smallest few eigenvalues for the noise's whole bulk, and on
    tables of 300 rows and 290 columns mixing eight latent variables the
    estimate fell to 3% to 10% of the truth (UCR's OSULeaf, 442 series of 427
    steps: 5% to 7%). White noise has the same level in every column (and
    row), so the estimate reads a table whose smaller dimension is halved
    until it is at most ``MAX_ESTIMATE_RATIO`` of the larger, where the law's
    lower edge stays clear of zero (at a half, 0.09 of the variance).
    """
    while True:
        n_rows, n_columns = X.shape
        if min(n_rows - 1, n_columns) <= MAX_ESTIMATE_RATIO * max(n_rows - 1, n_columns):
            return X
        halved = X[:, ::2] if n_columns <= n_rows - 1 else X[::2]
        if halved.shape[0] < 3 or halved.shape[1] < 2:
            # Too little left to estimate from: the table as it is.
            return X
        X = halved


def lower_edge_bound(eigenvalues, size):
    """The largest noise variance the smallest eigenvalue allows.

    Noise of variance ``sigma**2`` puts the smallest eigenvalue of the
    covariance of ``p`` directions from ``n`` rows at least at the lower edge
    of its Marchenko-Pastur law, ``sigma**2 (1 - sqrt(p / n))**2`` (signal
    only adds to it), so ``sigma**2`` is at most the smallest eigenvalue
    divided by ``(1 - sqrt(p / n))**2``. Where the median test above takes
    signal directions for noise (a table whose columns carry signal in every
    direction), this bound is the tighter one.
    """
    # Directions without any variance (a constant column, an exact linear
    # relation between columns) hold no noise either: they bound nothing.
    varying = eigenvalues[eigenvalues > ZERO_EIGENVALUE * eigenvalues[-1]]
    if len(varying) == 0:
        return 0.0
    ratio = min(len(eigenvalues) / size, MAX_EDGE_RATIO)
    return float(varying[0]) / (1.0 - np.sqrt(ratio)) ** 2


@validate_params(
    {
        "denoiser": [object],
        "image": ["array-like"],
        "patch_size": [tuple],
    },
    prefer_skip_nested_validation=True,
)
def denoise_image(denoiser, image, patch_size):
    """Denoise a whole image with a denoiser trained on its patches' rows.

    Every overlapping ``patch_size`` patch of ``image`` is flattened to a row
    (as :func:`~sklearn.feature_extraction.image.extract_patches_2d` and
    ``reshape(n_patches, -1)`` make them for training), denoised with
    ``denoiser.predict``, and each pixel becomes the mean of its denoised
    copies in every patch that covers it
    (:func:`~sklearn.feature_extraction.image.reconstruct_from_patches_2d`).
    Averaging the overlapping estimates also averages out part of what each
    patch leaves of the noise.

    Parameters
    ----------
    denoiser : fitted estimator with ``predict``
        For example a :class:`~sklae.DenoisingAutoencoder` fit on rows of
        ``patch_size`` patches (of this image or of others like it).

    image : array-like of shape (height, width) or (height, width, channels)
        The noisy image, in the units the denoiser was trained in.

    patch_size : tuple of (int, int)
        ``(patch_height, patch_width)``, as in training.

    Returns
    -------
    denoised : ndarray of the shape of ``image``
        The denoised image, float64.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.feature_extraction.image import extract_patches_2d
    >>> from sklae import DenoisingAutoencoder, denoise_image
    >>> rng = np.random.default_rng(0)
    >>> clean = np.add.outer(np.sin(np.arange(48) / 5), np.cos(np.arange(48) / 7)) / 4 + 0.5
    >>> noisy = clean + rng.normal(scale=0.1, size=clean.shape)
    >>> patches = extract_patches_2d(noisy, (6, 6)).reshape(-1, 36)
    >>> denoiser = DenoisingAutoencoder(max_iter=5, learning_rate="cosine", random_state=0)
    >>> denoiser = denoiser.fit(patches)
    >>> denoised = denoise_image(denoiser, noisy, (6, 6))
    >>> bool(np.mean((denoised - clean) ** 2) < np.mean((noisy - clean) ** 2))
    True
    """
    image = np.asarray(image, dtype=np.float64)
    if image.ndim not in (2, 3):
        raise ValueError(
            f"image must have shape (height, width) or (height, width, channels); got shape "
            f"{image.shape}."
        )
    if len(patch_size) != 2 or any(not isinstance(s, Integral) or s < 1 for s in patch_size):
        raise ValueError(f"patch_size must be two positive ints; got {patch_size!r}.")
    if patch_size[0] > image.shape[0] or patch_size[1] > image.shape[1]:
        raise ValueError(
            f"patch_size {tuple(patch_size)} is larger than the image, of shape {image.shape}."
        )
    patches = extract_patches_2d(image, tuple(patch_size))
    denoised = np.asarray(denoiser.predict(patches.reshape(len(patches), -1)), dtype=np.float64)
    return reconstruct_from_patches_2d(denoised.reshape(patches.shape), image.shape)
