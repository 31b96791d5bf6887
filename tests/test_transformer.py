"""Tests of AutoencoderTransformer: the estimator as a scikit-learn user meets it."""

import io
import pickle
import warnings

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from scipy import sparse
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler
from skorch.callbacks import Callback, LRScheduler

from sklae import AutoencoderTransformer, TrainingDivergedError
from sklae._engine import RowData

# Most tests train for a few epochs, where the ConvergenceWarning is expected.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

DIGITS_PIXELS, DIGITS_LABELS = load_digits(return_X_y=True)
DIGITS = DIGITS_PIXELS / 16.0
# The 75/25 split, of the pixels / 16 and, for the pipeline, of the raw pixels.
DIGITS_TRAIN, DIGITS_TEST = train_test_split(DIGITS, test_size=0.25, random_state=0)
PIXELS_TRAIN, PIXELS_TEST, LABELS_TRAIN, LABELS_TEST = train_test_split(
    DIGITS_PIXELS, DIGITS_LABELS, test_size=0.25, random_state=0
)
SMALL = DIGITS[:200]
N_FEATURES = DIGITS.shape[1]
CODE_SIZE = 2
SEED = 0

# A tiny network that trains in milliseconds; tests override what they study.
FAST_PARAMS = {
    "code_size": CODE_SIZE,
    "hidden_layer_sizes": (8,),
    "max_iter": 3,
    "random_state": SEED,
}

# For tests of the training loop itself (batches, partial_fit, warm starts, the
# epoch table, ...): random initial weights, no rows held out and a constant
# rate, the defaults before init="auto", early_stopping="auto" and the annealed
# "auto" rate. Those start at PCA's solution and keep it unless held-out rows
# show a clear improvement, which a few epochs on little data rarely make.
PLAIN_TRAINING = {
    "init": "random",
    "early_stopping": False,
    "learning_rate": "constant",
    "learning_rate_init": 1e-3,
}

# Adam with this step size leaves the loss infinite within two epochs on digits.
DIVERGING_LEARNING_RATE = 1e6


def fast_model(**params):
    return AutoencoderTransformer(**{**FAST_PARAMS, **params})


def fitted_model(**params):
    return fast_model(**params).fit(SMALL)


def mse(a, b):
    return float(np.mean((np.asarray(a, dtype=np.float64) - b) ** 2))


def fitted_state(model):
    """What a failed fit must leave as it was."""
    return {
        "codes": model.transform(SMALL),
        "reconstruction": model.inverse_transform(model.transform(SMALL)),
        "n_features_in_": model.n_features_in_,
        "loss_curve_": list(model.loss_curve_),
        "n_iter_": model.n_iter_,
        "history_length": len(model.net_.history),
    }


def assert_same_fitted_state(before, after):
    assert after["n_features_in_"] == before["n_features_in_"]
    assert after["loss_curve_"] == before["loss_curve_"]
    assert after["n_iter_"] == before["n_iter_"]
    assert after["history_length"] == before["history_length"]
    assert_array_equal(after["codes"], before["codes"])
    assert_array_equal(after["reconstruction"], before["reconstruction"])


# ------------------------------------------------------------ what the literature promises


@pytest.mark.slow  # 100 epochs over all of digits
def test_linear_autoencoder_reaches_pca_reconstruction_error():
    # A linear autoencoder trained with MSE spans the principal subspace, so at
    # its optimum it reconstructs exactly as well as PCA with as many components.
    # Annealing the step size to zero lets Adam settle in that optimum.
    pca = PCA(n_components=8).fit(DIGITS)
    pca_mse = mse(DIGITS, pca.inverse_transform(pca.transform(DIGITS)))
    epochs = 100
    linear = AutoencoderTransformer(
        code_size=8,
        hidden_layer_sizes=(),
        activation="identity",
        loss="mse",
        max_iter=epochs,
        batch_size=32,
        learning_rate_init=1e-2,
        n_iter_no_change=epochs,
        callbacks=[LRScheduler(policy="CosineAnnealingLR", T_max=epochs)],
        # Trained there from random weights on every row: init="auto" would start
        # at PCA's solution and keep it.
        init="random",
        early_stopping=False,
        random_state=SEED,
    ).fit(DIGITS)

    # The network's own output: reconstructions clipped at the pixels' bounds
    # (0 and 1, where digits pile up) are nearer the rows than PCA's optimum.
    clipped_mse = mse(DIGITS, linear.inverse_transform(linear.transform(DIGITS)))
    linear._clips_outputs = False
    linear_mse = mse(DIGITS, linear.inverse_transform(linear.transform(DIGITS)))

    assert pca_mse <= linear_mse * (1 + 1e-4)
    assert linear_mse <= 1.02 * pca_mse
    assert clipped_mse < linear_mse


@pytest.mark.slow  # default settings, trained to convergence on digits
def test_default_autoencoder_reconstructs_held_out_digits_better_than_pca():
    pca = PCA(n_components=8).fit(DIGITS_TRAIN)
    pca_mse = mse(DIGITS_TEST, pca.inverse_transform(pca.transform(DIGITS_TEST)))
    autoencoder = AutoencoderTransformer(code_size=8, random_state=SEED).fit(DIGITS_TRAIN)

    autoencoder_mse = mse(
        DIGITS_TEST, autoencoder.inverse_transform(autoencoder.transform(DIGITS_TEST))
    )

    assert pca_mse == pytest.approx(0.0249, abs=5e-4)
    assert autoencoder_mse < 0.8 * pca_mse


# ---------------------------------------------------------------------- scikit-learn integration


@pytest.mark.slow  # default settings, trained to convergence on digits
def test_pipeline_with_a_classifier_on_the_codes():
    pipeline = Pipeline(
        [
            ("scale", MinMaxScaler()),
            ("ae", AutoencoderTransformer(code_size=8, random_state=SEED)),
            ("clf", LogisticRegression(max_iter=1000)),
        ]
    )

    pipeline.fit(PIXELS_TRAIN, LABELS_TRAIN)
    accuracy = pipeline.score(PIXELS_TEST, LABELS_TEST)

    assert accuracy > 0.85


@pytest.mark.slow  # starting two worker processes that import torch takes ~10 s
def test_grid_search_without_scorer_picks_the_better_reconstruction():
    search = GridSearchCV(
        fast_model(hidden_layer_sizes=(32,), max_iter=20, learning_rate_init=1e-2),
        {"code_size": [2, 8]},
        cv=3,
        n_jobs=2,
    )

    search.fit(DIGITS[:600])

    assert search.best_params_ == {"code_size": 8}
    scores = search.cv_results_["mean_test_score"]
    assert np.all(scores < 0)
    assert scores[1] > scores[0]
    assert search.best_estimator_.transform(DIGITS[:5]).shape == (5, 8)


def test_clone_is_unfitted_with_equal_parameters():
    model = fitted_model(callbacks=[LRScheduler(policy="StepLR", step_size=1)])

    copy = clone(model)

    assert not hasattr(copy, "net_")
    assert not hasattr(copy, "n_features_in_")
    assert copy.get_params().keys() == model.get_params().keys()
    for name, value in model.get_params().items():
        if name == "callbacks":
            assert [type(callback) for callback in copy.callbacks] == [LRScheduler]
        else:
            assert copy.get_params()[name] == value, name
    with pytest.raises(NotFittedError):
        copy.transform(SMALL)


def pickle_round_trip(model):
    return pickle.loads(pickle.dumps(model))


def joblib_round_trip(model):
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    buffer.seek(0)
    return joblib.load(buffer)


@pytest.mark.parametrize("round_trip", [pickle_round_trip, joblib_round_trip])
def test_saved_and_loaded_model_gives_identical_output(round_trip):
    model = fitted_model()

    loaded = round_trip(model)

    codes = model.transform(SMALL)
    assert_array_equal(loaded.transform(SMALL), codes)
    assert_array_equal(loaded.inverse_transform(codes), model.inverse_transform(codes))
    assert_array_equal(loaded.score_samples(SMALL), model.score_samples(SMALL))
    assert loaded.loss_curve_ == model.loss_curve_
    assert loaded.n_features_in_ == model.n_features_in_


@pytest.mark.parametrize("round_trip", [pickle_round_trip, joblib_round_trip])
def test_loaded_model_continues_training_like_the_original(round_trip):
    model = fitted_model()
    loaded = round_trip(model)

    model.partial_fit(SMALL)
    loaded.partial_fit(SMALL)

    assert loaded.n_iter_ == model.n_iter_ == FAST_PARAMS["max_iter"] + 1
    assert_array_equal(loaded.transform(SMALL), model.transform(SMALL))


def test_fit_transform_equals_fit_then_transform():
    codes = fast_model().fit_transform(SMALL)

    assert_array_equal(codes, fitted_model().transform(SMALL))
    assert codes.shape == (len(SMALL), CODE_SIZE)


# ---------------------------------------------------------------------- reproducibility


def test_same_random_state_gives_identical_codes():
    first = fitted_model(random_state=3)
    second = fitted_model(random_state=3)

    assert_array_equal(first.transform(SMALL), second.transform(SMALL))
    assert first.loss_curve_ == second.loss_curve_


def test_different_random_state_gives_different_codes():
    # Random initial weights: the default start, PCA's solution, is the same for every seed.
    first = fitted_model(random_state=3, init="random")
    second = fitted_model(random_state=4, init="random")

    assert not np.array_equal(first.transform(SMALL), second.transform(SMALL))


def test_random_state_instance_is_accepted():
    codes = fitted_model(random_state=np.random.RandomState(5)).transform(SMALL)

    assert_array_equal(codes, fitted_model(random_state=np.random.RandomState(5)).transform(SMALL))


@pytest.mark.parametrize("early_stopping", [False, True])
def test_fit_and_transform_leave_the_global_torch_random_state_alone(early_stopping):
    state = torch.random.get_rng_state()

    model = fitted_model(early_stopping=early_stopping)
    model.partial_fit(SMALL)
    model.transform(SMALL)
    model.score(SMALL)

    assert torch.equal(torch.random.get_rng_state(), state)


# ---------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("bad_value", "message"),
    [(np.nan, "Input X contains NaN"), (np.inf, "Input X contains infinity")],
)
def test_non_finite_input_to_fit_is_rejected(bad_value, message):
    X = SMALL.copy()
    X[3, 5] = bad_value

    with pytest.raises(ValueError, match=message):
        fast_model().fit(X)


@pytest.mark.parametrize("method", ["transform", "score", "score_samples", "partial_fit"])
@pytest.mark.parametrize(
    ("bad_value", "message"),
    [(np.nan, "Input X contains NaN"), (-np.inf, "Input X contains infinity")],
)
def test_non_finite_input_after_fit_is_rejected(method, bad_value, message):
    model = fitted_model()
    X = SMALL.copy()
    X[0, 0] = bad_value

    with pytest.raises(ValueError, match=message):
        getattr(model, method)(X)


@pytest.mark.parametrize("method", ["transform", "score", "score_samples", "partial_fit"])
def test_wrong_number_of_features_after_fit_is_rejected(method):
    model = fitted_model()

    with pytest.raises(ValueError, match=f"X has 10 features, but .* expecting {N_FEATURES}"):
        getattr(model, method)(SMALL[:, :10])


@pytest.mark.parametrize(
    ("X", "message"),
    [(np.empty((0, N_FEATURES)), r"0 sample\(s\)"), (np.empty((20, 0)), r"0 feature\(s\)")],
)
def test_empty_input_is_rejected(X, message):
    with pytest.raises(ValueError, match=message):
        fast_model().fit(X)


def test_empty_input_to_transform_is_rejected():
    with pytest.raises(ValueError, match=r"0 sample\(s\)"):
        fitted_model().transform(np.empty((0, N_FEATURES)))


@pytest.mark.parametrize(
    "X",
    [np.array([["a", "b"], ["c", "d"]]), [["0.5", "pixel"], ["0.1", "0.2"]]],
    ids=["numpy", "list"],
)
def test_string_input_is_rejected(X):
    with pytest.raises(ValueError, match="could not convert string to float"):
        fast_model().fit(X)


def test_one_dimensional_input_is_rejected():
    with pytest.raises(ValueError, match="Expected 2D array"):
        fast_model().fit(SMALL[0])


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"code_size": 0}, "'code_size' parameter"),
        ({"code_size": 2.5}, "'code_size' parameter"),
        ({"loss": "foo"}, "'loss' parameter"),
        ({"activation": "bar"}, "'activation' parameter"),
        ({"output_activation": "softmax"}, "'output_activation' parameter"),
        ({"hidden_layer_sizes": (0,)}, "hidden_layer_sizes must hold .*positive integers"),
        ({"hidden_layer_sizes": (8, -1)}, "hidden_layer_sizes must hold .*positive integers"),
        ({"hidden_layer_sizes": (8, 2.5)}, "hidden_layer_sizes must hold .*positive integers"),
        ({"hidden_layer_sizes": 0}, "'hidden_layer_sizes' parameter"),
        ({"learning_rate_init": -1}, "'learning_rate_init' parameter"),
        ({"learning_rate_init": 0}, "'learning_rate_init' parameter"),
        ({"batch_size": 0}, "'batch_size' parameter"),
        ({"batch_size": "big"}, "'batch_size' parameter"),
        ({"max_iter": 0}, "'max_iter' parameter"),
        ({"alpha": -0.1}, "'alpha' parameter"),
        ({"device": "tpu"}, "'device' parameter"),
        ({"validation_fraction": 1.5}, "'validation_fraction' parameter"),
        ({"validation_fraction": 0.0}, "'validation_fraction' parameter"),
        ({"n_iter_no_change": 0}, "'n_iter_no_change' parameter"),
        ({"tol": -1e-3}, "'tol' parameter"),
        ({"early_stopping": "yes"}, "'early_stopping' parameter"),
        ({"callbacks": "print"}, "'callbacks' parameter"),
    ],
)
def test_invalid_parameters_are_rejected_by_name(params, message):
    with pytest.raises(ValueError, match=message):
        fast_model(**params).fit(SMALL)


def test_invalid_parameter_leaves_no_fitted_state():
    model = fast_model(code_size=0)

    with pytest.raises(ValueError, match="code_size"):
        model.fit(SMALL)

    assert not hasattr(model, "net_")
    assert not hasattr(model, "n_features_in_")


@pytest.mark.parametrize(
    "X",
    [SMALL * 2.0, SMALL - 0.5, sparse.csr_matrix(SMALL * 2.0)],
    ids=["above", "below", "sparse"],
)
def test_bce_rejects_data_outside_the_unit_interval(X):
    with pytest.raises(ValueError, match=r"loss='bce' needs every value of X in \[0, 1\]"):
        fast_model(loss="bce").fit(X)


def test_bce_needs_a_sigmoid_output():
    with pytest.raises(ValueError, match="loss='bce'.*output_activation='sigmoid'"):
        fast_model(loss="bce", output_activation="identity").fit(SMALL)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_cuda_without_a_gpu_is_a_clear_error():
    with pytest.raises(ValueError, match=r"device='cuda'.*torch.cuda.is_available\(\) is False"):
        fast_model(device="cuda").fit(SMALL)


def test_inverse_transform_rejects_codes_of_the_wrong_width():
    model = fitted_model()

    with pytest.raises(ValueError, match=f"X has 5 features.*code_size = {CODE_SIZE}"):
        model.inverse_transform(np.zeros((3, 5)))


def test_inverse_transform_rejects_non_finite_codes():
    with pytest.raises(ValueError, match="Input X contains NaN"):
        fitted_model().inverse_transform(np.full((3, CODE_SIZE), np.nan))


def test_early_stopping_needs_two_samples():
    with pytest.raises(ValueError, match="early_stopping=True .* at least 2 samples"):
        fast_model(early_stopping=True).fit(SMALL[:1])


def test_one_sample_fits_without_early_stopping():
    model = fast_model().fit(SMALL[:1])

    assert model.transform(SMALL[:1]).shape == (1, CODE_SIZE)


@pytest.mark.parametrize(
    "method", ["transform", "inverse_transform", "score", "score_samples", "get_feature_names_out"]
)
def test_methods_before_fit_raise_not_fitted(method):
    arguments = {"get_feature_names_out": (), "inverse_transform": (np.zeros((2, CODE_SIZE)),)}

    with pytest.raises(NotFittedError):
        getattr(fast_model(), method)(*arguments.get(method, (SMALL,)))


# ------------------------------------------------------------ a failed fit changes nothing


def diverging_refit(model):
    # A random start: a kept PCA start turns the error into a DivergenceWarning.
    model.set_params(learning_rate_init=DIVERGING_LEARNING_RATE, init="random")
    model.fit(SMALL)


def nan_refit(model):
    X = SMALL.copy()
    X[7, 7] = np.nan
    model.fit(X)


def empty_refit(model):
    model.fit(np.empty((0, N_FEATURES)))


def bce_refit(model):
    model.set_params(loss="bce")
    model.fit(SMALL * 3)


def invalid_parameter_refit(model):
    model.set_params(code_size=-1)
    model.fit(SMALL)


@pytest.mark.parametrize(
    ("failing_refit", "error"),
    [
        (diverging_refit, TrainingDivergedError),
        (nan_refit, ValueError),
        (empty_refit, ValueError),
        (bce_refit, ValueError),
        (invalid_parameter_refit, ValueError),
    ],
)
def test_failed_fit_leaves_the_fitted_model_unchanged(failing_refit, error):
    model = fitted_model()
    before = fitted_state(model)

    with pytest.raises(error):
        failing_refit(model)

    assert_same_fitted_state(before, fitted_state(model))


@pytest.mark.parametrize("warm_start", [False, True])
def test_failed_continued_training_leaves_the_model_unchanged(warm_start):
    model = fitted_model(warm_start=warm_start)
    before = fitted_state(model)
    continue_training = model.fit if warm_start else model.partial_fit
    X_with_nan = SMALL.copy()
    X_with_nan[1, 1] = np.nan

    with pytest.raises(ValueError, match="X has 10 features"):
        continue_training(SMALL[:, :10])
    with pytest.raises(ValueError, match="NaN"):
        continue_training(X_with_nan)

    assert_same_fitted_state(before, fitted_state(model))


def test_diverging_partial_fit_leaves_the_model_unchanged():
    model = fitted_model()
    before = fitted_state(model)

    # Squared errors of rows this large overflow float32: the loss is infinite.
    with pytest.raises(TrainingDivergedError, match="at epoch 4"):
        model.partial_fit(SMALL * 1e20)

    assert_same_fitted_state(before, fitted_state(model))


# ---------------------------------------------------------------------- divergence


def test_too_large_learning_rate_raises_a_divergence_error():
    model = fast_model(max_iter=10, learning_rate_init=DIVERGING_LEARNING_RATE, init="random")

    with pytest.raises(TrainingDivergedError, match=r"diverged.* at epoch \d+") as info:
        model.fit(SMALL)

    message = str(info.value)
    assert "Lower learning_rate_init" in message
    assert str(DIVERGING_LEARNING_RATE) in message
    assert isinstance(info.value, ValueError)
    assert not hasattr(model, "net_")


# ---------------------------------------------------------------------- mini-batches


def test_fewer_rows_than_batch_size_are_trained():
    model = fast_model(
        batch_size=256, max_iter=20, **{**PLAIN_TRAINING, "learning_rate_init": 1e-2}
    )
    model.fit(SMALL[:10])

    assert model.net_.history[-1]["train_batch_count"] == 1
    assert model.loss_curve_[-1] < 0.5 * model.loss_curve_[0]


def test_the_short_last_batch_is_trained_and_counted():
    model = fast_model(batch_size=128, max_iter=1, early_stopping=False).fit(DIGITS[:300])

    record = model.net_.history[-1]
    batch_sizes = [batch["train_batch_size"] for batch in record["batches"]]
    batch_losses = [batch["train_loss"] for batch in record["batches"]]
    assert record["train_batch_count"] == 3
    assert batch_sizes == [128, 128, 44]
    assert model.loss_curve_[0] == pytest.approx(np.average(batch_losses, weights=batch_sizes))


def test_auto_batch_size_uses_all_rows_of_a_small_set():
    # "auto" takes at least 16 rows per step, or all of them when there are fewer.
    model = fast_model(max_iter=1, early_stopping=False).fit(SMALL[:16])

    assert model.net_.history[-1]["train_batch_count"] == 1


# ---------------------------------------------------------------------- partial_fit


def test_partial_fit_initialises_then_adds_one_epoch_per_call():
    model = fast_model()

    model.partial_fit(SMALL)

    assert model.n_features_in_ == N_FEATURES
    assert model.n_iter_ == 1
    assert model.transform(SMALL).shape == (len(SMALL), CODE_SIZE)
    for expected_epochs in range(2, 5):
        model.partial_fit(SMALL)
        assert model.n_iter_ == expected_epochs
        assert len(model.loss_curve_) == expected_epochs


def test_repeated_partial_fit_lowers_the_loss():
    model = fast_model(hidden_layer_sizes=(32,), learning_rate_init=1e-2, init="random")

    scores = []
    for _ in range(10):
        model.partial_fit(DIGITS)
        scores.append(model.score(DIGITS))

    assert model.loss_curve_[-1] < 0.7 * model.loss_curve_[0]
    assert scores[-1] > scores[0]


def test_partial_fit_on_chunks_streams_the_data():
    # Batches larger than a chunk: each call trains on its chunk as one batch.
    model = fast_model(batch_size=256)

    for chunk in np.array_split(SMALL, 4):
        model.partial_fit(chunk)

    assert model.n_iter_ == 4
    assert model.net_.history[-1]["train_batch_count"] == 1


def test_partial_fit_ignores_early_stopping():
    model = fast_model(early_stopping=True)

    model.partial_fit(SMALL)
    model.partial_fit(SMALL)

    assert model.n_iter_ == 2
    assert model.validation_scores_ is None


def test_partial_fit_after_an_early_stopping_fit_continues():
    model = fitted_model(early_stopping=True)

    model.partial_fit(SMALL)

    assert model.n_iter_ == FAST_PARAMS["max_iter"] + 1


# ---------------------------------------------------------------------- warm_start


def test_warm_start_continues_training():
    model = fast_model(warm_start=True, max_iter=5, tol=0.0, **PLAIN_TRAINING)

    model.fit(DIGITS)
    first_curve = list(model.loss_curve_)
    model.fit(DIGITS)

    assert model.n_iter_ == 10
    assert len(model.loss_curve_) == 10
    assert model.loss_curve_[:5] == first_curve
    drop_in_first_fit = first_curve[0] - first_curve[-1]
    assert abs(model.loss_curve_[5] - first_curve[-1]) < 0.2 * drop_in_first_fit


def test_warm_start_trains_with_the_current_learning_rate_and_stopping_rule():
    model = fitted_model(warm_start=True, max_iter=5)
    codes = model.transform(SMALL)

    model.set_params(learning_rate_init=1e-9, max_iter=50, tol=0.5, n_iter_no_change=1)
    model.fit(SMALL)

    # Steps of 1e-9 leave the weights where they were, and the loose stopping
    # rule ends the second run long before its 50 epochs.
    assert_allclose(model.transform(SMALL), codes, atol=1e-5)
    assert 5 < model.n_iter_ < 5 + 50


def test_without_warm_start_fit_starts_afresh():
    model = fast_model(max_iter=5, tol=0.0)

    model.fit(DIGITS)
    first_curve = list(model.loss_curve_)
    first_codes = model.transform(DIGITS)
    model.fit(DIGITS)

    assert model.n_iter_ == 5
    assert model.loss_curve_ == first_curve
    assert_array_equal(model.transform(DIGITS), first_codes)


def test_warm_start_with_new_features_refits_only_without_warm_start():
    model = fitted_model(warm_start=True)

    with pytest.raises(ValueError, match="X has 10 features"):
        model.fit(SMALL[:, :10])
    model.set_params(warm_start=False).fit(SMALL[:, :10])

    assert model.n_features_in_ == 10


# ---------------------------------------------------------------------- early stopping


def test_early_stopping_attributes():
    # A random start is not scored as an epoch, so the best epoch is kept.
    model = fast_model(early_stopping=True, max_iter=8, init="random").fit(SMALL)

    assert len(model.validation_scores_) == model.n_iter_ == len(model.loss_curve_)
    assert model.best_validation_score_ == max(model.validation_scores_)
    assert all(score < 0 for score in model.validation_scores_)


def test_early_stopping_restores_the_best_weights():
    # A wide network with large steps on 80 rows overfits within a few epochs,
    # so the validation loss of the last epoch is worse than the best one.
    X = DIGITS[:80]
    model = AutoencoderTransformer(
        code_size=16,
        hidden_layer_sizes=(512,),
        learning_rate_init=3e-3,
        batch_size=8,
        max_iter=200,
        early_stopping=True,
        validation_fraction=0.25,
        n_iter_no_change=5,
        # From random weights, which the first epochs clearly improve on (a start
        # at PCA's solution would be kept).
        init="random",
        random_state=SEED,
    ).fit(X)
    _, valid = model.net_.train_split(RowData(torch.tensor(X, dtype=torch.float32)))
    valid_rows = valid.values.numpy()

    # The validation scores are the network's; score clips its outputs at the
    # pixels' bounds (0 and 1, where digits pile up), which only brings them nearer.
    clipped_score = model.score(valid_rows)
    model._clips_outputs = False
    restored_score = model.score(valid_rows)

    assert clipped_score >= restored_score
    assert model.n_iter_ < 200
    assert len(valid_rows) == 20
    assert model.validation_scores_[-1] < model.best_validation_score_
    assert restored_score == pytest.approx(model.best_validation_score_, rel=1e-4)
    # The epoch restored, counted from 1 as n_iter_ counts: the best one's.
    assert model.best_epoch_ == 1 + int(np.argmax(model.validation_scores_)) < model.n_iter_
    assert restored_score != pytest.approx(model.validation_scores_[-1], rel=1e-3)


def test_without_early_stopping_there_are_no_validation_scores():
    model = fitted_model(max_iter=6, early_stopping=False)

    assert model.validation_scores_ is None
    assert model.best_validation_score_ is None
    assert model.best_epoch_ is None
    assert model.best_loss_ == min(model.loss_curve_)
    assert len(model.loss_curve_) == model.n_iter_ == 6


def test_early_stopping_holds_out_validation_fraction():
    model = fast_model(early_stopping=True, validation_fraction=0.2, max_iter=1).fit(SMALL)

    record = model.net_.history[-1]
    valid_rows = sum(batch.get("valid_batch_size", 0) for batch in record["batches"])
    train_rows = sum(batch.get("train_batch_size", 0) for batch in record["batches"])
    assert (train_rows, valid_rows) == (160, 40)


# ---------------------------------------------------------------------- when training stops


def test_convergence_warning_when_max_iter_is_reached():
    with pytest.warns(ConvergenceWarning, match=r"Maximum iterations \(2\) reached"):
        fast_model(max_iter=2, learning_rate="constant").fit(SMALL)


@pytest.mark.parametrize("early_stopping", [True, False])
def test_convergence_warning_advises_only_what_is_off(early_stopping):
    # Advising to enable early stopping to a fit that had it on misleads.
    model = fast_model(
        max_iter=2, learning_rate="constant", early_stopping=early_stopping, n_iter_no_change=5
    )
    with pytest.warns(ConvergenceWarning) as caught:
        model.fit(SMALL)
    message = str(caught[0].message)
    assert ("enable early_stopping" in message) is not early_stopping
    loss = "validation" if early_stopping else "training"
    assert f"the {loss} loss had not stalled for 5 epochs" in message
    assert "learning_rate='cosine'" in message


def test_no_convergence_warning_when_training_stops_on_its_own():
    model = fast_model(max_iter=50, tol=0.5, n_iter_no_change=1)

    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model.fit(SMALL)

    assert model.n_iter_ < 50


def test_no_convergence_warning_when_early_stopping_ends_training():
    model = fast_model(max_iter=50, early_stopping=True, tol=0.5, n_iter_no_change=1)

    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model.fit(SMALL)

    assert model.n_iter_ < 50


def test_no_convergence_warning_from_partial_fit():
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        fast_model(max_iter=1).partial_fit(SMALL)


class InterruptAtEpoch(Callback):
    """Raises KeyboardInterrupt, as Ctrl-C would, at the end of epoch ``epoch``."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == self.epoch:
            raise KeyboardInterrupt


class InterruptInEpoch(Callback):
    """Raises KeyboardInterrupt after the first batch of epoch ``epoch``."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_batch_end(self, net, training=False, **kwargs):
        if training and len(net.history) == self.epoch:
            raise KeyboardInterrupt


def test_keyboard_interrupt_keeps_the_model_trained_so_far():
    model = fast_model(max_iter=10, callbacks=[InterruptAtEpoch(3)])

    with pytest.warns(UserWarning, match="interrupted after 3 of 10 epochs"):
        returned = model.fit(SMALL)

    assert returned is model
    assert model.n_iter_ == 3
    assert len(model.loss_curve_) == 3
    assert np.all(np.isfinite(model.transform(SMALL)))


def test_keyboard_interrupt_within_an_epoch_drops_the_unfinished_epoch():
    model = fast_model(max_iter=10, batch_size=16, callbacks=[InterruptInEpoch(2)])

    with pytest.warns(UserWarning, match="interrupted after 1 of 10 epochs"):
        model.fit(SMALL)

    assert model.n_iter_ == 1
    assert all(np.isfinite(model.loss_curve_))
    assert model.transform(SMALL).shape == (len(SMALL), CODE_SIZE)


def test_keyboard_interrupt_with_early_stopping_keeps_the_best_weights():
    model = fast_model(
        max_iter=10, early_stopping=True, init="random", callbacks=[InterruptAtEpoch(4)]
    )

    with pytest.warns(UserWarning, match="best validation epoch were restored"):
        model.fit(SMALL)

    assert model.n_iter_ == 4
    assert model.best_validation_score_ == max(model.validation_scores_)


# ---------------------------------------------------------------------- verbose


def test_verbose_prints_a_table_per_epoch(capsys):
    fast_model(max_iter=2, verbose=1, early_stopping=False).fit(SMALL)

    output = capsys.readouterr().out
    header = output.splitlines()[0]
    for column in ("epoch", "train_loss", "dur"):
        assert column in header
    assert "valid_loss" not in header
    # One row per epoch, after the header and its rule.
    assert len(output.strip().splitlines()) == 2 + 2


def test_verbose_with_early_stopping_shows_the_validation_loss(capsys):
    fast_model(max_iter=2, verbose=1, early_stopping=True).fit(SMALL)

    header = capsys.readouterr().out.splitlines()[0]
    for column in ("epoch", "train_loss", "valid_loss", "dur"):
        assert column in header


def test_a_silent_fit_turned_verbose_prints_its_table(capsys):
    # A silent net drops skorch's PrintLog (it tabulates every epoch for nothing);
    # verbosity set later brings it back.
    model = fast_model(max_iter=2, early_stopping=False, warm_start=True).fit(SMALL)
    assert "print_log" not in dict(model.net_.callbacks_)
    assert capsys.readouterr().out == ""

    model.set_params(verbose=1).fit(SMALL)

    output = capsys.readouterr().out
    assert "train_loss" in output.splitlines()[0]
    assert len(output.strip().splitlines()) == 2 + 2


def test_quiet_by_default(capsys):
    model = fast_model(max_iter=2, early_stopping=True).fit(SMALL)
    model.partial_fit(SMALL)
    model.transform(SMALL)

    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == ""


# ---------------------------------------------------------------------- input formats


@pytest.mark.parametrize("to_sparse", [sparse.csr_matrix, sparse.csc_matrix])
def test_sparse_input_trains_like_dense_input(to_sparse):
    # The same network for both: init="auto" starts dense input only at PCA's solution.
    dense_model = fitted_model(batch_size=32, init="random")
    sparse_model = fast_model(batch_size=32, init="random").fit(to_sparse(SMALL))

    dense_codes = dense_model.transform(SMALL)
    assert_allclose(sparse_model.transform(to_sparse(SMALL)), dense_codes, rtol=1e-5, atol=1e-6)
    assert_allclose(sparse_model.loss_curve_, dense_model.loss_curve_, rtol=1e-5)
    assert_array_equal(dense_model.transform(to_sparse(SMALL)), dense_codes)
    assert dense_model.score(to_sparse(SMALL)) == pytest.approx(dense_model.score(SMALL))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_output_dtype_follows_the_input(dtype):
    model = fast_model().fit(SMALL.astype(dtype))

    codes = model.transform(SMALL.astype(dtype))
    reconstruction = model.inverse_transform(codes)

    assert codes.dtype == dtype
    assert reconstruction.dtype == dtype
    assert model.score_samples(SMALL.astype(dtype)).shape == (len(SMALL),)


def test_float32_and_float64_input_train_the_same_network():
    single = fitted_model()
    double = fast_model().fit(SMALL.astype(np.float32))

    assert_allclose(single.transform(SMALL), double.transform(SMALL), rtol=1e-6)


def test_integer_input_works_and_gives_float64():
    model = fast_model().fit(DIGITS_PIXELS[:200].astype(np.int64))

    codes = model.transform(DIGITS_PIXELS[:200].astype(np.int64))

    assert codes.dtype == np.float64
    assert np.all(np.isfinite(codes))


def test_list_input_works():
    assert fast_model().fit(SMALL.tolist()).transform(SMALL[:3].tolist()).shape == (3, CODE_SIZE)


PIXEL_NAMES = [f"pixel_{i}" for i in range(N_FEATURES)]
FEATURE_NAMES_OUT = [f"autoencodertransformer{i}" for i in range(CODE_SIZE)]


def test_dataframe_input_sets_feature_names():
    frame = pd.DataFrame(SMALL, columns=PIXEL_NAMES)

    model = fast_model().fit(frame)

    assert_array_equal(model.feature_names_in_, PIXEL_NAMES)
    assert_array_equal(model.get_feature_names_out(), FEATURE_NAMES_OUT)
    assert_array_equal(model.transform(frame), fitted_model().transform(SMALL))


def test_set_output_pandas_keeps_index_and_names_the_codes():
    index = pd.RangeIndex(1000, 1000 + len(SMALL))
    frame = pd.DataFrame(SMALL, columns=PIXEL_NAMES, index=index)
    model = fast_model().set_output(transform="pandas")

    codes = model.fit_transform(frame)

    assert isinstance(codes, pd.DataFrame)
    assert list(codes.columns) == FEATURE_NAMES_OUT
    assert codes.index.equals(index)
    assert_array_equal(codes.to_numpy(), fitted_model().transform(SMALL))


def test_feature_names_out_follow_code_size():
    model = fitted_model(code_size=5)

    assert_array_equal(
        model.get_feature_names_out(), [f"autoencodertransformer{i}" for i in range(5)]
    )


def test_dataframe_with_other_column_names_is_rejected_at_transform():
    model = fast_model().fit(pd.DataFrame(SMALL, columns=PIXEL_NAMES))

    with pytest.raises(ValueError, match="feature names should match"):
        model.transform(pd.DataFrame(SMALL, columns=[f"x{i}" for i in range(N_FEATURES)]))


# ---------------------------------------------------------------------- scores and losses


def test_score_is_negative_mean_squared_reconstruction_error():
    model = fitted_model()

    reconstruction = model.inverse_transform(model.transform(DIGITS))

    assert model.score(DIGITS) == pytest.approx(-mse(DIGITS, reconstruction), rel=1e-5)


def test_score_samples_are_per_row_errors_whose_mean_is_the_score():
    model = fitted_model()

    scores = model.score_samples(DIGITS)
    reconstruction = model.inverse_transform(model.transform(DIGITS))

    assert scores.shape == (len(DIGITS),)
    assert np.all(scores <= 0)
    assert_allclose(scores, -np.mean((DIGITS - reconstruction) ** 2, axis=1), rtol=1e-5)
    assert scores.mean() == pytest.approx(model.score(DIGITS), rel=1e-6)


def test_training_improves_the_score():
    short = fitted_model(max_iter=1, hidden_layer_sizes=(32,))
    longer = fitted_model(max_iter=30, hidden_layer_sizes=(32,))

    assert longer.score(DIGITS) > short.score(DIGITS)


def test_bce_on_unit_interval_data_trains_with_bounded_reconstructions():
    model = fitted_model(loss="bce", max_iter=20, learning_rate_init=1e-2)

    reconstruction = model.inverse_transform(model.transform(SMALL))

    assert reconstruction.min() >= 0
    assert reconstruction.max() <= 1
    assert model.loss_curve_[-1] < model.loss_curve_[0]


def test_bce_accepts_the_bounds_of_the_unit_interval():
    X = (SMALL > 0.5).astype(np.float64)

    model = fast_model(loss="bce").fit(X)

    assert np.all(np.isfinite(model.loss_curve_))


def test_l1_loss_trains():
    def l1_error(model):
        return float(np.mean(np.abs(SMALL - model.inverse_transform(model.transform(SMALL)))))

    start = fitted_model(loss="l1", max_iter=1, **{**PLAIN_TRAINING, "learning_rate_init": 1e-2})
    trained = fitted_model(loss="l1", max_iter=30, **{**PLAIN_TRAINING, "learning_rate_init": 1e-2})

    assert l1_error(trained) < 0.8 * l1_error(start)
    assert trained.loss_curve_[-1] < trained.loss_curve_[0]


def test_alpha_shrinks_the_weights():
    def weight_norm(model):
        return sum(
            float(parameter.detach().norm())
            for name, parameter in model.module_.named_parameters()
            if name.endswith("weight")
        )

    # From random weights, without rows held out: a start at PCA's solution that
    # neither fit beats on the validation rows would be kept by both.
    plain = fitted_model(max_iter=20, **PLAIN_TRAINING)
    penalised = fitted_model(max_iter=20, alpha=1.0, **PLAIN_TRAINING)

    assert weight_norm(penalised) < weight_norm(plain)


def test_module_is_the_trained_network():
    # transform computes in float64, encode here in float32: codes near zero
    # differ by more than rtol=1e-6 for some weights, so the settings this was
    # measured with (one batch of all rows, as batch_size="auto" took then).
    model = fitted_model(batch_size=256, **PLAIN_TRAINING)

    with torch.no_grad():
        codes = model.module_.encode(torch.tensor(SMALL, dtype=torch.float32)).numpy()

    assert_allclose(model.transform(SMALL), codes, rtol=1e-6)
    assert model.module_ is model.net_.module_


# ---------------------------------------------------------------------- callbacks


class CountEpochs(Callback):
    def __init__(self):
        self.calls = 0

    def on_epoch_end(self, net, **kwargs):
        self.calls += 1


def test_user_callback_is_called_every_epoch_on_a_copy():
    counter = CountEpochs()
    model = fast_model(max_iter=4, callbacks=[counter])

    model.fit(SMALL)
    trained_counter = next(
        cb for cb in dict(model.net_.callbacks_).values() if isinstance(cb, CountEpochs)
    )

    assert trained_counter.calls == 4
    assert counter.calls == 0
    assert model.callbacks[0] is counter
    model.fit(SMALL)
    trained_counter = next(
        cb for cb in dict(model.net_.callbacks_).values() if isinstance(cb, CountEpochs)
    )
    assert trained_counter.calls == 4


def test_learning_rate_scheduler_callback():
    model = fast_model(
        max_iter=3,
        learning_rate_init=1e-2,
        callbacks=[LRScheduler(policy="StepLR", step_size=1, gamma=0.5)],
    ).fit(SMALL)

    learning_rates = [group["lr"] for group in model.net_.optimizer_.param_groups]

    assert learning_rates == [pytest.approx(1e-2 * 0.5**3)] * len(learning_rates)


# ---------------------------------------------------------------------- devices


def test_auto_device_works_without_a_gpu():
    model = fitted_model(device="auto")

    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert str(model.net_.device) == expected
    assert model.transform(SMALL).shape == (len(SMALL), CODE_SIZE)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_training_on_the_gpu():
    model = fitted_model(device="cuda")

    codes = model.transform(SMALL)
    module = pickle_round_trip(model.module_).cpu()
    with torch.no_grad():
        codes_on_cpu = module.encode(torch.tensor(SMALL, dtype=torch.float32)).numpy()

    assert next(model.module_.parameters()).is_cuda
    assert_allclose(codes, codes_on_cpu, atol=1e-4)
    assert_array_equal(pickle_round_trip(model).transform(SMALL), codes)


def test_a_fit_with_gradients_by_hand_is_the_autograd_fit_bit_for_bit(monkeypatch):
    # The plain squared error of the default network is differentiated by hand
    # (no autograd graph: a small table's step in about 0.6 of the time); the
    # fit must be the very one autograd gives, whatever the batch sizes (the
    # last batch of an epoch is shorter) and with the averaged, early-stopped
    # weights the defaults keep.
    from sklae._networks import AutoencoderObjective

    original = AutoencoderObjective.gradients_by_hand
    answered = []

    def counted(self, *args, **options):
        step = original(self, *args, **options)
        answered.append(step is not None)
        return step

    rows = np.random.default_rng(SEED).normal(size=(203, 10))
    rows[:, 1] = rows[:, 0] ** 2 + 0.1 * rows[:, 1]
    fits = []
    for by_hand in (counted, lambda *args, **options: None):
        monkeypatch.setattr(AutoencoderObjective, "gradients_by_hand", by_hand)
        model = AutoencoderTransformer(code_size=3, max_iter=8, random_state=SEED).fit(rows)
        fits.append(model)

    assert all(answered)
    assert len(answered) == sum(fits[0].net_.history[:, "train_batch_count"])
    assert_array_equal(fits[0].transform(rows), fits[1].transform(rows))
    assert fits[0].net_.history[:, "train_loss"] == fits[1].net_.history[:, "train_loss"]


def test_reconstructions_stay_within_the_bounds_the_training_rows_pile_up_against():
    # Pixels pile up at 0 and 1 (digits scaled to [0, 1]): a value new rows
    # respect, so clipping there only brings a reconstruction nearer to them.
    # The linear path (PCA's solution) overshoots below 0 around every stroke.
    X, _ = load_digits(return_X_y=True)
    X_train, X_test = train_test_split(X / 16.0, random_state=SEED)
    model = AutoencoderTransformer(code_size=8, max_iter=5, random_state=SEED).fit(X_train)
    reconstructed = model.inverse_transform(model.transform(X_test))
    assert reconstructed.min() >= 0.0
    assert reconstructed.max() <= 1.0
    assert_array_equal(model.data_min_, X_train.min(axis=0))
    assert_array_equal(model.data_max_, X_train.max(axis=0))
    clipped_error = np.mean((reconstructed - X_test) ** 2)
    assert_allclose(-model.score(X_test), clipped_error, rtol=1e-6)
    # Unclipped, as models saved by earlier releases output: further from the rows.
    model._clips_outputs = False
    unclipped = model.inverse_transform(model.transform(X_test))
    assert unclipped.min() < -0.05
    assert clipped_error < 0.97 * np.mean((unclipped - X_test) ** 2)


def test_the_ends_of_a_sample_of_continuous_values_do_not_bound_reconstructions():
    # A new row exceeds the largest of n continuous values with probability
    # 1 / (n + 1): those ends are taken once, and nothing is clipped.
    rows = np.random.default_rng(SEED).normal(size=(150, 6))
    model = AutoencoderTransformer(code_size=2, max_iter=2, random_state=SEED).fit(rows)
    assert model._output_bounds() is None
    wide = 10 * rows
    model._clips_outputs = False
    unclipped = model.inverse_transform(model.transform(wide))
    model._clips_outputs = True
    assert_array_equal(model.inverse_transform(model.transform(wide)), unclipped)


def test_column_extremes_read_a_memmap_a_slice_at_a_time(monkeypatch, tmp_path):
    import sklae._bounds as bounds

    rows = np.random.default_rng(SEED).integers(0, 4, size=(23, 5)).astype(np.float64)
    expected = bounds.column_extremes(rows)
    on_disk = np.lib.format.open_memmap(tmp_path / "rows.npy", mode="w+", shape=rows.shape)
    on_disk[:] = rows
    monkeypatch.setattr(bounds, "EXTREME_ROWS_PER_SLICE", 4)
    for found, wanted in zip(bounds.column_extremes(on_disk), expected):
        assert_array_equal(found[0], wanted[0])
        assert_array_equal(found[1], wanted[1])
    (low, low_count), (high, high_count) = expected
    assert_array_equal(low_count, (rows == rows.min(axis=0)).sum(axis=0))
    assert_array_equal(high_count, (rows == rows.max(axis=0)).sum(axis=0))
    sparse_low, sparse_high = bounds.column_extremes(sparse.csr_matrix(rows))
    assert_array_equal(sparse_low[1], low_count)
    assert_array_equal(sparse_high[1], high_count)


def test_ties_of_rounded_values_at_an_end_do_not_bound_reconstructions():
    # Rounded continuous values tie at their largest by chance (two entries,
    # whatever the rows), while values that pile up against a bound take a
    # share of the rows: max(2, sqrt(n)) entries tell them apart.
    rng = np.random.default_rng(SEED)
    rows = np.round(rng.normal(size=(400, 4)), 1)
    rows[:2, 0] = rows[:, 0].max() + 0.5
    rows[:, 1] = np.maximum(rows[:, 1], 0.0)
    model = AutoencoderTransformer(code_size=2, max_iter=2, random_state=SEED).fit(rows)
    low, high = model._output_bounds()
    assert np.isinf(high[0])
    assert low[1] == 0.0
    assert np.isinf(low[[0, 2, 3]]).all()
    # Models saved before the rows were counted took two entries for a bound.
    del model._data_rows
    assert model._output_bounds()[1][0] == rows[:, 0].max()
