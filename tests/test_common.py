"""scikit-learn's own estimator checks, run over every public estimator."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from sklae import AutoencoderOutlierDetector, AutoencoderTransformer

# Small, fast settings: the checks fit dozens of times on tiny data.
FAST_ESTIMATORS = [
    AutoencoderTransformer(code_size=2, hidden_layer_sizes=(8,), max_iter=5, random_state=0),
    AutoencoderOutlierDetector(n_estimators=2, max_iter=3, random_state=0),
]

# Checks that do not apply, with why. Empty: every check passes.
EXPECTED_FAILED_CHECKS = {}


@parametrize_with_checks(
    FAST_ESTIMATORS,
    expected_failed_checks=lambda estimator: EXPECTED_FAILED_CHECKS.get(
        type(estimator).__name__, {}
    ),
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
