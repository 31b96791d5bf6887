"""Checks of the estimators' input data and parameters, with remedies in the errors.

scikit-learn's own validation, plus what the networks need: float32 range, the
[0, 1] range of binary cross-entropy, out-of-core memmaps checked chunk by
chunk, and parameter combinations that cannot work, named and explained.
"""

import contextlib
import re
from numbers import Integral

import numpy as np
import torch
from scipy import sparse
from sklearn.utils import assert_all_finite
from sklearn.utils import validation as sklearn_validation

ACCEPTED_SPARSE = ("csr", "csc")
FLOAT_DTYPES = (np.float64, np.float32)
# Out-of-core input is checked for NaN and infinity this many bytes at a time.
CHECK_CHUNK_BYTES = 64 * 2**20


def is_out_of_core(X):
    """Whether ``X`` is a 2-D memmap, trained on one mini-batch at a time from disk."""
    return isinstance(X, np.memmap) and X.ndim == 2


def resolve_device(device):
    """Concrete torch device name for the ``device`` parameter."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            "device='cuda' was requested but torch.cuda.is_available() is False: "
            "no usable GPU was found. Use device='cpu', or device='auto' to take a GPU "
            "only when there is one."
        )
    return device


def check_unit_interval(X, loss):
    """Raise if ``loss='bce'`` is asked of data outside [0, 1]."""
    if loss != "bce":
        return
    values = X.data if sparse.issparse(X) else X
    if values.size == 0:
        return
    low, high = values.min(), values.max()
    if low < 0 or high > 1:
        raise ValueError(
            f"loss='bce' needs every value of X in [0, 1], but X ranges from {low:.6g} to "
            f"{high:.6g}. Scale X first (for example with sklearn.preprocessing.MinMaxScaler) "
            "or use loss='mse'."
        )


# Remedies appended to scikit-learn's input errors that name a problem but not a
# fix: (pattern of the message, what to do). The original message is kept, so
# the errors still match what scikit-learn's estimator checks expect.
INPUT_ERROR_REMEDIES = (
    (
        r"could not convert|Unable to convert array of bytes/strings",
        "X must be numeric: encode text and categorical columns as numbers first, for "
        "example with sklearn.preprocessing.OneHotEncoder or OrdinalEncoder in a "
        "sklearn.compose.ColumnTransformer.",
    ),
    (
        r"^Complex data not supported",
        "The networks compute with real numbers: pass the real and imaginary parts as "
        "separate features, for example np.hstack([X.real, X.imag]).",
    ),
    (
        r"contains infinity",
        "Replace or drop the infinite values first, for example with "
        "np.nan_to_num(X, posinf=..., neginf=...) or by clipping X.",
    ),
    (
        r"Found array with dim [3-9]",
        "Pass a 2-D array of shape (n_samples, n_features): flatten each sample, for "
        "example X.reshape(len(X), -1) (for images, set image_shape to the original "
        "shape of one sample).",
    ),
    (
        r"^X has \d+ features, but",
        "Pass the same columns, in the same order, as in fit.",
    ),
)


@contextlib.contextmanager
def explained_input_errors():
    """Re-raise scikit-learn's input ValueErrors with a remedy where they lack one."""
    try:
        yield
    except ValueError as error:
        message = str(error)
        for pattern, remedy in INPUT_ERROR_REMEDIES:
            if re.search(pattern, message):
                if message.startswith("Complex data not supported"):
                    # scikit-learn appends the whole array; the problem is its dtype.
                    message = "Complex data not supported."
                message = message.rstrip()
                raise ValueError(
                    f"{message}{'' if message.endswith('.') else '.'} {remedy}"
                ) from error
        raise


def validate_data(estimator, X, **kwargs):
    """:func:`sklearn.utils.validation.validate_data`, with remedies in its errors."""
    with explained_input_errors():
        return sklearn_validation.validate_data(estimator, X, **kwargs)


def check_array(array, **kwargs):
    """:func:`sklearn.utils.validation.check_array`, with remedies in its errors."""
    with explained_input_errors():
        return sklearn_validation.check_array(array, **kwargs)


def positive_ints(value, name, lengths=None):
    """``value`` (an int or a sequence of ints) as a tuple of positive ints, or a ValueError.

    Booleans are refused: ``True`` is an int to Python, not a width to a user.
    """
    values = (value,) if isinstance(value, Integral) else tuple(value)
    if any(
        isinstance(v, (bool, np.bool_)) or not isinstance(v, Integral) or v < 1 for v in values
    ) or (lengths is not None and len(values) not in lengths):
        count = f"{' or '.join(map(str, lengths))} " if lengths else ""
        raise ValueError(f"{name} must hold {count}positive integers, got {value!r}")
    return tuple(int(v) for v in values)


def validate_out_of_core(estimator, X, reset):
    """validate_data for a memmap, without reading it into memory at once.

    The first row goes through validate_data (dimensions, dtype, feature
    count, n_features_in_); NaN and infinity are then looked for chunk by chunk.
    """
    validate_data(estimator, X[:1], reset=reset, dtype=FLOAT_DTYPES)
    chunk_rows = max(1, CHECK_CHUNK_BYTES // max(1, X.shape[1] * X.itemsize))
    for start in range(0, X.shape[0], chunk_rows):
        assert_all_finite(
            X[start : start + chunk_rows],
            input_name="X",
            estimator_name=type(estimator).__name__,
        )


def evenly_spaced_rows(X, max_rows):
    """At most ``max_rows`` evenly spaced rows of ``X`` (dense, sparse or a memmap), dense float64.

    A memmap is read for those rows only.
    """
    sample = X[:: max(1, X.shape[0] // max_rows)]
    if sparse.issparse(sample):
        sample = sample.toarray()
    return np.asarray(sample, dtype=np.float64)
