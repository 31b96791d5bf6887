"""Exported networks (torch.export, ONNX) compute what the estimators compute."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.exceptions import NotFittedError

from sklae import (
    AutoencoderOutlierDetector,
    AutoencoderTransformer,
    DenoisingAutoencoder,
    VariationalAutoencoder,
)
from sklae.export import PARTS, export_onnx, export_program

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

SEED = 0
X = np.random.default_rng(SEED).random((37, 12))
TOLERANCE = {"rtol": 1e-5, "atol": 1e-6}

MODELS = {
    "mlp": lambda: AutoencoderTransformer(code_size=3, hidden_layer_sizes=(8,), max_iter=2),
    "variational": lambda: VariationalAutoencoder(code_size=3, hidden_layer_sizes=(8,), max_iter=2),
    "denoising": lambda: DenoisingAutoencoder(code_size=3, hidden_layer_sizes=(8,), max_iter=2),
    "convolutional": lambda: AutoencoderTransformer(
        code_size=3, image_shape=(3, 4), conv_channels=(4,), max_iter=2
    ),
}
FITTED = {}


def fitted(kind):
    if kind not in FITTED:
        FITTED[kind] = MODELS[kind]().set_params(random_state=SEED).fit(X)
    return FITTED[kind]


def expected_output(model, part, rows):
    """What the estimator itself returns for ``part``, and the part's float32 input."""
    if part == "decoder":
        codes = model.transform(rows).astype(np.float32)
        return codes, model.inverse_transform(codes)
    rows = rows.astype(np.float32)
    if part == "encoder":
        return rows, model.transform(rows)
    return rows, model.inverse_transform(model.transform(rows))


@pytest.mark.parametrize("kind", list(MODELS))
@pytest.mark.parametrize("part", PARTS)
def test_exported_program_matches_the_estimator(kind, part):
    model = fitted(kind)
    program = export_program(model, part).module()

    for rows in (X[:1], X):  # the batch dimension is dynamic
        inputs, expected = expected_output(model, part, rows)
        result = program(torch.from_numpy(inputs)).numpy()
        assert_allclose(result, expected, **TOLERANCE)


def test_denoising_autoencoder_part_is_predict():
    model = fitted("denoising")
    program = export_program(model, "autoencoder").module()

    result = program(torch.from_numpy(X.astype(np.float32))).numpy()

    assert_allclose(result, model.predict(X.astype(np.float32)), **TOLERANCE)


def test_export_leaves_the_estimator_as_it_was():
    model = fitted("mlp")
    codes = model.transform(X)
    model.module_.train()

    export_program(model, "autoencoder")

    assert model.module_.training
    assert all(parameter.requires_grad for parameter in model.module_.parameters())
    assert_array_equal(model.transform(X), codes)


SERVE_WITHOUT_SKLEARN = """
import sys
sys.modules["sklearn"] = None  # any import of scikit-learn (or sklae) now fails
import numpy as np
import torch
program = torch.export.load(sys.argv[1]).module()
rows = torch.from_numpy(np.load(sys.argv[2]))
np.save(sys.argv[3], program(rows).numpy())
"""


@pytest.mark.slow  # a fresh interpreter that imports torch
def test_saved_program_serves_without_scikit_learn(tmp_path):
    model = fitted("mlp")
    export_program(model, "encoder", path=tmp_path / "encoder.pt2")
    np.save(tmp_path / "rows.npy", X.astype(np.float32))

    subprocess.run(
        [
            sys.executable,
            "-c",
            SERVE_WITHOUT_SKLEARN,
            str(tmp_path / "encoder.pt2"),
            str(tmp_path / "rows.npy"),
            str(tmp_path / "codes.npy"),
        ],
        check=True,
    )

    assert_allclose(np.load(tmp_path / "codes.npy"), model.transform(X), **TOLERANCE)


def test_unfitted_estimator_cannot_be_exported():
    with pytest.raises(NotFittedError):
        export_program(AutoencoderTransformer())


def test_outlier_detector_export_is_a_clear_type_error():
    with pytest.raises(TypeError, match=r"AutoencoderOutlierDetector.*pickle or skops"):
        export_program(AutoencoderOutlierDetector())


def test_unknown_part_is_rejected():
    with pytest.raises(ValueError, match=r"part must be one of \('encoder', 'decoder'"):
        export_program(fitted("mlp"), "middle")


def test_onnx_export_names_the_extra_when_packages_are_missing(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnxscript", None)

    with pytest.raises(ImportError, match=r"pip install \"sklae\[onnx\]\""):
        export_onnx(fitted("mlp"), tmp_path / "model.onnx")


@pytest.mark.parametrize(
    ("kind", "part"),
    [
        ("mlp", "encoder"),
        ("mlp", "decoder"),
        ("variational", "encoder"),
        ("denoising", "autoencoder"),
    ],
)
def test_onnx_model_matches_the_estimator(kind, part, tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    onnxruntime = pytest.importorskip("onnxruntime")
    model = fitted(kind)
    path = export_onnx(model, tmp_path / "model.onnx", part=part)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    for rows in (X[:1], X):
        inputs, expected = expected_output(model, part, rows)
        (result,) = session.run(None, {"X": inputs})
        assert_allclose(result, expected, rtol=1e-5, atol=1e-5)
