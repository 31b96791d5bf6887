"""Bad input gets a clear error naming the problem and the remedy (docs/bad_inputs.md).

Every case runs over every public estimator; each test is a row of the table in
docs/bad_inputs.md. A failed call must also leave a fitted estimator as it was.
"""

import re

import numpy as np
import pandas as pd
import pytest
import torch
from numpy.testing import assert_array_equal
from scipy import sparse
from sklearn.utils._param_validation import InvalidParameterError

from sklae import AutoencoderOutlierDetector, ConformalOutlierDetector, DenoisingAutoencoder
from sklae.utils._test_common.instance_generator import SEED, tiny_estimators

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

X = np.random.default_rng(SEED).random((30, 4))
COLUMNS = ["a", "b", "c", "d"]


def make_new(name):
    """A new tiny estimator of each kind: one epoch, the detector with one member."""
    return lambda: tiny_estimators(max_iter=1, n_estimators=1)[name]


ESTIMATORS = {name: make_new(name) for name in tiny_estimators()}
NAMES = list(ESTIMATORS)
AUTOENCODERS = NAMES[:3]
FITTED = {}


def fitted(name, on_frame=False):
    """A fitted estimator of each kind, on X or on a DataFrame with named columns."""
    if (name, on_frame) not in FITTED:
        data = pd.DataFrame(X, columns=COLUMNS) if on_frame else X
        FITTED[name, on_frame] = ESTIMATORS[name]().fit(data)
    return FITTED[name, on_frame]


def prediction_methods(estimator):
    if isinstance(estimator, ConformalOutlierDetector):
        return ["score_samples", "decision_function", "predict", "p_values"]
    if isinstance(estimator, AutoencoderOutlierDetector):
        return ["score_samples", "decision_function", "predict"]
    methods = ["transform", "score_samples", "score"]
    return [*methods, "predict"] if isinstance(estimator, DenoisingAutoencoder) else methods


def with_value(value, where=(0, 0)):
    data = X.copy()
    data[where] = value
    return data


def accepts_missing_values(estimator):
    return estimator.__sklearn_tags__().input_tags.allow_nan


def with_object(value):
    data = X.astype(object)
    data[0, 0] = value
    return data


# (case, bad X, error type, pattern for the problem, pattern for the remedy)
BAD_DATA = [
    ("nan", with_value(np.nan), ValueError, "Input X contains NaN", "imputer"),
    ("inf", with_value(np.inf), ValueError, "Input X contains infinity", "nan_to_num"),
    ("-inf", with_value(-np.inf), ValueError, "Input X contains infinity", "clipping X"),
    (
        "strings",
        np.array([["a", "b", "c", "d"]] * 3),
        ValueError,
        "could not convert string to float",
        "OneHotEncoder or OrdinalEncoder",
    ),
    (
        "object column",
        with_object("x"),
        ValueError,
        "could not convert string to float: 'x'",
        "encode text and categorical columns",
    ),
    (
        "complex",
        X + 1j,
        ValueError,
        r"^Complex data not supported\.",
        r"np\.hstack\(\[X\.real, X\.imag\]\)",
    ),
    ("1-D", X[:, 0], ValueError, "Expected 2D array, got 1D array", r"reshape\(-1, 1\)"),
    (
        "3-D",
        X.reshape(30, 2, 2),
        ValueError,
        "Found array with dim 3",
        r"X\.reshape\(len\(X\), -1\)",
    ),
    ("scalar", 3.0, ValueError, "Expected 2D array, got scalar array", r"reshape"),
    ("no rows", np.empty((0, 4)), ValueError, r"0 sample\(s\)", "minimum of 1 is required"),
    ("no columns", np.empty((30, 0)), ValueError, r"0 feature\(s\)", "minimum of 1 is required"),
    (
        "labels as X",
        np.arange(30) % 3,
        ValueError,
        "Expected 2D array, got 1D array",
        r"reshape\(-1, 1\)",
    ),
]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    ("case", "bad", "error", "problem", "remedy"), BAD_DATA, ids=[row[0] for row in BAD_DATA]
)
def test_bad_data_to_fit_names_problem_and_remedy(name, case, bad, error, problem, remedy):
    estimator = ESTIMATORS[name]()
    if case == "nan" and accepts_missing_values(estimator):
        pytest.skip("missing values are accepted (tests/test_outlier.py)")

    with pytest.raises(error, match=problem) as info:
        estimator.fit(bad)

    assert re.search(remedy, str(info.value)), str(info.value)
    assert not hasattr(estimator, "n_features_in_")


AFTER_FIT = [
    ("nan", with_value(np.nan), "Input X contains NaN", "imputer"),
    ("inf", with_value(np.inf), "Input X contains infinity", "nan_to_num"),
    ("complex", X + 1j, "^Complex data not supported", r"X\.real"),
    ("3-D", X.reshape(30, 2, 2), "Found array with dim 3", "flatten each sample"),
    ("no rows", np.empty((0, 4)), r"0 sample\(s\)", "minimum of 1"),
    ("wrong number of features", X[:, :3], "X has 3 features, but .* expecting 4", "same columns"),
    ("strings", np.array([["a", "b", "c", "d"]]), "could not convert", "OneHotEncoder"),
]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    ("case", "bad", "problem", "remedy"), AFTER_FIT, ids=[row[0] for row in AFTER_FIT]
)
def test_bad_data_after_fit_names_problem_and_remedy(name, case, bad, problem, remedy):
    estimator = fitted(name)
    if case == "nan" and accepts_missing_values(estimator):
        pytest.skip("missing values are accepted (tests/test_outlier.py)")
    reference = estimator.score_samples(X)

    for method in prediction_methods(estimator):
        with pytest.raises(ValueError, match=problem) as info:
            getattr(estimator, method)(bad)
        assert re.search(remedy, str(info.value)), (method, str(info.value))

    assert_array_equal(estimator.score_samples(X), reference)


@pytest.mark.parametrize("name", NAMES)
def test_dataframe_with_other_column_names_is_rejected(name):
    estimator = fitted(name, on_frame=True)
    renamed = pd.DataFrame(X, columns=["a", "b", "c", "z"])

    for method in prediction_methods(estimator):
        with pytest.raises(
            ValueError, match=r"(?s)feature names should match.*unseen at fit time:\n- z"
        ):
            getattr(estimator, method)(renamed)


@pytest.mark.parametrize("name", NAMES)
def test_dataframe_with_reordered_columns_is_rejected(name):
    estimator = fitted(name, on_frame=True)
    reordered = pd.DataFrame(X[:, ::-1], columns=COLUMNS[::-1])

    with pytest.raises(ValueError, match="must be in the same order as they were in fit"):
        estimator.score_samples(reordered)


@pytest.mark.parametrize("name", AUTOENCODERS)
def test_sparse_input_with_nan_is_rejected(name):
    bad = sparse.csr_matrix(with_value(np.nan))

    with pytest.raises(ValueError, match="Input X contains NaN"):
        ESTIMATORS[name]().fit(bad)
    with pytest.raises(ValueError, match="Input X contains NaN"):
        fitted(name).transform(bad)


def test_sparse_input_to_the_outlier_detector_is_scored_as_its_dense_rows():
    rows = sparse.csr_matrix(X)
    detector = fitted("AutoencoderOutlierDetector")

    assert_array_equal(detector.score_samples(rows), detector.score_samples(X))
    assert_array_equal(
        ESTIMATORS["AutoencoderOutlierDetector"]().fit(rows).score_samples(X),
        detector.score_samples(X),
    )


@pytest.mark.parametrize("name", NAMES)
def test_labels_passed_as_y_are_ignored(name):
    # fit(X, y) is the call a Pipeline makes: y is ignored, not an error.
    labels = np.arange(30) % 3

    estimator = ESTIMATORS[name]().fit(X, labels)

    assert estimator.n_features_in_ == 4


@pytest.mark.parametrize("name", AUTOENCODERS)
def test_inverse_transform_of_rows_instead_of_codes_is_rejected(name):
    with pytest.raises(ValueError, match=r"X has 4 features, but inverse_transform expects codes"):
        fitted(name).inverse_transform(X)


# (estimator name, parameters, error type, message pattern naming problem and remedy)
BAD_PARAMETERS = [
    (
        "AutoencoderTransformer",
        {"code_size": 0},
        InvalidParameterError,
        r"'code_size' parameter .* must be an int in the range \[1, inf\) or a float in the "
        r"range \(0\.0, 1\.0\)\. Got 0",
    ),
    (
        "AutoencoderTransformer",
        {"loss": "hinge"},
        InvalidParameterError,
        r"'loss' parameter .* must be a str among \{.*'mse'.*\}",
    ),
    (
        "AutoencoderTransformer",
        {"learning_rate_init": 0.0},
        InvalidParameterError,
        r"'learning_rate_init' parameter .* range \(0.0, inf\)",
    ),
    (
        "AutoencoderTransformer",
        {"max_grad_norm": -1.0},
        InvalidParameterError,
        r"'max_grad_norm' parameter .* range \(0.0, inf\) or None",
    ),
    (
        "AutoencoderTransformer",
        {"hidden_layer_sizes": (4, -2)},
        ValueError,
        r"hidden_layer_sizes must hold positive integers, got \(4, -2\)",
    ),
    (
        "AutoencoderTransformer",
        {"device": "tpu"},
        InvalidParameterError,
        r"'device' parameter .* among \{.*'cpu'.*\}",
    ),
    (
        "AutoencoderTransformer",
        {"sparsity_target": 0.1},
        ValueError,
        r"sparsity_target .* needs codes in \(0, 1\): set code_activation='logistic'",
    ),
    (
        "AutoencoderTransformer",
        {"loss": "bce", "output_activation": "identity"},
        ValueError,
        r"loss='bce' .* needs output_activation='sigmoid' or 'auto'",
    ),
    (
        "AutoencoderTransformer",
        {"loss": "bce"},
        ValueError,
        r"loss='bce' needs every value of X in \[0, 1\].*MinMaxScaler",
    ),
    (
        "AutoencoderTransformer",
        {"image_shape": (3, 3)},
        ValueError,
        r"image_shape=\(3, 3\) describes 9 values per row, but X has 4 features",
    ),
    (
        "AutoencoderTransformer",
        {"encoder": torch.nn.Linear(4, 2)},
        ValueError,
        "encoder and decoder must be given together, or neither",
    ),
    (
        "DenoisingAutoencoder",
        {"noise": "masking", "noise_level": 1.5},
        ValueError,
        r"noise_level is the probability .* must be in \[0, 1\]; got 1.5",
    ),
    (
        "DenoisingAutoencoder",
        {"noise": "speckle"},
        InvalidParameterError,
        r"'noise' parameter .* among \{.*'gaussian'.*\}",
    ),
    (
        "AutoencoderOutlierDetector",
        {"contamination": 0.7},
        InvalidParameterError,
        r"'contamination' parameter .* range \(0.0, 0.5\]",
    ),
    (
        "AutoencoderOutlierDetector",
        {"n_estimators": 0},
        InvalidParameterError,
        r"'n_estimators' parameter .* range \[1, inf\)",
    ),
]


@pytest.mark.parametrize(
    ("name", "params", "error", "message"),
    BAD_PARAMETERS,
    ids=[f"{row[0]}-{'-'.join(row[1])}" for row in BAD_PARAMETERS],
)
def test_invalid_parameters_are_named_with_the_valid_values(name, params, error, message):
    estimator = ESTIMATORS[name]().set_params(**params)

    with pytest.raises(error, match=message):
        estimator.fit(X + 1 if params.get("loss") == "bce" else X)

    assert not hasattr(estimator, "n_features_in_")
    assert issubclass(error, ValueError)


@pytest.mark.parametrize("name", AUTOENCODERS)
def test_early_stopping_with_one_row_asks_for_two(name):
    estimator = ESTIMATORS[name]().set_params(early_stopping=True)

    with pytest.raises(ValueError, match=r"early_stopping=True .* needs at least 2 samples"):
        estimator.fit(X[:1])


@pytest.mark.parametrize("name", NAMES)
def test_failed_fit_leaves_a_fitted_estimator_unchanged(name):
    data = pd.DataFrame(X, columns=COLUMNS)
    estimator = ESTIMATORS[name]().fit(data)
    reference = estimator.score_samples(data)

    failing = [
        (with_value(np.nan), "NaN"),
        (X + 1j, "Complex"),
        (np.empty((0, 4)), "0 sample"),
        (with_object("x"), "could not convert"),
    ]
    if accepts_missing_values(estimator):
        failing = failing[1:]
    for bad, problem in failing:
        with pytest.raises(ValueError, match=problem):
            estimator.fit(bad)

    assert estimator.n_features_in_ == 4
    assert list(estimator.feature_names_in_) == COLUMNS
    assert_array_equal(estimator.score_samples(data), reference)
