"""Small, fast instances of every public sklae estimator, for the test suites.

One registry instead of a copy of "tiny settings" per test module, modelled on
``imblearn/utils/_test_common/instance_generator.py`` (and scikit-learn's own):

- :data:`INIT_PARAMS`: constructor arguments per estimator class for
  scikit-learn's estimator checks, which fit dozens of times on tiny data; a
  list gives one instance per parameter set;
- :func:`_tested_estimators`: those instances, every public estimator;
- :data:`PER_ESTIMATOR_XFAIL_CHECKS` and :func:`_get_expected_failed_checks`:
  the checks that do not apply to an estimator, with why;
- :data:`TINY_NETWORK` and :func:`tiny_estimators`: smaller still, for the
  tests that fit every estimator many times over (bad inputs, random data,
  pickles, memory).

It ships with the package, so benchmarks and downstream code can import it,
but it is not public API: names and settings change with sklae's tests.
"""

from sklae import (
    AutoencoderOutlierDetector,
    AutoencoderTransformer,
    ConformalOutlierDetector,
    DenoisingAutoencoder,
    VariationalAutoencoder,
)

SEED = 0

# Every public estimator, in the order the test ids list them.
ESTIMATOR_CLASSES = (
    AutoencoderTransformer,
    VariationalAutoencoder,
    DenoisingAutoencoder,
    AutoencoderOutlierDetector,
    ConformalOutlierDetector,
)

# Small, fast settings: the checks fit dozens of times on tiny data.
INIT_PARAMS = {
    AutoencoderTransformer: [
        dict(code_size=2, hidden_layer_sizes=(8,), max_iter=5, random_state=SEED),
        # The regularised variants change the training objective, so they get the checks too.
        dict(
            code_size=3,
            hidden_layer_sizes=(),
            code_activation="logistic",
            sparsity=0.1,
            sparsity_target=0.1,
            contractive=0.1,
            max_iter=5,
            random_state=SEED,
        ),
    ],
    VariationalAutoencoder: dict(
        code_size=2, hidden_layer_sizes=(8,), max_iter=5, random_state=SEED
    ),
    DenoisingAutoencoder: dict(code_size=2, hidden_layer_sizes=(8,), max_iter=5, random_state=SEED),
    AutoencoderOutlierDetector: dict(n_estimators=2, max_iter=3, random_state=SEED),
    ConformalOutlierDetector: dict(
        estimator=AutoencoderOutlierDetector(n_estimators=2, max_iter=3, random_state=SEED),
        # A rate that the few calibration rows of the checks' small data resolve.
        false_alarm_rate=0.25,
        random_state=SEED,
    ),
}

# Checks that do not apply, with why.
# DenoisingAutoencoder.predict returns denoised rows, shape (n_samples, n_features), as
# the issue asks; the sparse checks assert that predict returns one value per sample
# (shape (n_samples,)), as for a regressor. Sparse fit/predict are tested in test_denoising.py.
PREDICT_RETURNS_ROWS = "predict returns denoised rows (n_samples, n_features), not targets"
PER_ESTIMATOR_XFAIL_CHECKS = {
    DenoisingAutoencoder: {
        "check_estimator_sparse_array": PREDICT_RETURNS_ROWS,
        "check_estimator_sparse_matrix": PREDICT_RETURNS_ROWS,
    },
}

# A tinier network still, for tests that fit every estimator many times over:
# behaviour that does not depend on training well.
TINY_NETWORK = {"code_size": 2, "hidden_layer_sizes": (4,), "max_iter": 2, "random_state": SEED}


def _construct_instances(Estimator):
    """Instances of ``Estimator``, one per parameter set of :data:`INIT_PARAMS`.

    An estimator without an entry is built with its defaults (correct, but slow).
    """
    param_sets = INIT_PARAMS.get(Estimator, {})
    if not isinstance(param_sets, list):
        param_sets = [param_sets]
    for params in param_sets:
        yield Estimator(**params)


def _tested_estimators():
    """Every public estimator, as instances for scikit-learn's estimator checks."""
    for Estimator in ESTIMATOR_CLASSES:
        yield from _construct_instances(Estimator)


def _get_expected_failed_checks(estimator):
    """The checks ``estimator`` is expected to fail, by name, with the reason."""
    return PER_ESTIMATOR_XFAIL_CHECKS.get(type(estimator), {})


def tiny_estimators(max_iter=TINY_NETWORK["max_iter"], n_estimators=2):
    """A new instance of every public estimator with a tiny network, by class name.

    The autoencoders get :data:`TINY_NETWORK` (with ``max_iter``); the outlier
    detector ``n_estimators`` members of ``max_iter`` epochs, sized by its own
    ``"auto"`` rules.
    """
    network = {**TINY_NETWORK, "max_iter": max_iter}
    estimators = {}
    for Estimator in ESTIMATOR_CLASSES:
        if Estimator is AutoencoderOutlierDetector:
            estimators[Estimator.__name__] = Estimator(
                n_estimators=n_estimators, max_iter=max_iter, random_state=SEED
            )
        elif Estimator is ConformalOutlierDetector:
            detector = AutoencoderOutlierDetector(
                n_estimators=n_estimators, max_iter=max_iter, random_state=SEED
            )
            # A rate that a handful of calibration rows can resolve.
            estimators[Estimator.__name__] = Estimator(
                detector, false_alarm_rate=0.25, random_state=SEED
            )
        else:
            estimators[Estimator.__name__] = Estimator(**network)
    return estimators
