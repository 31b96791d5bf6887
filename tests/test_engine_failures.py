"""Failures found by probing the estimators, each pinned by a test.

Divergence with a finite loss, warm starts after changed parameters, fits in
threads, layer outputs under concurrency, and custom parts that do not fit.
"""

import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import joblib
import numpy as np
import pytest
import torch
from numpy.testing import assert_array_equal
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.utils._param_validation import InvalidParameterError
from skorch.callbacks import Callback
from torch import nn

from sklae import (
    AutoencoderOutlierDetector,
    AutoencoderTransformer,
    DenoisingAutoencoder,
    TrainingDivergedError,
    VariationalAutoencoder,
)

SEED = 0
UNIT_ROWS = np.random.default_rng(SEED).standard_normal((300, 6))
SMALL = dict(code_size=2, hidden_layer_sizes=(8,), max_iter=5, random_state=SEED)
# The defaults before init="auto", early_stopping="auto" and batch_size="auto"
# became about n_samples / 32 rows: the settings the divergence tests were
# measured with. (With the defaults, a start at PCA's solution that training
# cannot beat is kept, and the loss of such a fit is that of PCA.)
OLD_DEFAULTS = dict(init="random", early_stopping=False, batch_size=256, max_iter=200)


class CountEpochs(Callback):
    def initialize(self):
        self.epochs_ = 0
        return self

    def on_epoch_end(self, net, **kwargs):
        self.epochs_ += 1


# ---------------------------------------------------------------------- divergence


@pytest.mark.parametrize("learning_rate", [1.0, 10.0])
def test_a_finite_loss_that_grows_by_orders_of_magnitude_is_divergence(learning_rate):
    # Unit-variance rows: predicting the mean costs 1. With these step sizes the
    # loss climbs to 1e5 .. 1e16 while staying finite.
    model = AutoencoderTransformer(
        learning_rate_init=learning_rate, random_state=SEED, **OLD_DEFAULTS
    )

    with pytest.raises(
        TrainingDivergedError, match=r"ended at .* times its starting value"
    ) as info:
        model.fit(UNIT_ROWS)

    message = str(info.value)
    assert f"learning_rate_init (now {learning_rate})" in message
    assert "max_grad_norm" in message
    assert not hasattr(model, "net_")


def test_divergence_on_wider_rows_is_not_counted_as_converged():
    X = np.random.default_rng(1).standard_normal((500, 10))
    with pytest.raises(TrainingDivergedError):
        AutoencoderTransformer(learning_rate_init=1.0, random_state=SEED, **OLD_DEFAULTS).fit(X)


def test_a_slow_start_on_uncentred_rows_is_not_divergence():
    # Rows around 100: the untrained network's loss is 1e4 times the mean's,
    # but it falls, so this is a fit still learning, not one diverging.
    X = np.random.default_rng(SEED).normal(loc=100.0, size=(40, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.filterwarnings("error", category=Warning, module="sklae")
        model = AutoencoderTransformer(**SMALL).fit(X)
    assert model.loss_curve_[-1] < model.loss_curve_[0]


# ---------------------------------------------------------------------- warm start


def test_warm_start_refuses_a_changed_architecture_and_keeps_the_model():
    model = AutoencoderTransformer(warm_start=True, **SMALL).fit(UNIT_ROWS)
    codes = model.transform(UNIT_ROWS)

    model.set_params(code_size=4)
    with pytest.raises(ValueError, match=r"code_size=4 \(fitted with 2\).*warm_start=False"):
        model.fit(UNIT_ROWS)

    assert model.code_size_ == 2
    assert_array_equal(model.transform(UNIT_ROWS), codes)


def test_warm_start_applies_a_changed_objective_weight_decay_and_callbacks():
    model = AutoencoderTransformer(warm_start=True, **SMALL).fit(UNIT_ROWS)
    counter = CountEpochs()

    model.set_params(loss="l1", alpha=0.5, learning_rate_init=3e-4, callbacks=[counter])
    model.fit(UNIT_ROWS)

    net = model.net_
    assert net.criterion_.reconstruction.loss == "l1"
    decayed = [group["weight_decay"] for group in net.optimizer_.param_groups]
    assert sorted(decayed) == [0.0, 0.5]  # biases stay undecayed
    assert {group["lr"] for group in net.optimizer_.param_groups} == {3e-4}
    assert dict(net.callbacks_)["CountEpochs"].epochs_ == 5
    # The continued epochs were trained on the L1 loss: its values are mean
    # absolute errors, which for these rows lie well below the MSE's start.
    assert model.n_iter_ == 10


def test_partial_fit_applies_a_changed_learning_rate():
    model = AutoencoderTransformer(**SMALL).partial_fit(UNIT_ROWS)
    model.set_params(learning_rate_init=0.123)
    model.partial_fit(UNIT_ROWS)
    assert {group["lr"] for group in model.net_.optimizer_.param_groups} == {0.123}


# ---------------------------------------------------------------------- threads


def _fit_vae(_=None):
    return VariationalAutoencoder(**SMALL).fit(UNIT_ROWS)


def test_fits_in_threads_equal_a_serial_fit_and_leave_the_global_rng_alone():
    torch.manual_seed(12345)
    state_before = torch.random.get_rng_state()
    serial = _fit_vae()
    with ThreadPoolExecutor(max_workers=4) as pool:
        threaded = list(pool.map(_fit_vae, range(4)))

    assert torch.equal(torch.random.get_rng_state(), state_before)
    for model in threaded:
        assert model.loss_curve_ == serial.loss_curve_
        assert_array_equal(model.transform(UNIT_ROWS), serial.transform(UNIT_ROWS))


def test_grid_search_in_threads_scores_as_a_serial_search():
    grid = {"code_size": [1, 2], "contractive": [0.0, 0.1]}
    serial = GridSearchCV(AutoencoderTransformer(**SMALL), grid, cv=2).fit(UNIT_ROWS)
    with joblib.parallel_backend("threading", n_jobs=2):
        threaded = GridSearchCV(AutoencoderTransformer(**SMALL), grid, cv=2, n_jobs=2)
        threaded.fit(UNIT_ROWS)

    assert_array_equal(
        threaded.cv_results_["mean_test_score"], serial.cv_results_["mean_test_score"]
    )


def test_layer_outputs_are_those_of_the_call_alone():
    model = AutoencoderTransformer(**SMALL).fit(UNIT_ROWS)
    stop = threading.Event()

    def transform_meanwhile():
        while not stop.is_set():
            model.transform(UNIT_ROWS)

    worker = threading.Thread(target=transform_meanwhile)
    worker.start()
    try:
        sizes = {
            len(model.get_layer_outputs(UNIT_ROWS[:100], ["encoder.0"])["encoder.0"])
            for _ in range(20)
        }
    finally:
        stop.set()
        worker.join()

    assert sizes == {100}


def test_a_layer_named_twice_is_returned_once():
    model = AutoencoderTransformer(**SMALL).fit(UNIT_ROWS)
    outputs = model.get_layer_outputs(UNIT_ROWS[:50], ["encoder.0", "encoder.0"])
    assert list(outputs) == ["encoder.0"]
    assert outputs["encoder.0"].shape == (50, 8)


# ---------------------------------------------------------------------- custom parts


class TupleEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(6, 2)

    def forward(self, x):
        code = self.linear(x)
        return code, code.abs()


@pytest.mark.parametrize("estimator_class", [AutoencoderTransformer, DenoisingAutoencoder])
def test_an_encoder_that_returns_a_tuple_is_named(estimator_class):
    model = estimator_class(encoder=TupleEncoder(), decoder=nn.Linear(2, 6), max_iter=1)
    with pytest.raises(ValueError, match="encoder must return one tensor of codes, got a tuple"):
        model.fit(UNIT_ROWS)


def test_a_callback_that_is_no_callback_is_named():
    model = AutoencoderTransformer(callbacks=[CountEpochs(), object()], max_iter=1)
    with pytest.raises(TypeError, match=r"callbacks\[1\] is <object object .*not a skorch"):
        model.fit(UNIT_ROWS)
    assert not hasattr(model, "n_features_in_")


def test_a_detector_member_must_be_an_sklae_autoencoder():
    with pytest.raises(InvalidParameterError, match="'estimator' parameter"):
        AutoencoderOutlierDetector(estimator=PCA(2)).fit(UNIT_ROWS)


@pytest.mark.parametrize("estimator_class", [AutoencoderTransformer, VariationalAutoencoder])
def test_code_size_true_is_not_a_width(estimator_class):
    with pytest.raises(InvalidParameterError, match="code_size.*boolean"):
        estimator_class(code_size=True, max_iter=1).fit(UNIT_ROWS)
