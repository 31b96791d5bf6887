"""scikit-learn's own estimator checks, run over every public estimator."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from sklae import (
    AutoencoderOutlierDetector,
    AutoencoderTransformer,
    DenoisingAutoencoder,
    VariationalAutoencoder,
)

# Small, fast settings: the checks fit dozens of times on tiny data.
FAST_ESTIMATORS = [
    AutoencoderTransformer(code_size=2, hidden_layer_sizes=(8,), max_iter=5, random_state=0),
    # The regularised variants change the training objective, so they get the checks too.
    AutoencoderTransformer(
        code_size=3,
        hidden_layer_sizes=(),
        code_activation="logistic",
        sparsity=0.1,
        sparsity_target=0.1,
        contractive=0.1,
        max_iter=5,
        random_state=0,
    ),
    VariationalAutoencoder(code_size=2, hidden_layer_sizes=(8,), max_iter=5, random_state=0),
    DenoisingAutoencoder(code_size=2, hidden_layer_sizes=(8,), max_iter=5, random_state=0),
    AutoencoderOutlierDetector(n_estimators=2, max_iter=3, random_state=0),
]

# Checks that do not apply, with why.
# DenoisingAutoencoder.predict returns denoised rows, shape (n_samples, n_features), as
# the issue asks; the sparse checks assert that predict returns one value per sample
# (shape (n_samples,)), as for a regressor. Sparse fit/predict are tested in test_denoising.py.
PREDICT_RETURNS_ROWS = "predict returns denoised rows (n_samples, n_features), not targets"
EXPECTED_FAILED_CHECKS = {
    "DenoisingAutoencoder": {
        "check_estimator_sparse_array": PREDICT_RETURNS_ROWS,
        "check_estimator_sparse_matrix": PREDICT_RETURNS_ROWS,
    },
}


@parametrize_with_checks(
    FAST_ESTIMATORS,
    expected_failed_checks=lambda estimator: EXPECTED_FAILED_CHECKS.get(
        type(estimator).__name__, {}
    ),
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
