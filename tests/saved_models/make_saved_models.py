"""Write small saved models of this sklae version, for the compatibility tests.

Run it once per release (and after a change to what a fitted model holds),
from the repository root::

    python tests/saved_models/make_saved_models.py

It writes ``tests/saved_models/<version>/``: each model of ``MODELS`` fitted on
``rows()``, saved with pickle and, where this version can, with skops, and
``<name>.npz`` with the outputs the model gave before it was saved.
``tests/test_saved_models.py`` loads the files of every version with the
current code and compares the outputs; files of earlier releases stay, so that
every later release keeps loading them.
"""

import pickle
import sys
import warnings
from pathlib import Path

import numpy as np

import sklae
from sklae import (
    AutoencoderOutlierDetector,
    AutoencoderTransformer,
    ConformalOutlierDetector,
    DenoisingAutoencoder,
    VariationalAutoencoder,
)

SMALL = dict(hidden_layer_sizes=(8,), max_iter=3, random_state=0)
# Small networks of every kind a fitted model can hold: a linear path started at
# PCA's solution, ordered codes truncated to a fraction of the variance,
# convolutions, a variational code, corruption, an ensemble with neighbours.
MODELS = {
    "transformer": lambda: AutoencoderTransformer(code_size=2, **SMALL),
    "transformer_fraction": lambda: AutoencoderTransformer(code_size=0.8, **SMALL),
    "convolutional": lambda: AutoencoderTransformer(
        code_size=2, image_shape=(4, 4), conv_channels=(2,), **SMALL
    ),
    "variational": lambda: VariationalAutoencoder(code_size=2, **SMALL),
    "denoising": lambda: DenoisingAutoencoder(code_size=2, **SMALL),
    "outlier_detector": lambda: AutoencoderOutlierDetector(n_estimators=2, **SMALL),
    # From 0.2: a detector calibrated to a false-alarm rate.
    "conformal_detector": lambda: ConformalOutlierDetector(
        AutoencoderOutlierDetector(n_estimators=2, **SMALL), false_alarm_rate=0.1, random_state=0
    ),
}


def rows():
    """The 40 x 16 float32 rows in [0, 1) every model is fitted on and evaluated with."""
    return np.random.default_rng(0).random((40, 16), dtype=np.float32)


def outputs(model, X):
    """What a loaded model must still compute: each method that has an output on ``X``."""
    if hasattr(model, "decision_function"):
        result = {"decision_function": model.decision_function(X), "predict": model.predict(X)}
        if hasattr(model, "p_values"):
            result["p_values"] = model.p_values(X)
        return result
    codes = model.transform(X)
    result = {"transform": codes, "inverse_transform": model.inverse_transform(codes)}
    if hasattr(model, "predict"):
        result["predict"] = model.predict(X)
    if hasattr(model, "score_samples"):
        result["score_samples"] = model.score_samples(X)
    return result


def main(directory):
    directory.mkdir(parents=True, exist_ok=True)
    X = rows()
    for name, make in MODELS.items():
        with warnings.catch_warnings():
            # Three epochs of a tiny network: not converging is the point.
            warnings.simplefilter("ignore")
            model = make().fit(X)
        np.savez(directory / f"{name}.npz", **outputs(model, X))
        with open(directory / f"{name}.pkl", "wb") as file:
            pickle.dump(model, file)
        try:
            import skops.io

            skops.io.dump(model, directory / f"{name}.skops")
        except Exception as error:  # versions before 0.2 cannot be saved with skops
            print(f"{name}: not saved with skops ({type(error).__name__}: {error})")
    print(f"wrote {directory}")


if __name__ == "__main__":
    here = Path(__file__).resolve().parent
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else here / sklae.__version__)
