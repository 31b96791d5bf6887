"""Tests of DenoisingAutoencoder and of the denoising part of the training engine."""

import pickle
import warnings

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from scipy import sparse
from sklearn import config_context
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA, KernelPCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from sklae import AutoencoderTransformer, DenoisingAutoencoder
from sklae._bounds import entries_equal_to
from sklae._engine import Batches, Corruption, RowData, TrainingRows, pass_seeds
from sklae._noise import detection_threshold, prediction_threshold

NOISE_STD = 0.25
# Tiny, fast settings for behaviour that does not depend on training well.
TINY = {
    "code_size": 8,
    "hidden_layer_sizes": (32,),
    "max_iter": 10,
    "batch_size": 32,
    "learning_rate_init": 3e-3,
    "random_state": 0,
}
# Settings that denoise digits well in a fraction of a second.
DIGITS_DENOISER = {
    "code_size": 32,
    "hidden_layer_sizes": (128,),
    "max_iter": 20,
    "batch_size": 64,
    "learning_rate_init": 3e-3,
    "learning_rate": "constant",
    "output_activation": "sigmoid",
    "random_state": 0,
}


@pytest.fixture(autouse=True)
def _quiet_convergence():
    # Short fits on purpose: ConvergenceWarning is expected and not the subject here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


@pytest.fixture(scope="module")
def digits():
    """Digits / 16, 75/25 split, Gaussian noise 0.25 on both (the kernel PCA example)."""
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    rng = np.random.RandomState(0)
    X_test_noisy = X_test + rng.normal(scale=NOISE_STD, size=X_test.shape)
    X_train_noisy = X_train + rng.normal(scale=NOISE_STD, size=X_train.shape)
    return X_train, X_train_noisy, y_train, X_test, X_test_noisy, y_test


def psnr(denoised, clean):
    return 10 * np.log10(1.0 / np.mean((denoised - clean) ** 2))


# ---------------------------------------------------------------------- engine


@pytest.mark.parametrize("noise", ["gaussian", "masking", "salt_and_pepper"])
def test_corruption_zero_level_leaves_batch_intact(noise):
    batch = torch.rand(50, 7)
    corruption = Corruption(noise, 0.0, low=torch.zeros(7), high=torch.ones(7))
    assert torch.equal(corruption(batch, torch.Generator().manual_seed(0)), batch)


def test_gaussian_corruption_has_the_requested_std():
    batch = torch.full((400, 250), 0.5)
    noisy = Corruption("gaussian", 0.3)(batch, torch.Generator().manual_seed(0))
    difference = (noisy - batch).numpy()
    assert abs(difference.mean()) < 0.005
    assert abs(difference.std() - 0.3) < 0.005


def test_masking_zeroes_the_requested_share_and_keeps_the_rest():
    batch = torch.rand(400, 250) + 1.0  # no zeros before masking
    noisy = Corruption("masking", 0.2)(batch, torch.Generator().manual_seed(0))
    masked = noisy == 0
    assert abs(masked.float().mean().item() - 0.2) < 0.005
    assert torch.equal(noisy[~masked], batch[~masked])


def test_salt_and_pepper_uses_each_features_extremes():
    n_features = 250
    low = torch.linspace(-3.0, -1.0, n_features)
    high = torch.linspace(5.0, 9.0, n_features)
    batch = torch.zeros(400, n_features)
    noisy = Corruption("salt_and_pepper", 0.3, low=low, high=high)(
        batch, torch.Generator().manual_seed(0)
    )
    pepper, salt = noisy == low, noisy == high
    assert abs(pepper.float().mean().item() - 0.15) < 0.005
    assert abs(salt.float().mean().item() - 0.15) < 0.005
    assert torch.equal(noisy[~(pepper | salt)], batch[~(pepper | salt)])


def test_salt_and_pepper_needs_extremes():
    with pytest.raises(ValueError, match="low and high"):
        Corruption("salt_and_pepper", 0.1)


def _passes(batches, n_passes):
    return [
        [(source.clone(), target.clone()) for source, target in batches] for _ in range(n_passes)
    ]


def test_training_batches_are_corrupted_afresh_every_pass_with_clean_targets():
    clean = torch.rand(30, 5)
    rows = TrainingRows(RowData(clean), corruption=Corruption("gaussian", 0.5))
    pass_number = iter(range(100))
    batches = Batches(
        rows, 8, "cpu", seeds_for_pass=lambda: pass_seeds(0, next(pass_number)), shuffle=True
    )
    first, second = _passes(batches, 2)
    for passes in (first, second):
        sources = torch.cat([source for source, _ in passes])
        targets = torch.cat([target for _, target in passes])
        assert sources.shape == clean.shape == targets.shape
        assert not torch.allclose(sources, targets)
        # Targets are the clean rows, each once, in a shuffled order.
        assert torch.equal(targets[targets[:, 0].argsort()], clean[clean[:, 0].argsort()])
    assert not torch.equal(first[0][0], second[0][0])

    # The same pass numbers give the same corruption.
    pass_number = iter(range(100))
    again = _passes(batches, 1)[0]
    assert all(torch.equal(a[0], b[0]) for a, b in zip(first, again))


def test_validation_batches_are_corrupted_identically_every_pass():
    clean = torch.rand(30, 5)
    rows = TrainingRows(RowData(clean), corruption=Corruption("masking", 0.5))
    batches = Batches(rows, 64, "cpu", lambda: pass_seeds(0, 12345), shuffle=False)
    (first,), (second,) = _passes(batches, 2)
    assert torch.equal(first[1], clean)  # in order, clean targets
    assert torch.equal(first[0], second[0])
    assert not torch.equal(first[0], clean)


def test_given_pairs_are_served_as_they_are():
    clean, noisy = torch.rand(20, 4), torch.rand(20, 4)
    rows = TrainingRows(RowData(clean), inputs=RowData(noisy))
    batches = Batches(rows, 64, "cpu", lambda: pass_seeds(0, 0), shuffle=False)
    ((source, target),) = list(batches)
    assert torch.equal(source, noisy)
    assert torch.equal(target, clean)
    taken = rows.take(np.array([3, 1]))
    assert torch.equal(taken.inputs.values, noisy[[3, 1]])
    assert torch.equal(taken.targets.values, clean[[3, 1]])


# ---------------------------------------------------------------------- estimator


def test_denoises_digits_better_than_the_noise_and_pca(digits):
    X_train, X_train_noisy, _, X_test, X_test_noisy, _ = digits
    pca = PCA(32, random_state=0).fit(X_train_noisy)
    pca_psnr = psnr(pca.inverse_transform(pca.transform(X_test_noisy)), X_test)
    # Fit on noisy rows only, as PCA is: no clean row is seen in training.
    denoiser = DenoisingAutoencoder(noise_level=NOISE_STD, **DIGITS_DENOISER).fit(X_train_noisy)
    denoised = denoiser.predict(X_test_noisy)
    assert denoised.shape == X_test_noisy.shape
    assert psnr(denoised, X_test) > pca_psnr + 1.0 > psnr(X_test_noisy, X_test) + 3.0


def test_zero_noise_trains_exactly_like_the_plain_autoencoder(digits):
    X = digits[0][:300]
    # The same schedule and rate for both, set rather than left to the defaults.
    denoiser = DenoisingAutoencoder(noise_level=0.0, learning_rate="constant", **TINY).fit(X)
    plain = AutoencoderTransformer(learning_rate="constant", **TINY).fit(X)
    assert_array_equal(denoiser.transform(X), plain.transform(X))


@pytest.mark.parametrize("noise", ["gaussian", "masking", "salt_and_pepper"])
def test_same_random_state_same_result_and_global_torch_rng_untouched(digits, noise):
    X = digits[0][:300]
    torch.manual_seed(123)
    expected_draw = torch.rand(3)
    torch.manual_seed(123)
    first = DenoisingAutoencoder(noise=noise, noise_level=0.3, **TINY).fit(X).predict(X)
    assert torch.equal(torch.rand(3), expected_draw)
    second = DenoisingAutoencoder(noise=noise, noise_level=0.3, **TINY).fit(X).predict(X)
    assert_array_equal(first, second)
    other_seed = {**TINY, "random_state": 1}
    third = DenoisingAutoencoder(noise=noise, noise_level=0.3, **other_seed).fit(X).predict(X)
    assert not np.allclose(first, third)


def test_noise_changes_training(digits):
    X = digits[0][:300]
    quiet = DenoisingAutoencoder(noise_level=0.0, **TINY).fit(X)
    noisy = DenoisingAutoencoder(noise_level=0.5, **TINY).fit(X)
    assert not np.allclose(quiet.predict(X), noisy.predict(X))
    # Training on corrupted input is harder: the loss against the clean rows is higher.
    assert noisy.loss_curve_[-1] > quiet.loss_curve_[-1]


def test_learns_from_given_pairs_and_ignores_noise_parameters(digits):
    X_train, X_train_noisy, _, X_test, X_test_noisy, _ = digits
    params = DIGITS_DENOISER
    paired = DenoisingAutoencoder(noise_level=0.0, **params).fit(X_train_noisy, X_clean=X_train)
    assert psnr(paired.predict(X_test_noisy), X_test) > psnr(X_test_noisy, X_test) + 2.0
    # Noisy inputs are used as given: the noise parameters change nothing.
    other = DenoisingAutoencoder(noise="masking", noise_level=0.9, **params)
    other.fit(X_train_noisy, X_clean=X_train)
    assert_array_equal(paired.predict(X_test_noisy), other.predict(X_test_noisy))
    # Clean rows are the target: the model differs from one fit to reproduce the noisy rows.
    self_supervised = DenoisingAutoencoder(noise_level=0.0, **params).fit(X_train_noisy)
    assert not np.allclose(paired.predict(X_test_noisy), self_supervised.predict(X_test_noisy))


def test_labels_passed_as_y_are_ignored(digits):
    X, _, y = digits[0][:300], None, digits[2][:300]
    with_labels = DenoisingAutoencoder(**TINY).fit(X, y).predict(X)
    without = DenoisingAutoencoder(**TINY).fit(X).predict(X)
    assert_array_equal(with_labels, without)


@pytest.mark.parametrize(
    ("X_clean", "message"),
    [
        (np.zeros((299, 64)), r"X_clean must have the shape of X in fit.*\(300, 64\).*\(299, 64\)"),
        (np.zeros((300, 63)), r"X_clean must have the shape of X in fit"),
        (np.full((300, 64), np.nan), "X_clean"),
    ],
)
def test_bad_clean_rows_raise_and_leave_the_fitted_model_unchanged(digits, X_clean, message):
    X = digits[0][:300]
    denoiser = DenoisingAutoencoder(**TINY).fit(X)
    before = denoiser.predict(X)
    attributes = set(vars(denoiser))
    with pytest.raises(ValueError, match=message):
        denoiser.fit(X, X_clean=X_clean)
    assert_array_equal(denoiser.predict(X), before)
    # The failed fit left no temporary attribute behind (nor removed a fitted one).
    assert set(vars(denoiser)) == attributes
    assert not [name for name in vars(denoiser) if name.startswith("_pending")]


@pytest.mark.parametrize("noise", ["masking", "salt_and_pepper"])
def test_probability_above_one_is_rejected(digits, noise):
    with pytest.raises(ValueError, match=r"must be in \[0, 1\]; got 1.5"):
        DenoisingAutoencoder(noise=noise, noise_level=1.5, **TINY).fit(digits[0][:50])


@pytest.mark.parametrize(
    ("params", "message"),
    [({"noise": "poisson"}, "noise"), ({"noise_level": -0.1}, "noise_level")],
)
def test_invalid_noise_parameters(digits, params, message):
    with pytest.raises(ValueError, match=message):
        DenoisingAutoencoder(**params).fit(digits[0][:50])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_predict_keeps_shape_and_dtype(digits, dtype):
    X = digits[0][:200].astype(dtype)
    denoiser = DenoisingAutoencoder(**TINY).fit(X)
    denoised = denoiser.predict(X)
    assert denoised.shape == X.shape
    assert denoised.dtype == dtype
    codes = denoiser.transform(X)
    assert codes.shape == (200, TINY["code_size"])
    assert_allclose(denoiser.inverse_transform(codes), denoised, rtol=1e-5, atol=1e-6)


def test_predict_keeps_the_units_of_the_data(digits):
    X = digits[0][:300] * 4.0 - 2.0  # pixels in [-2, 2]
    denoiser = DenoisingAutoencoder(noise_level=0.5, **TINY).fit(X)
    denoised = denoiser.predict(X)
    # In the units of X: spanning its range, and closer to each row than the mean row is.
    assert denoised.min() < -1.5 < 1.5 < denoised.max()
    assert np.mean((denoised - X) ** 2) < 0.75 * np.mean((X - X.mean(axis=0)) ** 2)


def test_score_is_negative_mse_against_x_or_the_clean_rows(digits):
    X_train, _, _, X_test, X_test_noisy, _ = digits
    denoiser = DenoisingAutoencoder(**TINY).fit(X_train)
    denoised = denoiser.predict(X_test_noisy)
    assert denoiser.score(X_test_noisy) == pytest.approx(-np.mean((denoised - X_test_noisy) ** 2))
    assert denoiser.score(X_test_noisy, X_clean=X_test) == pytest.approx(
        -np.mean((denoised - X_test) ** 2)
    )
    with pytest.raises(ValueError, match="X_clean must have the shape of X in score"):
        denoiser.score(X_test_noisy, X_clean=X_test[:10])


def test_early_stopping_validates_on_corrupted_rows(digits):
    X = digits[0][:400]
    params = {**TINY, "max_iter": 4, "early_stopping": True}
    noisy = DenoisingAutoencoder(noise_level=1.0, **params).fit(X)
    quiet = DenoisingAutoencoder(noise_level=0.0, **params).fit(X)
    assert len(noisy.validation_scores_) == noisy.n_iter_
    # Heavy corruption of the held-out inputs makes the validation loss worse.
    assert noisy.best_validation_score_ < quiet.best_validation_score_


def test_partial_fit_tracks_the_feature_range_and_accepts_pairs(digits):
    X_train, X_train_noisy = digits[0], digits[1]
    denoiser = DenoisingAutoencoder(noise="salt_and_pepper", noise_level=0.2, **TINY)
    denoiser.partial_fit(X_train[:100])
    denoiser.partial_fit(X_train[100:300] * 2.0)
    assert_allclose(
        denoiser.data_max_, np.maximum(X_train[:100].max(0), 2 * X_train[100:300].max(0))
    )
    assert_allclose(
        denoiser.data_min_, np.minimum(X_train[:100].min(0), 2 * X_train[100:300].min(0))
    )
    denoiser.partial_fit(X_train_noisy[:100], X_clean=X_train[:100])
    assert denoiser.n_iter_ == 3
    # A fresh fit forgets the earlier range.
    denoiser.fit(X_train[:100])
    assert_allclose(denoiser.data_max_, X_train[:100].max(0))


def test_sparse_input(digits):
    X = sparse.csr_matrix(digits[0][:200])
    # The same network for both: init="auto" starts dense input only at PCA's solution.
    params = dict(noise="masking", noise_level=0.3, init="random", **TINY)
    denoiser = DenoisingAutoencoder(**params).fit(X)
    denoised = denoiser.predict(X)
    assert isinstance(denoised, np.ndarray)
    assert denoised.shape == X.shape
    dense = DenoisingAutoencoder(**params).fit(X.toarray())
    assert_allclose(dense.predict(X.toarray()), denoised, rtol=1e-5, atol=1e-6)


def test_pickle_and_clone(digits):
    X = digits[0][:200]
    denoiser = DenoisingAutoencoder(noise="masking", noise_level=0.2, **TINY).fit(X)
    restored = pickle.loads(pickle.dumps(denoiser))
    assert_array_equal(restored.predict(X), denoiser.predict(X))
    fresh = clone(denoiser)
    assert fresh.get_params() == denoiser.get_params()
    assert not hasattr(fresh, "net_")


def test_pipeline_with_scaling_and_labels(digits):
    X_train, _, y_train, X_test, X_test_noisy, y_test = digits
    pipeline = Pipeline(
        [("scale", StandardScaler()), ("denoise", DenoisingAutoencoder(**TINY))]
    ).fit(X_train, y_train)
    assert pipeline.predict(X_test_noisy).shape == X_test.shape
    classifier = Pipeline(
        [
            ("scale", MinMaxScaler()),
            ("denoise", DenoisingAutoencoder(**{**TINY, "code_size": 16})),
            ("classify", LogisticRegression(max_iter=500)),
        ]
    ).fit(X_train, y_train)
    assert classifier.score(X_test, y_test) > 0.7


def test_grid_search_over_noise_level_scored_against_routed_clean_rows(digits):
    # Fit self-supervised on the noisy rows, score the denoising against the clean ones.
    X_train, X_train_noisy = digits[0], digits[1]
    with config_context(enable_metadata_routing=True):
        denoiser = (
            DenoisingAutoencoder(**DIGITS_DENOISER)
            .set_fit_request(X_clean=False)
            .set_score_request(X_clean=True)
        )
        search = GridSearchCV(denoiser, {"noise_level": [0.0, 0.25]}, cv=2)
        search.fit(X_train_noisy, X_clean=X_train)
    scores = search.cv_results_["mean_test_score"]
    # Minus the MSE against the clean rows, below the noise's own MSE of 0.25 ** 2.
    assert np.all((scores > -(0.25**2)) & (scores < 0))
    assert search.best_params_["noise_level"] == 0.25


def test_grid_search_over_noise_level_self_supervised(digits):
    X = digits[0][:600]
    search = GridSearchCV(
        DenoisingAutoencoder(**TINY), {"noise_level": [0.05, 0.5]}, cv=2, n_jobs=1
    ).fit(X)
    # Scored against X itself, light noise passes clean rows through best.
    assert search.best_params_["noise_level"] == 0.05


def test_bce_checks_the_clean_targets_not_the_noisy_inputs():
    rng = np.random.default_rng(0)
    clean = rng.uniform(size=(40, 6))
    noisy = clean + rng.normal(scale=0.3, size=clean.shape)  # leaves [0, 1]
    model = DenoisingAutoencoder(loss="bce", max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(noisy, X_clean=clean)
    assert model.predict(noisy).min() >= 0
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        DenoisingAutoencoder(loss="bce", max_iter=2).fit(clean, X_clean=noisy)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        DenoisingAutoencoder(loss="bce", max_iter=2).fit(noisy)


# ------------------------------------------------------------- noisy rows alone


def test_defaults_learn_from_noisy_rows_alone_and_beat_pca_and_kernel_pca(digits):
    X_train, X_train_noisy, _, X_test, X_test_noisy, _ = digits
    denoiser = DenoisingAutoencoder(random_state=0).fit(X_train_noisy)
    # The level is estimated from the noisy rows, and the code keeps every
    # principal direction that shows signal (above the noise's Marchenko-Pastur
    # edge, 1.4 noise variances with 1347 rows of 64 pixels), more than those
    # on which the whole projection pays.
    assert denoiser.noise_level_ == pytest.approx(NOISE_STD, rel=0.1)
    eigenvalues = PCA().fit(X_train_noisy).explained_variance_
    ratio = 64 / (len(X_train_noisy) - 1)
    shown = eigenvalues > detection_threshold(ratio) * denoiser.noise_level_**2
    assert denoiser.code_size_ == np.sum(shown)
    assert denoiser.code_size_ > np.sum(
        eigenvalues > prediction_threshold(ratio) * denoiser.noise_level_**2
    )
    best_pca = max(
        psnr(pca.inverse_transform(pca.transform(X_test_noisy)), X_test)
        for pca in (PCA(k, random_state=0).fit(X_train_noisy) for k in (8, 12, 16, 24, 32))
    )
    kernel_pca = KernelPCA(
        400, kernel="rbf", gamma=4e-3, alpha=5e-3, fit_inverse_transform=True, random_state=0
    ).fit(X_train_noisy)
    kernel_psnr = psnr(kernel_pca.inverse_transform(kernel_pca.transform(X_test_noisy)), X_test)
    assert psnr(denoiser.predict(X_test_noisy), X_test) > max(best_pca, kernel_psnr) + 0.5
    # Losses are estimates of the error against clean rows: the targets' own
    # noise (variance 2 sigma^2) is taken out of them.
    assert 0 < -denoiser.best_validation_score_ < NOISE_STD**2


def test_noisy_rows_mode_is_the_default_for_gaussian_noise_of_unknown_level(digits):
    X = digits[1][:300]
    assert DenoisingAutoencoder(**TINY).fit(X).noise_level_ == pytest.approx(0.25, rel=0.15)
    # A given level, another noise or loss: clean rows corrupted in training.
    for params, level in [({"noise_level": 0.3}, 0.3), ({"noise": "masking"}, 0.1)]:
        denoiser = DenoisingAutoencoder(**params, **TINY).fit(X)
        assert denoiser.noise_level_ == level
        assert not denoiser._noisy_inputs
    clean = np.clip(digits[0][:300], 0, 1)
    assert DenoisingAutoencoder(loss="bce", **TINY).fit(clean).noise_level_ == 0.1
    # A known level of the noise in noisy rows.
    known = DenoisingAutoencoder(noisy_data=True, noise_level=0.25, **TINY).fit(X)
    assert known.noise_level_ == 0.25
    assert known._noisy_inputs


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"noise": "masking"}, "noisy_data=True .* needs noise='gaussian'"),
        ({"loss": "l1"}, "noisy_data=True .* needs loss='mse'"),
    ],
)
def test_noisy_rows_mode_refuses_what_it_cannot_learn_from(digits, params, message):
    with pytest.raises(ValueError, match=message):
        DenoisingAutoencoder(noisy_data=True, **params, **TINY).fit(digits[1][:100])


def test_noisy_rows_training_is_reproducible_and_keeps_its_first_estimate(digits):
    X = digits[1][:400]
    first = DenoisingAutoencoder(**TINY).fit(X)
    assert_array_equal(first.predict(X), DenoisingAutoencoder(**TINY).fit(X).predict(X))
    streamed = DenoisingAutoencoder(**TINY).partial_fit(X[:200])
    level = streamed.noise_level_
    streamed.partial_fit(X[200:] * 3.0)
    # A later chunk is not re-estimated: a chunk has fewer rows to estimate from.
    assert streamed.noise_level_ == level


def test_outputs_stay_within_the_range_of_the_training_targets(digits):
    X_train, X_train_noisy = digits[0], digits[1]
    # Clean pixels in [0, 1]: a wildly scaled input still decodes to pixels.
    denoiser = DenoisingAutoencoder(noise_level=0.25, **TINY).fit(X_train)
    wild = 5 * X_train_noisy[:100] - 2
    # A pixel's own least or largest value bounds it where max(2, sqrt(n))
    # images or more take it (the always-blank corners stay 0); the others get
    # the range that all pixels share, [0, 1].
    needed = max(2, np.sqrt(len(X_train)))
    own_high = np.count_nonzero(X_train == X_train.max(axis=0), axis=0) >= needed
    assert not own_high.all()
    for output in (
        denoiser.predict(wild),
        denoiser.inverse_transform(10 * denoiser.transform(wild)),
    ):
        assert output.min() >= 0
        assert output.max() <= 1
        assert np.all(output >= denoiser.data_min_)
        assert np.all(output[:, own_high] <= denoiser.data_max_[own_high])
    assert denoiser.data_max_.max() == 1.0
    # With clean twins, their range is the range.
    paired = DenoisingAutoencoder(**TINY).fit(X_train_noisy, X_clean=X_train)
    assert_array_equal(paired.data_min_, X_train.min(axis=0))
    assert paired.predict(wild).min() >= 0
    assert paired.predict(wild).max() <= 1


def test_outputs_are_not_clipped_at_the_ends_of_a_sample_of_continuous_values():
    # 150 noisy rows of 100 columns mixing 3 latent variables: 1% of new rows'
    # clean values lie beyond the training rows' range, and clipping them
    # there made the denoised test rows 7.9 times as far from the clean ones
    # as PCA's projection on the true rank (0.0046 against 0.00058).
    rng = np.random.default_rng(0)
    clean = rng.standard_normal((200, 3)) @ rng.standard_normal((3, 100)) / np.sqrt(3)
    X = clean + rng.normal(scale=0.1, size=clean.shape)
    denoiser = DenoisingAutoencoder(random_state=0).fit(X[:150])
    assert denoiser._output_bounds() is None
    pca = PCA(3).fit(X[:150])
    pca_error = np.mean((pca.inverse_transform(pca.transform(X[150:])) - clean[150:]) ** 2)
    assert denoiser.code_size_ == 3
    assert np.mean((denoiser.predict(X[150:]) - clean[150:]) ** 2) <= 1.05 * pca_error
    # A binary column piles up at 0 and at 1: those ends bound it, and the
    # continuous columns, whose least and largest values are taken once, stay unbounded.
    binary = rng.integers(0, 2, size=(150, 1)).astype(float)
    with_binary = DenoisingAutoencoder(random_state=0, max_iter=2).fit(np.hstack([X[:150], binary]))
    low, high = with_binary._output_bounds()
    assert (low[-1], high[-1]) == (0.0, 1.0)
    assert np.all(np.isinf(low[:-1]))
    assert np.all(np.isinf(high[:-1]))


def test_bounds_count_the_entries_at_each_end_across_chunks_and_sparse_rows():
    X = np.array([[0.0, 1.0], [2.0, 1.0], [3.0, 5.0]])
    assert_array_equal(entries_equal_to(X, X.min(axis=0)), [1, 2])
    assert_array_equal(entries_equal_to(sparse.csr_matrix(X), X.min(axis=0)), [1, 2])
    # Entries not stored are zeros, and count.
    assert_array_equal(entries_equal_to(sparse.csr_matrix(X), np.array([0.0, 5.0])), [1, 1])
    # Chunks of partial_fit: a least value taken once in each of two chunks is taken twice.
    streamed = DenoisingAutoencoder(noise_level=0.1, random_state=0, max_iter=1)
    streamed.partial_fit(np.array([[0.0, 1.0], [1.0, 2.0]]))
    assert streamed._output_bounds() is None
    streamed.partial_fit(np.array([[0.0, 3.0], [2.0, 4.0]]))
    low, high = streamed._output_bounds()
    # The second feature's least value (1, taken once) falls back on the least
    # value of all features, 0, taken twice; no largest value is taken twice.
    assert_array_equal(low, [0.0, 0.0])
    assert np.all(np.isinf(high))
    # A lower least value starts the count afresh, and 6 rows need 3 entries
    # (max(2, sqrt(6))) at a bound: the 0 of the second feature no longer bounds.
    streamed.partial_fit(np.array([[-1.0, 3.0], [2.0, 4.0]]))
    assert streamed._data_rows == 6
    assert streamed._output_bounds() is None
