"""Hardening: random inputs, divergence, gradient clipping, interrupts, pickles, hygiene.

The property-based tests draw shapes, dtypes and magnitudes with hypothesis and
require that every public estimator either fits and returns finite outputs, or
fails with a documented error. They are derandomised, so CI always runs the
same examples.
"""

import gc
import os
import pickle
import subprocess
import sys
import warnings

import joblib
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.exceptions import ConvergenceWarning
from skorch.callbacks import Callback

import sklae
from sklae import (
    AutoencoderOutlierDetector,
    AutoencoderTransformer,
    ConformalOutlierDetector,
    DenoisingAutoencoder,
    InconsistentVersionWarning,
    TrainingDivergedError,
)
from sklae.utils._test_common.instance_generator import SEED, TINY_NETWORK, tiny_estimators

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

ESTIMATOR_NAMES = list(tiny_estimators())
DETECTOR_NAMES = {"AutoencoderOutlierDetector", "ConformalOutlierDetector"}


def make_estimator(name, **params):
    """A new instance of a public estimator with a tiny network (TINY_NETWORK; the
    detector with two members of two epochs)."""
    return tiny_estimators()[name].set_params(**params)


def net_callback(model, callback_class):
    """The copy of a user callback that the fitted net used (fit trains with copies)."""
    return dict(model.net_.callbacks_)[callback_class.__name__]


def outputs(estimator, X):
    """Every array the fitted estimator returns for ``X``, by method name."""
    if isinstance(estimator, ConformalOutlierDetector):
        return {
            "score_samples": estimator.score_samples(X),
            "decision_function": estimator.decision_function(X),
            "predict": estimator.predict(X),
            "p_values": estimator.p_values(X),
        }
    if isinstance(estimator, AutoencoderOutlierDetector):
        return {
            "score_samples": estimator.score_samples(X),
            "decision_function": estimator.decision_function(X),
            "predict": estimator.predict(X),
            "score_components": estimator.score_components(X),
            "feature_errors": estimator.feature_errors(X),
        }
    codes = estimator.transform(X)
    result = {
        "transform": codes,
        "inverse_transform": estimator.inverse_transform(codes),
        "score_samples": estimator.score_samples(X),
    }
    if isinstance(estimator, DenoisingAutoencoder):
        result["predict"] = estimator.predict(X)
    return result


# ---------------------------------------------------------------------- properties

# Largest power of ten of the data's spread that must train without diverging.
# The networks that start at PCA's solution work in the data's units with their
# gradients scaled to match: only squared errors beyond float32's range (spread
# 1e19 and more) stop them. The variational model learns in raw units, where
# Adam's moments overflow sooner (it clamps its log-variances, so exp() cannot
# overflow first). The detector scales its input robustly: any magnitude trains.
SAFE_EXPONENT = {
    "AutoencoderTransformer": 17,
    "VariationalAutoencoder": 8,
    "DenoisingAutoencoder": 17,
    "AutoencoderOutlierDetector": 30,
    "ConformalOutlierDetector": 30,
}


@st.composite
def datasets(draw):
    """(X, exponent): random shape, dtype, magnitude and constant columns."""
    n_rows = draw(st.one_of(st.just(1), st.integers(2, 12), st.integers(100, 300)))
    n_columns = draw(st.one_of(st.just(1), st.integers(2, 6)))
    dtype = draw(st.sampled_from([np.float32, np.float64, np.int64, np.int32]))
    integer = np.issubdtype(dtype, np.integer)
    # Integers of magnitude below 1 are all zero; int32 holds up to about 2e9.
    low, high = (0, 9) if integer else (-30, 30)
    exponent = draw(st.integers(low, high))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    values = rng.standard_normal((n_rows, n_columns)) * 10.0**exponent
    constant = draw(st.lists(st.booleans(), min_size=n_columns, max_size=n_columns))
    values[:, np.asarray(constant)] = 3.0 * 10.0**exponent
    X = np.round(values).astype(dtype) if integer else values.astype(dtype)
    return X, exponent


@pytest.mark.parametrize("name", ESTIMATOR_NAMES)
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=datasets())
def test_random_data_fits_with_finite_outputs_or_a_documented_error(name, data):
    X, exponent = data
    estimator = make_estimator(name)
    if name == "ConformalOutlierDetector" and len(X) < 9:
        # Documented: it fits on some rows and calibrates on others, enough of
        # them to resolve its false-alarm rate (0.25 needs 3 of 9).
        with pytest.raises(ValueError, match="needs at least 2 rows|can flag nothing"):
            estimator.fit(X)
        return
    try:
        estimator.fit(X)
        diverged = None
    except TrainingDivergedError as error:
        diverged = str(error)
    if diverged is not None:
        # Documented: squared errors beyond float32's range stop training. Only
        # huge magnitudes may do that, and the message names the remedy.
        assert exponent > SAFE_EXPONENT[name], (X.dtype, X.shape, exponent)
        assert "scale the input" in diverged
        assert not hasattr(estimator, "n_features_in_")
        return
    for method, result in outputs(estimator, X).items():
        assert np.all(np.isfinite(result)), (method, X.dtype, X.shape, exponent)
        assert result.shape[0] == X.shape[0]


def test_rows_without_spread_fit_without_warnings():
    # PCA's explained-variance ratios of such rows are 0 / 0: numpy's
    # RuntimeWarning leaked from the PCA start and from a fractional code_size.
    X = np.full((50, 4), 3.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = AutoencoderTransformer(code_size=2, max_iter=3, random_state=SEED).fit(X)
        fraction = AutoencoderTransformer(code_size=0.9, max_iter=3, random_state=SEED).fit(X)
        denoiser = DenoisingAutoencoder(max_iter=3, random_state=SEED).fit(X)

    assert_allclose(model.inverse_transform(model.transform(X)), X)
    assert fraction.code_size_ == 1
    assert_allclose(denoiser.predict(X), X)


@pytest.mark.parametrize("name", ESTIMATOR_NAMES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_huge_values_either_work_or_raise_the_divergence_error(name, dtype):
    X = np.random.default_rng(SEED).standard_normal((50, 3)).astype(dtype) * 1e30
    estimator = make_estimator(name)

    if name in DETECTOR_NAMES:
        # Its robust scaling brings any magnitude to unit scale before training.
        scores = estimator.fit(X).score_samples(X)
        assert np.all(np.isfinite(scores))
        assert np.mean(estimator.predict(X) == 1) > 0.5
    else:
        with pytest.raises(TrainingDivergedError, match=r"at epoch 1, batch 1\. .*StandardScaler"):
            estimator.fit(X)


@pytest.mark.parametrize("name", ["AutoencoderTransformer", "DenoisingAutoencoder"])
def test_values_beyond_float32_are_rejected_not_turned_into_infinity(name):
    X = np.random.default_rng(SEED).standard_normal((20, 3))
    estimator = make_estimator(name).fit(X)

    with pytest.raises(ValueError, match=r"float32.*[Ss]cale"):
        estimator.transform(X * 1e39)
    with pytest.raises(ValueError, match=r"float32.*[Ss]cale"):
        make_estimator(name).fit(X * 1e39)


# ---------------------------------------------------------------------- divergence


class CountBatches(Callback):
    """Counts the training batches begun, across epochs, in a class attribute
    (fit trains with a copy of the callback, and a failed fit keeps no net)."""

    begun = 0

    def on_batch_begin(self, net, training=False, **kwargs):
        CountBatches.begun += training


def test_divergence_stops_in_the_batch_where_the_loss_turns_non_finite():
    X = np.random.default_rng(SEED).standard_normal((256, 4))
    X[::4] *= 1e30  # every batch of 32 rows holds some whose squares overflow float32
    CountBatches.begun = 0
    model = AutoencoderTransformer(
        hidden_layer_sizes=(4,), max_iter=5, batch_size=32, callbacks=[CountBatches()]
    )

    with pytest.raises(TrainingDivergedError, match=r"train loss became inf at epoch 1, batch 1\."):
        model.fit(X)

    # Not the 8 batches of the epoch: training stopped at the first non-finite loss.
    assert CountBatches.begun == 1


def test_divergence_message_names_epoch_batch_and_remedies():
    X = np.random.default_rng(SEED).random((64, 4))
    model = AutoencoderTransformer(
        hidden_layer_sizes=(16,),
        max_iter=50,
        batch_size=8,
        learning_rate_init=1e6,
        # From random weights on every row, the loss turns infinite within an epoch.
        init="random",
        early_stopping=False,
        random_state=0,
    )

    with pytest.raises(TrainingDivergedError) as info:
        model.fit(X)

    message = str(info.value)
    assert "at epoch" in message
    assert ", batch " in message
    assert "Lower learning_rate_init (now 1000000.0)" in message
    assert "max_grad_norm" in message
    assert "StandardScaler" in message


def rows_with_huge_values():
    X = np.random.default_rng(SEED).standard_normal((64, 4))
    X[::4] *= 1e30  # squares beyond float32: the loss becomes infinite
    return X


@pytest.mark.parametrize(
    "name", ["AutoencoderTransformer", "VariationalAutoencoder", "DenoisingAutoencoder"]
)
def test_divergence_message_names_the_current_learning_rate_after_what_happened(name):
    # The engine says what diverged and where; the estimator adds the remedies
    # in its own parameters' names, with their current values.
    model = make_estimator(name, learning_rate_init=0.25, batch_size=32)

    with pytest.raises(TrainingDivergedError) as info:
        model.fit(rows_with_huge_values())

    message = str(info.value)
    assert message.startswith("Training diverged: the train loss became ")
    assert " at epoch 1, batch 1. Lower learning_rate_init (now 0.25), scale the input" in message
    assert "max_grad_norm (for example max_grad_norm=1.0)" in message
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, FloatingPointError)


def test_a_finite_divergence_gets_the_same_remedies():
    X = np.random.default_rng(SEED).standard_normal((256, 8))
    # A random start: a kept PCA start turns the error into a DivergenceWarning.
    model = AutoencoderTransformer(
        hidden_layer_sizes=(16,),
        max_iter=15,
        batch_size=32,
        learning_rate_init=30.0,
        init="random",
        random_state=0,
    )

    with pytest.raises(
        TrainingDivergedError,
        match=r"ended at .* times its starting value of .* at epoch \d+\. "
        r"Lower learning_rate_init \(now 30.0\), scale the input",
    ):
        model.fit(X)


class GradientNorms(Callback):
    """The total gradient norm of each step, after any clipping."""

    def on_train_begin(self, net, **kwargs):
        self.norms = []

    def on_grad_computed(self, net, named_parameters, **kwargs):
        gradients = [p.grad for _, p in named_parameters if p.grad is not None]
        self.norms.append(
            float(torch.linalg.vector_norm(torch.stack([g.norm() for g in gradients])))
        )


def test_gradient_clipping_bounds_the_gradient_norm():
    X = np.random.default_rng(SEED).standard_normal((64, 4)) * 100
    params = {"hidden_layer_sizes": (8,), "max_iter": 2, "batch_size": 16, "random_state": 0}

    unclipped = AutoencoderTransformer(**params, callbacks=[GradientNorms()]).fit(X)
    clipped = AutoencoderTransformer(**params, max_grad_norm=0.05, callbacks=[GradientNorms()])
    clipped.fit(X)

    # The user's callbacks run after the built-in clipping.
    assert max(net_callback(unclipped, GradientNorms).norms) > 0.2
    assert max(net_callback(clipped, GradientNorms).norms) <= 0.05 * (1 + 1e-5)
    assert len(net_callback(clipped, GradientNorms).norms) == 8


def test_gradient_clipping_does_not_depend_on_the_units_of_the_data():
    # The gradients are those of data of spread one (BaseAutoencoder._in_units_of)
    # when clipping sees them: the same rows in other units clip alike.
    X = np.random.default_rng(SEED).standard_normal((64, 4))
    params = {"hidden_layer_sizes": (8,), "max_iter": 2, "batch_size": 16, "random_state": 0}
    norms = []
    for unit in (1.0, 1e6):
        model = AutoencoderTransformer(**params, callbacks=[GradientNorms()]).fit(X * unit)
        norms.append(net_callback(model, GradientNorms).norms)

    # Up to float32 rounding, which the steps amplify.
    assert_allclose(norms[1], norms[0], rtol=0.02)


def test_gradient_clipping_keeps_a_too_large_learning_rate_from_blowing_up():
    X = np.random.default_rng(SEED).standard_normal((256, 8))
    params = {
        "code_size": 2,
        "hidden_layer_sizes": (16,),
        "max_iter": 15,
        "batch_size": 32,
        "learning_rate_init": 30.0,
        # Measured from random weights on every row (the defaults before "auto").
        "init": "random",
        "early_stopping": False,
        "random_state": 0,
    }

    # The data have unit variance: predicting zeros scores 1. Unclipped Adam
    # with this step size grows the loss by orders of magnitude, which is
    # divergence although the loss stays finite; clipped, it stays near.
    with pytest.raises(TrainingDivergedError, match=r"ended at .* times its starting value"):
        AutoencoderTransformer(**params).fit(X)
    clipped = AutoencoderTransformer(**params, max_grad_norm=1.0).fit(X)
    assert clipped.loss_curve_[-1] < 10
    assert np.all(np.isfinite(clipped.transform(X)))


@pytest.mark.parametrize("name", ["VariationalAutoencoder", "DenoisingAutoencoder"])
def test_every_autoencoder_takes_max_grad_norm(name):
    X = np.random.default_rng(SEED).standard_normal((32, 4)) * 100
    model = make_estimator(name, max_grad_norm=0.25, callbacks=[GradientNorms()], batch_size=8)

    model.fit(X)

    assert max(net_callback(model, GradientNorms).norms) <= 0.25 * (1 + 1e-5)


def test_max_grad_norm_applies_to_continued_training():
    X = np.random.default_rng(SEED).standard_normal((32, 4)) * 100
    model = AutoencoderTransformer(**TINY_NETWORK, callbacks=[GradientNorms()]).fit(X)
    assert max(net_callback(model, GradientNorms).norms) > 0.1

    model.set_params(max_grad_norm=0.02)
    model.partial_fit(X)

    assert max(net_callback(model, GradientNorms).norms) <= 0.02 * (1 + 1e-5)


@pytest.mark.parametrize("value", [0, -1.0, "1"])
def test_invalid_max_grad_norm_is_rejected(value):
    with pytest.raises(ValueError, match="max_grad_norm"):
        AutoencoderTransformer(max_grad_norm=value).fit(np.ones((4, 2)))


# ---------------------------------------------------------------------- interrupts


class InterruptAt(Callback):
    """Raises KeyboardInterrupt, as Ctrl-C would, at the end of epoch ``epoch``
    or, with ``batch``, after that training batch of the epoch."""

    def __init__(self, epoch, batch=None):
        self.epoch = epoch
        self.batch = batch

    def on_batch_end(self, net, training=False, **kwargs):
        record = net.history[-1]
        done = sum("train_loss" in entry for entry in record["batches"])
        if training and self.batch == done and len(net.history) == self.epoch:
            raise KeyboardInterrupt

    def on_epoch_end(self, net, **kwargs):
        if self.batch is None and len(net.history) == self.epoch:
            raise KeyboardInterrupt


class SpoilWeightsAt(Callback):
    """Scrambles the weights at the start of epoch ``epoch``, so that epoch's
    validation loss is worse than the earlier ones'."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_begin(self, net, **kwargs):
        if len(net.history) == self.epoch:
            with torch.no_grad():
                for parameter in net.module_.parameters():
                    parameter.mul_(-5.0)


class WeightsPerEpoch(Callback):
    """A copy of the weights each epoch was judged by: those the validation rows
    were scored with (a moving average of the steps'), or without validation
    rows the last step's."""

    def on_train_begin(self, net, **kwargs):
        self.weights = []

    def on_epoch_begin(self, net, **kwargs):
        self.validated = None

    def on_batch_end(self, net, training=False, **kwargs):
        if not training and self.validated is None:
            self.validated = {k: v.clone() for k, v in net.module_.state_dict().items()}

    def on_epoch_end(self, net, **kwargs):
        current = {k: v.clone() for k, v in net.module_.state_dict().items()}
        self.weights.append(self.validated or current)


def interrupted_fit(early_stopping, interrupt):
    X = np.random.default_rng(SEED).random((200, 6))
    model = AutoencoderTransformer(
        hidden_layer_sizes=(16,),
        max_iter=30,
        batch_size=20,
        early_stopping=early_stopping,
        validation_fraction=0.3,
        # From random weights, which the first epochs clearly improve on (a start
        # at PCA's solution that they do not beat would be kept instead).
        init="random",
        learning_rate="constant",
        learning_rate_init=1e-3,
        random_state=3,
        callbacks=[SpoilWeightsAt(6), WeightsPerEpoch(), interrupt],
    )
    with pytest.warns(UserWarning, match="interrupted") as record:
        model.fit(X)
    return model, net_callback(model, WeightsPerEpoch).weights, str(record[0].message)


@pytest.mark.parametrize("batch", [None, 3])
def test_interrupt_with_early_stopping_keeps_the_best_epoch_and_says_so(batch):
    model, weights, message = interrupted_fit(True, InterruptAt(8, batch))

    best_epoch = int(np.argmax(model.validation_scores_))
    assert "best validation epoch were restored" in message
    # Epochs 6 and 7 start from spoilt weights: the best is earlier, so keeping
    # the last weights would fail here.
    assert best_epoch < 5
    assert len(weights) == model.n_iter_ == (8 if batch is None else 7)
    for key, value in model.module_.state_dict().items():
        assert torch.equal(value, weights[best_epoch][key]), key


def test_interrupt_without_early_stopping_keeps_the_last_epoch_and_says_so():
    model, weights, message = interrupted_fit(False, InterruptAt(5))

    assert "interrupted after 5 of 30 epochs; the model trained so far is kept" in message
    assert model.n_iter_ == 5
    for key, value in model.module_.state_dict().items():
        assert torch.equal(value, weights[-1][key]), key


@pytest.mark.parametrize("early_stopping", [False, True])
def test_interrupt_before_one_epoch_completes_propagates_and_keeps_nothing(early_stopping):
    X = np.random.default_rng(SEED).random((60, 4))
    model = AutoencoderTransformer(
        **{**TINY_NETWORK, "max_iter": 5},
        batch_size=10,
        early_stopping=early_stopping,
        callbacks=[InterruptAt(1, batch=2)],
    )

    with pytest.raises(KeyboardInterrupt):
        model.fit(X)

    assert not hasattr(model, "net_")


def test_interrupt_before_one_epoch_leaves_a_fitted_model_as_it_was():
    X = np.random.default_rng(SEED).random((60, 4))
    model = AutoencoderTransformer(**TINY_NETWORK).fit(X)
    codes = model.transform(X)

    model.set_params(callbacks=[InterruptAt(1, batch=1)])
    with pytest.raises(KeyboardInterrupt):
        model.fit(X)

    assert model.n_iter_ == 2
    assert_array_equal(model.transform(X), codes)


# ---------------------------------------------------------------------- persistence


def pickle_round_trip(estimator):
    return pickle.loads(pickle.dumps(estimator))


def joblib_round_trip(estimator, tmp_path):
    path = tmp_path / "model.joblib"
    joblib.dump(estimator, path)
    return joblib.load(path)


@pytest.mark.parametrize("name", ESTIMATOR_NAMES)
@pytest.mark.parametrize("via", ["pickle", "joblib"])
def test_round_trip_gives_identical_outputs(name, via, tmp_path):
    X = np.random.default_rng(SEED).standard_normal((40, 5))
    estimator = make_estimator(name).fit(X)
    expected = outputs(estimator, X)

    with warnings.catch_warnings():
        warnings.simplefilter("error", InconsistentVersionWarning)
        loaded = (
            pickle_round_trip(estimator)
            if via == "pickle"
            else joblib_round_trip(estimator, tmp_path)
        )

    for method, result in outputs(loaded, X).items():
        assert_array_equal(result, expected[method], err_msg=method)


@pytest.mark.parametrize("name", ESTIMATOR_NAMES)
def test_loading_a_pickle_of_another_sklae_version_warns(name, monkeypatch):
    X = np.random.default_rng(SEED).standard_normal((30, 3))
    data = pickle.dumps(make_estimator(name).fit(X))
    saved_by = sklae.__version__

    monkeypatch.setattr(sklae._version, "__version__", "99.0")
    with pytest.warns(InconsistentVersionWarning) as record:
        loaded = pickle.loads(data)

    outer = [w.message for w in record if w.message.estimator_name == name]
    assert outer, [str(w.message) for w in record]
    assert outer[0].original_version == saved_by
    assert outer[0].current_version == "99.0"
    assert f"{name} from sklae version {saved_by} when using version 99.0" in str(outer[0])
    assert np.all(np.isfinite(outputs(loaded, X)["score_samples"]))


@pytest.mark.parametrize("library", ["torch", "skorch"])
def test_loading_a_pickle_made_with_another_torch_or_skorch_warns(library, monkeypatch):
    import skorch
    import torch

    module = {"torch": torch, "skorch": skorch}[library]
    X = np.random.default_rng(SEED).standard_normal((30, 3))
    model = AutoencoderTransformer(**TINY_NETWORK).fit(X)
    monkeypatch.setattr(module, "__version__", "0.1.0+cu999")
    data = pickle.dumps(model)
    monkeypatch.undo()

    with pytest.warns(InconsistentVersionWarning) as record:
        loaded = pickle.loads(data)
    messages = [w.message for w in record if getattr(w.message, "library", None) == library]
    assert len(messages) == 1
    current = module.__version__.split("+")[0]
    assert (messages[0].original_version, messages[0].current_version) == ("0.1.0", current)
    assert f"from {library} version 0.1.0 when using version {current}" in str(messages[0])
    assert_array_equal(loaded.transform(X), model.transform(X))


def test_another_build_of_the_same_torch_release_loads_quietly(monkeypatch):
    import torch

    X = np.random.default_rng(SEED).standard_normal((30, 3))
    model = AutoencoderTransformer(**TINY_NETWORK).fit(X)
    # A model trained with a CUDA build of this release, loaded with the CPU build.
    monkeypatch.setattr(torch, "__version__", torch.__version__.split("+")[0] + "+cu124")
    data = pickle.dumps(model)
    monkeypatch.undo()
    with warnings.catch_warnings():
        warnings.simplefilter("error", InconsistentVersionWarning)
        pickle.loads(data)


def test_a_pickle_without_a_version_warns_as_unknown():
    X = np.random.default_rng(SEED).standard_normal((30, 3))
    model = AutoencoderTransformer(**TINY_NETWORK).fit(X)
    state = model.__getstate__()
    state.pop("_sklae_version")

    restored = AutoencoderTransformer.__new__(AutoencoderTransformer)
    with pytest.warns(InconsistentVersionWarning, match="unknown"):
        restored.__setstate__(state)


def test_pickling_stores_the_version_without_touching_the_estimator():
    model = AutoencoderTransformer(**TINY_NETWORK).fit(np.ones((5, 2)))

    state = model.__getstate__()

    assert state["_sklae_version"] == sklae.__version__
    assert set(state["_sklae_library_versions"]) == {"torch", "skorch"}
    for key in ("_sklae_version", "_sklae_library_versions"):
        assert key not in model.__dict__
        assert key not in pickle_round_trip(model).__dict__


def test_a_cuda_model_loads_on_a_cpu_only_machine(monkeypatch):
    # Simulated: the net of a model trained on a GPU records device "cuda"; skorch
    # maps what it saved to the CPU when no GPU is present, and sklae predicts
    # on net_.device. (test_gpu_trained_model_loads_without_cuda does it for real.)
    X = np.random.default_rng(SEED).standard_normal((30, 3))
    model = AutoencoderTransformer(**TINY_NETWORK).fit(X)
    codes = model.transform(X)
    model.set_params(device="cuda")
    model.net_.device = "cuda"
    data = pickle.dumps(model)

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.warns(UserWarning, match="CUDA"):
        loaded = pickle.loads(data)

    assert str(loaded.net_.device) == "cpu"
    assert_array_equal(loaded.transform(X), codes)


GPU_SCRIPT = """
import pickle, sys
import numpy as np, torch
assert not torch.cuda.is_available()
model = pickle.load(open(sys.argv[1], "rb"))
X = np.load(sys.argv[2])
np.save(sys.argv[3], model.transform(X))
"""


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("early_stopping", [False, True])
def test_gpu_trained_model_loads_without_cuda(early_stopping, tmp_path):
    X = np.random.default_rng(SEED).standard_normal((64, 5)).astype(np.float32)
    model = AutoencoderTransformer(
        **TINY_NETWORK, device="cuda", early_stopping=early_stopping
    ).fit(X)
    assert next(model.module_.parameters()).is_cuda
    with open(tmp_path / "model.pkl", "wb") as file:
        pickle.dump(model, file)
    np.save(tmp_path / "X.npy", X)

    subprocess.run(
        [
            sys.executable,
            "-c",
            GPU_SCRIPT,
            str(tmp_path / "model.pkl"),
            str(tmp_path / "X.npy"),
            str(tmp_path / "codes.npy"),
        ],
        check=True,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
    )

    assert_allclose(np.load(tmp_path / "codes.npy"), model.transform(X), atol=1e-5)


# ---------------------------------------------------------------------- hygiene


def resident_bytes():
    with open("/proc/self/statm") as file:
        return int(file.read().split()[1]) * 4096


@pytest.mark.parametrize(
    "name",
    [
        # 35 fits of an ensemble: several seconds.
        pytest.param(name, marks=pytest.mark.slow) if name in DETECTOR_NAMES else name
        for name in ESTIMATOR_NAMES
    ],
)
def test_repeated_fit_and_transform_do_not_grow_memory(name):
    X = np.random.default_rng(SEED).standard_normal((200, 10))
    estimator = make_estimator(name)

    def cycle():
        estimator.fit(X)
        outputs(estimator, X)

    for _ in range(5):  # warm-up: allocator pools, lazy imports, caches
        cycle()
    gc.collect()
    before = resident_bytes()
    for _ in range(30):
        cycle()
    gc.collect()
    growth = resident_bytes() - before

    # A leak of one copy of X (16 kB) or of a tiny network per cycle would add
    # up to far less than this; a leaked net/history per cycle does not.
    assert growth < 8 * 2**20, f"RSS grew by {growth / 2**20:.1f} MiB over 30 cycles"


def global_state():
    return {
        "torch_rng": torch.get_rng_state(),
        "numpy_rng": np.random.get_state()[1].copy(),  # noqa: NPY002 (the legacy global state)
        "default_dtype": torch.get_default_dtype(),
        "threads": torch.get_num_threads(),
        "grad_enabled": torch.is_grad_enabled(),
        "deterministic": torch.are_deterministic_algorithms_enabled(),
        "anomaly": torch.is_anomaly_enabled(),
    }


@pytest.mark.parametrize("name", ESTIMATOR_NAMES)
@pytest.mark.parametrize("early_stopping", [False, True])
def test_fit_and_predict_change_no_global_state(name, early_stopping):
    X = np.random.default_rng(SEED).standard_normal((60, 4))
    params = {} if name in DETECTOR_NAMES else {"early_stopping": early_stopping}
    torch.manual_seed(1234)
    np.random.seed(1234)  # noqa: NPY002 (the legacy global state is what is checked)
    before = global_state()

    estimator = make_estimator(name, **params).fit(X)
    outputs(estimator, X)
    pickle_round_trip(estimator)

    after = global_state()
    assert torch.equal(after.pop("torch_rng"), before.pop("torch_rng"))
    assert_array_equal(after.pop("numpy_rng"), before.pop("numpy_rng"))
    assert after == before


def test_convergence_warning_is_sklearns():
    X = np.random.default_rng(SEED).random((40, 3))
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        # A constant rate that runs out of epochs (a cosine schedule ends as planned).
        AutoencoderTransformer(**TINY_NETWORK, learning_rate="constant").fit(X)

    assert [type(w.message) for w in record] == [ConvergenceWarning]


@pytest.mark.parametrize("name", ESTIMATOR_NAMES)
def test_labels_passed_as_y_are_ignored_silently(name):
    # y is ignored by design (a Pipeline passes the labels along), so there is
    # nothing to convert and no DataConversionWarning to give.
    X = np.random.default_rng(SEED).random((40, 3))
    y = np.arange(40) % 2

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.simplefilter("ignore", ConvergenceWarning)
        with_y = outputs(make_estimator(name).fit(X, y), X)
    without_y = outputs(make_estimator(name).fit(X), X)

    for method, result in with_y.items():
        assert_array_equal(result, without_y[method], err_msg=method)


def test_interrupting_the_outlier_detector_stops_the_whole_fit():
    # Each member keeps what it trained when interrupted; the ensemble must not go
    # on to train the next members as if nothing happened.
    X = np.random.default_rng(SEED).standard_normal((60, 3))
    detector = AutoencoderOutlierDetector(n_estimators=3, random_state=SEED).fit(X)
    scores = detector.score_samples(X)
    member = AutoencoderTransformer(**{**TINY_NETWORK, "max_iter": 5}, callbacks=[InterruptAt(2)])

    detector.set_params(estimator=member)
    with pytest.raises(KeyboardInterrupt):
        detector.fit(X)

    assert not hasattr(detector, "estimators_")  # the members trained as one network
    assert_array_equal(detector.score_samples(X), scores)
