"""Saved models: plain-data state, skops, MLflow, and files of earlier releases.

A fitted model's state is plain data (numpy arrays, numbers, strings): skops
saves it with only sklae's and scikit-learn's types to trust, pickles hold no
torch objects, and files saved by every release (``tests/saved_models/``) keep
loading and computing what they computed when they were saved.
"""

import copy
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.exceptions import ConvergenceWarning
from skorch.callbacks import Callback
from torch import nn

import sklae
from sklae import (
    AutoencoderTransformer,
    InconsistentVersionWarning,
    skops_trusted_types,
)
from sklae.utils._test_common.instance_generator import SEED, tiny_estimators

SAVED_MODELS = Path(__file__).parent / "saved_models"
ESTIMATOR_NAMES = list(tiny_estimators())


def load_generator():
    """tests/saved_models/make_saved_models.py, the script that wrote the files."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "make_saved_models", SAVED_MODELS / "make_saved_models.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GENERATOR = load_generator()


def outputs(model, X):
    return GENERATOR.outputs(model, X)


def fitted(name, X=None):
    X = np.random.default_rng(SEED).random((40, 5)) if X is None else X
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return tiny_estimators()[name].fit(X), X


def skops_round_trip(model):
    skops_io = pytest.importorskip("skops.io")
    data = skops_io.dumps(model)
    return skops_io.loads(data, trusted=skops_trusted_types()), data


# ----------------------------------------------------------------------- skops


@pytest.mark.parametrize("name", ESTIMATOR_NAMES)
def test_skops_saves_every_estimator_trusting_only_sklae_and_sklearn(name):
    skops_io = pytest.importorskip("skops.io")
    model, X = fitted(name)
    loaded, data = skops_round_trip(model)

    untrusted = skops_io.get_untrusted_types(data=data)
    assert untrusted, "a file of sklae's estimators asks to trust sklae's classes"
    assert set(untrusted) <= set(skops_trusted_types())
    assert all(path.split(".")[0] in {"sklae", "sklearn"} for path in untrusted)
    for method, expected in outputs(model, X).items():
        assert_array_equal(outputs(loaded, X)[method], expected, err_msg=method)


def test_skops_refuses_a_file_until_its_types_are_trusted():
    skops_io = pytest.importorskip("skops.io")
    from skops.io.exceptions import UntrustedTypesFoundException

    model, _ = fitted("AutoencoderTransformer")
    with pytest.raises(UntrustedTypesFoundException, match="AutoencoderTransformer"):
        skops_io.loads(skops_io.dumps(model))


def test_a_model_loaded_from_skops_trains_on_as_the_original_would():
    model, X = fitted("AutoencoderTransformer")
    model.set_params(warm_start=True, max_iter=2)
    in_memory = copy.deepcopy(model)
    loaded, _ = skops_round_trip(model)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        in_memory.fit(X)
        loaded.fit(X)

    assert loaded.n_iter_ == in_memory.n_iter_
    assert_array_equal(loaded.transform(X), in_memory.transform(X))
    assert loaded.loss_curve_ == in_memory.loss_curve_


def test_ordered_codes_stay_truncated_after_loading():
    X = np.random.default_rng(SEED).random((60, 8))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = AutoencoderTransformer(
            code_size=3, ordered_codes=True, hidden_layer_sizes=(8,), max_iter=3, random_state=SEED
        ).fit(X)
    # As fit truncates a fractional code_size's ordered code to the units it needs.
    model.net_.module_.keep_units(2, 3)
    model.code_size_ = 2
    codes = model.transform(X)

    for loaded in (pickle.loads(pickle.dumps(model)), skops_round_trip(model)[0]):
        assert_array_equal(loaded.transform(X), codes)
        assert_array_equal(loaded.inverse_transform(codes), model.inverse_transform(codes))
        assert_array_equal(
            loaded.inverse_transform(codes[:, :1]), model.inverse_transform(codes[:, :1])
        )


class CountEpochs(Callback):
    """A caller's callback with state of its own."""

    def on_epoch_end(self, net, **kwargs):
        self.epochs_ = getattr(self, "epochs_", 0) + 1


def test_the_callers_callbacks_are_saved_with_what_they_recorded():
    skops_io = pytest.importorskip("skops.io")
    X = np.random.default_rng(SEED).random((40, 5))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = AutoencoderTransformer(
            code_size=2, max_iter=3, callbacks=[("count", CountEpochs())], random_state=SEED
        ).fit(X)
    assert dict(model.net_.callbacks_)["count"].epochs_ == 3

    loaded = pickle.loads(pickle.dumps(model))
    assert dict(loaded.net_.callbacks_)["count"].epochs_ == 3
    data = skops_io.dumps(model)
    # Not sklae's: the file asks to trust it.
    assert f"{__name__}.CountEpochs" in skops_io.get_untrusted_types(data=data)
    trusted = [*skops_trusted_types(), f"{__name__}.CountEpochs"]
    assert dict(skops_io.loads(data, trusted=trusted).net_.callbacks_)["count"].epochs_ == 3


def test_custom_modules_are_refused_by_skops_with_what_to_use_instead():
    skops_io = pytest.importorskip("skops.io")
    X = np.random.default_rng(SEED).random((40, 4))
    model = AutoencoderTransformer(
        encoder=nn.Sequential(nn.Linear(4, 2)),
        decoder=nn.Sequential(nn.Linear(2, 4)),
        max_iter=2,
        random_state=SEED,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X)

    with pytest.raises(TypeError, match=r"your own torch modules.*Save it with pickle"):
        skops_io.dumps(model)
    # pickle stores them (by reference to their code) and loads them back.
    assert_array_equal(pickle.loads(pickle.dumps(model)).transform(X), model.transform(X))


# ---------------------------------------------------------------------- pickle


class RecordingUnpickler(pickle.Unpickler):
    """Unpickles, noting the module of every class or function the pickle names."""

    def __init__(self, file):
        super().__init__(file)
        self.modules = set()

    def find_class(self, module, name):
        self.modules.add(module)
        return super().find_class(module, name)


@pytest.mark.parametrize("name", ESTIMATOR_NAMES)
def test_a_pickle_holds_no_torch_objects_and_is_smaller_than_the_net(name):
    import io

    model, X = fitted(name)
    data = pickle.dumps(model)
    unpickler = RecordingUnpickler(io.BytesIO(data))
    loaded = unpickler.load()

    assert not {
        module for module in unpickler.modules if module.split(".")[0] in {"torch", "skorch"}
    }, "the trained network is saved as numpy arrays, not torch objects"
    for method, expected in outputs(model, X).items():
        assert_array_equal(outputs(loaded, X)[method], expected, err_msg=method)
    nets = [getattr(model, "estimator_", model).net_]
    assert len(data) < sum(len(pickle.dumps(net)) for net in nets)


def test_a_model_saved_on_another_device_loads_on_the_cpu(monkeypatch):
    model, X = fitted("AutoencoderTransformer")
    state = model.__getstate__()
    state["net_"]["device"] = "cuda:0"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    loaded = AutoencoderTransformer.__new__(AutoencoderTransformer)

    with pytest.warns(UserWarning, match="trained on device 'cuda:0'.*loaded on the CPU"):
        loaded.__setstate__(state)

    assert str(loaded.net_.device) == "cpu"
    assert_array_equal(loaded.transform(X), model.transform(X))


def test_a_damaged_net_state_is_reported():
    model, _ = fitted("AutoencoderTransformer")
    state = model.__getstate__()
    del state["net_"]["optimizer"]
    loaded = AutoencoderTransformer.__new__(AutoencoderTransformer)
    with pytest.raises(ValueError, match=r"lacks \['optimizer'\].*damaged"):
        loaded.__setstate__(state)


# ------------------------------------------------------------- earlier releases


def saved_files():
    """(version, model name, format) of every file in tests/saved_models/."""
    return [
        pytest.param(
            path.parent.name, path.stem, path.suffix[1:], id=f"{path.parent.name}-{path.name}"
        )
        for path in sorted(SAVED_MODELS.glob("*/*"))
        if path.suffix in {".pkl", ".skops"}
    ]


def load_saved(path, file_format):
    if file_format == "pkl":
        with open(path, "rb") as file:
            return pickle.load(file)
    skops_io = pytest.importorskip("skops.io")
    return skops_io.load(path, trusted=skops_trusted_types())


def test_every_release_has_saved_files_of_every_model():
    releases = sorted(path.name for path in SAVED_MODELS.iterdir() if path.is_dir())
    assert "0.1.0" in releases, releases
    assert sklae.__version__ in releases, "run tests/saved_models/make_saved_models.py"
    for release in releases:
        # Models that came later are missing from earlier releases' files.
        names = {path.stem for path in (SAVED_MODELS / release).glob("*.pkl")}
        assert names <= set(GENERATOR.MODELS), release
    names = {path.stem for path in (SAVED_MODELS / sklae.__version__).glob("*.pkl")}
    assert names == set(GENERATOR.MODELS)
    # From this version on, every model is saved with skops too.
    skops_names = {path.stem for path in (SAVED_MODELS / sklae.__version__).glob("*.skops")}
    assert skops_names == set(GENERATOR.MODELS)


def rounding_of(values):
    """How far float32 outputs of another processor may be from ``values``.

    The files were written on one processor and are checked on others, whose
    float32 kernels round differently: results agree to about 1e-5 of their
    size. A difference of two such numbers (``decision_function`` is
    ``score_samples - offset_``) errs by that share of the numbers' size, not
    of the difference's: a row at the threshold scored 0.0 where the file was
    written and 1.4e-6 on an AMD EPYC, with scores near 10.
    """
    return max(1e-6, 1e-5 * float(np.max(np.abs(values), initial=0.0)))


def rows_on_a_boundary(model, X, expected):
    """Rows within rounding of the threshold or of a calibration score (a p-value's step)."""
    on_a_boundary = np.zeros(len(X), dtype=bool)
    if "decision_function" in expected.files:
        decision = expected["decision_function"]
        on_a_boundary |= np.abs(decision) <= rounding_of(decision)
    calibration = getattr(model, "calibration_scores_", None)
    if calibration is not None:
        scores = model.score_samples(X)
        gaps = np.abs(scores[:, None] - np.asarray(calibration)[None, :]).min(axis=1)
        on_a_boundary |= gaps <= rounding_of(calibration)
    # The calibration rows are among X (a quarter of them); at least half of
    # the rows are compared.
    assert on_a_boundary.mean() <= 0.5
    return on_a_boundary


@pytest.mark.parametrize(("version", "name", "file_format"), saved_files())
def test_files_of_every_release_load_and_compute_what_they_did(version, name, file_format):
    path = SAVED_MODELS / version / f"{name}.{file_format}"
    expected = np.load(SAVED_MODELS / version / f"{name}.npz")
    X = GENERATOR.rows()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = load_saved(path, file_format)
    version_warnings = [w for w in caught if issubclass(w.category, InconsistentVersionWarning)]
    if version != sklae.__version__:
        assert version_warnings, "loading another release's file warns"
        assert all(
            w.message.original_version == version
            for w in version_warnings
            if w.message.library == "sklae"
        )

    computed = outputs(model, X)
    assert set(computed) == set(expected.files)
    on_a_boundary = rows_on_a_boundary(model, X, expected)
    for method in expected.files:
        wanted, got = expected[method], computed[method]
        if method in ("predict", "p_values"):
            # Labels and p-values jump at boundaries: a row within rounding of
            # one (the row that set the threshold scores exactly 0 where it was
            # fitted) may fall on either side of it on another processor.
            wanted, got = wanted[~on_a_boundary], got[~on_a_boundary]
        assert_allclose(got, wanted, rtol=1e-5, atol=rounding_of(wanted), err_msg=method)
    if hasattr(model, "validation_scores_"):
        # Files of releases before best_epoch_ get it from their validation scores.
        assert (model.best_epoch_ is None) == (model.validation_scores_ is None)
        if model.best_epoch_ is not None:
            assert 0 <= model.best_epoch_ <= model.n_iter_
    if not hasattr(model, "decision_function"):
        # A loaded model trains on.
        model.set_params(warm_start=True, max_iter=1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(X)
        assert np.all(np.isfinite(model.transform(X)))


# ---------------------------------------------------------------------- MLflow


def test_mlflow_logs_and_loads_a_model_in_its_default_skops_format(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    pytest.importorskip("skops")
    import mlflow
    import mlflow.sklearn

    # A local file store for the test run (MLflow 3 asks to opt in to it).
    store = (tmp_path / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", store)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    model, X = fitted("AutoencoderTransformer")
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            skops_trusted_types=skops_trusted_types(),
            # Not inferred: that runs a subprocess and is not what is tested.
            pip_requirements=[],
        )
    loaded = mlflow.sklearn.load_model(info.model_uri)
    flavor = mlflow.models.get_model_info(info.model_uri).flavors["sklearn"]

    assert flavor["serialization_format"] == "skops"
    assert_array_equal(loaded.transform(X), model.transform(X))
