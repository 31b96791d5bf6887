"""Tests of the noise level estimate, of pairs drawn from noisy rows and of denoise_image."""

import warnings

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose
from scipy import sparse
from sklearn.datasets import load_digits
from sklearn.feature_extraction.image import extract_patches_2d
from sklearn.utils._param_validation import InvalidParameterError

from sklae import DenoisingAutoencoder, denoise_image, estimate_noise_level
from sklae._base import principal_components
from sklae._engine import Recorruption
from sklae._noise import (
    components_above_noise,
    covariance_spectrum,
    detection_threshold,
    marchenko_pastur_median,
    prediction_threshold,
    prediction_weights,
    square_free,
)

LEVELS = (0.05, 0.1, 0.2, 0.3, 0.5)


def low_rank_table(n_rows=3000, n_columns=30, rank=5, seed=0):
    """A table whose 30 columns mix 5 latent variables: redundant columns, as in sensors."""
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((n_rows, rank))
    mixing = rng.standard_normal((rank, n_columns)) / np.sqrt(rank)
    return latent @ mixing + rng.uniform(-1, 1, n_columns)


def noisy(X, level, seed=1):
    return X + np.random.default_rng(seed).normal(scale=level, size=X.shape)


@pytest.mark.parametrize("level", LEVELS)
def test_estimate_within_ten_percent_on_images(level):
    X = load_digits().data / 16
    assert estimate_noise_level(noisy(X, level)) == pytest.approx(level, rel=0.1)


@pytest.mark.parametrize("level", LEVELS)
def test_estimate_within_ten_percent_on_a_table_of_redundant_columns(level):
    assert estimate_noise_level(noisy(low_rank_table(), level)) == pytest.approx(level, rel=0.1)


@pytest.mark.parametrize("level", LEVELS)
def test_estimate_within_ten_percent_on_patches_of_a_photograph(level):
    skimage_data = pytest.importorskip("skimage.data")
    from skimage.color import rgb2gray

    photo = noisy(rgb2gray(skimage_data.chelsea()), level)
    patches = extract_patches_2d(photo, (8, 8), max_patches=20000, random_state=0)
    estimate = estimate_noise_level(patches.reshape(len(patches), -1))
    assert estimate == pytest.approx(level, rel=0.1)


@pytest.mark.parametrize("level", LEVELS)
def test_estimate_within_ten_percent_on_a_table_about_as_wide_as_long(level):
    # 300 rows of 290 columns mixing 8 latent variables: the noise's
    # eigenvalues pile up near zero, and the estimate from the whole table
    # was 6% of the truth; from every other column it is within 3%.
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 8)) @ rng.standard_normal((8, 290)) * 0.2
    assert estimate_noise_level(noisy(X, level)) == pytest.approx(level, rel=0.1)


def test_tables_about_as_wide_as_long_are_read_with_half_their_smaller_dimension():
    for shape, read in [
        ((300, 290), (300, 145)),
        ((290, 300), (145, 300)),
        ((1000, 600), (1000, 300)),
        ((20000, 784), (20000, 784)),
        # Halving would leave too little to estimate from.
        ((3, 2), (3, 2)),
    ]:
        assert square_free(np.zeros(shape)).shape == read


def test_estimate_is_an_upper_bound_where_the_signal_fills_every_direction():
    # Four independent columns: no direction is left to the noise alone, so
    # the noise cannot be told from the signal; the estimate says more noise.
    X = np.random.default_rng(0).standard_normal((2000, 4))
    assert estimate_noise_level(noisy(X, 0.1)) > 0.3


def test_estimate_never_exceeds_the_bound_of_the_smallest_eigenvalue():
    # Six columns with signal in every direction (variances 1.3 down to 0.3) and
    # noise 0.3: the median test takes the whole spectrum for noise (an estimate
    # near 1); noise alone would put an eigenvalue at the lower edge of its
    # Marchenko-Pastur law, so the smallest one (0.3 + 0.09) bounds it.
    rng = np.random.default_rng(0)
    signal = rng.standard_normal((2000, 6)) * np.sqrt([1.3, 1.1, 1.0, 0.9, 0.8, 0.3])
    X = noisy(signal, 0.3)
    smallest = np.linalg.eigvalsh(np.cov(X, rowvar=False))[0]
    bound = np.sqrt(smallest) / (1 - np.sqrt(6 / 1999))
    estimate = estimate_noise_level(X)
    assert estimate == pytest.approx(bound, rel=1e-6)
    assert 0.3 < estimate < 0.7


def test_directions_without_variance_do_not_bound_the_estimate():
    # A constant column or an exact sum of columns holds no noise: the estimate
    # of the noisy columns stands.
    rng = np.random.default_rng(0)
    X = noisy(rng.standard_normal((2000, 6)) * np.sqrt([1.3, 1.1, 1.0, 0.9, 0.8, 0.3]), 0.3)
    estimate = estimate_noise_level(X)
    with_constant = np.column_stack([X, np.full(len(X), 2.0)])
    with_sum = np.column_stack([X, X[:, 0] + X[:, 1]])
    assert estimate_noise_level(with_constant) == pytest.approx(estimate, rel=0.02)
    assert estimate_noise_level(with_sum) == pytest.approx(estimate, rel=0.02)


def test_estimate_of_clean_rank_deficient_rows_is_near_zero_and_scales_with_the_data():
    X = low_rank_table()
    assert estimate_noise_level(X) < 1e-6
    noisy_rows = noisy(X, 0.2)
    assert_allclose(estimate_noise_level(10 * noisy_rows), 10 * estimate_noise_level(noisy_rows))


def test_estimate_of_wide_rows_uses_the_smaller_gram_matrix():
    # More columns than rows: 150 rows of 400 columns, rank 5.
    X = low_rank_table(n_rows=150, n_columns=400)
    assert estimate_noise_level(noisy(X, 0.3)) == pytest.approx(0.3, rel=0.1)


def test_estimate_takes_sparse_input_and_samples_evenly():
    X = noisy(low_rank_table(), 0.2)
    assert estimate_noise_level(sparse.csr_matrix(X)) == pytest.approx(estimate_noise_level(X))
    assert estimate_noise_level(X, max_rows=1000) == pytest.approx(0.2, rel=0.1)


def test_estimate_of_too_little_data_is_zero_and_bad_parameters_raise():
    assert estimate_noise_level(np.ones((2, 5))) == 0.0
    assert estimate_noise_level(np.ones((10, 1))) == 0.0
    with pytest.raises(InvalidParameterError, match="max_rows"):
        estimate_noise_level(np.ones((10, 3)), max_rows=2)
    with pytest.raises(ValueError, match="NaN"):
        estimate_noise_level(np.full((10, 3), np.nan))


def test_marchenko_pastur_median_matches_simulated_noise():
    rng = np.random.default_rng(0)
    noise = rng.standard_normal((4000, 1000))
    eigenvalues = np.linalg.eigvalsh(noise.T @ noise / 4000)
    assert marchenko_pastur_median(1000 / 4000) == pytest.approx(np.median(eigenvalues), rel=0.01)
    assert marchenko_pastur_median(0.0) == 1.0


def test_components_above_noise_is_the_rank_of_the_signal():
    X = noisy(low_rank_table(), 0.1)
    assert components_above_noise(X, 0.1, noisy=True) == 5
    # Clean rows of rank 5 have five directions of any variance above a small noise's.
    assert components_above_noise(low_rank_table(), 0.01, noisy=False) == 5


def test_prediction_threshold_runs_from_mallows_cp_above_the_noise_edge():
    # Many more rows than columns: keep a direction whose signal variance
    # exceeds the noise's (eigenvalue 2 sigma**2); as many rows as columns: 4.5.
    assert prediction_threshold(0.0) == 2.0
    assert prediction_threshold(1.0) == pytest.approx(4.5)
    ratios = np.r_[np.linspace(0.0, 1.0, 11), 2.0, 10.0, 100.0]
    thresholds = np.array([prediction_threshold(ratio) for ratio in ratios])
    assert np.all(np.diff(thresholds) > 0)
    # Always above the largest eigenvalue pure noise reaches (Marchenko-Pastur).
    assert np.all(thresholds > (1 + np.sqrt(ratios)) ** 2)
    # Where it pays: a spike of that signal variance keeps as much signal along
    # its sample eigenvector as the projection adds noise.
    for ratio in (0.1, 1.0, 5.0):
        signal = (1 + np.sqrt(1 + 8 * ratio)) / 2
        squared_cosine = (1 - ratio / signal**2) / (1 + ratio / signal)
        assert signal * squared_cosine == pytest.approx(1.0)
        assert prediction_threshold(ratio) == pytest.approx((1 + signal) * (1 + ratio / signal))


def test_prediction_weights_run_from_zero_at_the_noise_edge_to_one_half_where_projection_pays():
    for ratio in (0.0, 0.01, 0.5, 1.0, 3.0):
        edge, pays = detection_threshold(ratio), prediction_threshold(ratio)
        assert edge == pytest.approx((1 + np.sqrt(ratio)) ** 2)
        weights = prediction_weights([0.5 * edge, edge, pays, 10 * pays, 1e6], ratio)
        assert_allclose(weights[:3], [0.0, 0.0, 0.5], atol=1e-9)
        assert 0.5 < weights[3] < weights[4] < 1
        assert weights[4] == pytest.approx(1, abs=1e-5)
    # Many rows: the Wiener weight of a direction, (eigenvalue - 1) / eigenvalue.
    assert_allclose(prediction_weights([1.5, 2.0, 5.0], 0.0), [1 / 3, 1 / 2, 4 / 5])


def test_the_weights_are_the_best_linear_denoiser_of_new_rows():
    # 4000 rows of 50 columns, one direction of signal variance 1.5 noise
    # variances: weighting the new rows' scores along the sample eigenvector
    # by the predicted weight beats both keeping and dropping them.
    rng = np.random.default_rng(0)
    direction = rng.standard_normal(50)
    direction /= np.linalg.norm(direction)

    def rows(n):
        clean = np.sqrt(1.5) * rng.standard_normal((n, 1)) * direction
        return clean, clean + rng.standard_normal((n, 50))

    _, train = rows(4000)
    clean, test = rows(20000)
    eigenvalues, vectors = np.linalg.eigh(np.cov(train, rowvar=False))
    top = vectors[:, -1]
    weight = prediction_weights(eigenvalues[-1:], 50 / 3999)[0]
    scores = (test - train.mean(axis=0)) @ top
    errors = {
        w: np.mean((train.mean(axis=0) + w * np.outer(scores, top) - clean) ** 2)
        for w in (0.0, weight, 1.0)
    }
    assert 0.5 < weight < 0.7
    assert errors[weight] < min(errors[0.0], errors[1.0])


def test_components_above_noise_of_few_rows_counts_no_direction_of_noise_alone():
    # 150 rows of 100 columns mixing 3 latent variables: noise alone spreads
    # sample eigenvalues up to (1 + sqrt(100 / 149))**2 = 3.3 sigma**2, so
    # the threshold of many rows, 2 sigma**2, also kept a dozen directions of noise.
    X = noisy(low_rank_table(n_rows=150, n_columns=100, rank=3), 0.1)
    assert components_above_noise(X, 0.1) == 3
    assert np.sum(covariance_spectrum(X)[0] > 2 * 0.1**2) > 10


def test_recorrupted_pairs_carry_independent_noise_of_the_stated_variances():
    clean = torch.zeros(200_000, 2)
    generator = torch.Generator().manual_seed(0)
    rows = clean + 0.3 * torch.randn(clean.shape, generator=generator)
    source, target = Recorruption(0.3, scale=0.5)(rows, generator)
    source_noise, target_noise = (source - clean).ravel(), (target - clean).ravel()
    assert source_noise.var().item() == pytest.approx(0.09 * (1 + 0.25), rel=0.02)
    assert target_noise.var().item() == pytest.approx(0.09 * (1 + 4), rel=0.02)
    correlation = np.corrcoef(source_noise.numpy(), target_noise.numpy())[0, 1]
    assert abs(correlation) < 0.01


class _Identity:
    def predict(self, X):
        return X


@pytest.mark.parametrize("shape", [(20, 17), (20, 17, 3)])
def test_denoise_image_averages_the_patches_back_into_the_image(shape):
    image = np.random.default_rng(0).random(shape)
    assert_allclose(denoise_image(_Identity(), image, (5, 4)), image)


def test_denoise_image_with_a_patch_denoiser_beats_the_noise():
    rows, columns = np.meshgrid(np.arange(48), np.arange(48), indexing="ij")
    clean = 0.5 + 0.25 * np.sin(rows / 5) * np.cos(columns / 7)
    noisy_image = noisy(clean, 0.1)
    patches = extract_patches_2d(noisy_image, (6, 6)).reshape(-1, 36)
    denoiser = DenoisingAutoencoder(max_iter=20, learning_rate="cosine", random_state=0)
    denoiser.fit(patches)
    denoised = denoise_image(denoiser, noisy_image, (6, 6))
    assert denoised.shape == clean.shape
    assert np.mean((denoised - clean) ** 2) < 0.2 * np.mean((noisy_image - clean) ** 2)


@pytest.mark.parametrize(
    ("image", "patch_size", "message"),
    [
        (np.zeros(10), (2, 2), "image must have shape"),
        (np.zeros((10, 10)), (11, 2), "larger than the image"),
        (np.zeros((10, 10)), (2, 0), "two positive ints"),
        (np.zeros((10, 10)), (2, 2, 2), "two positive ints"),
    ],
)
def test_denoise_image_refuses_bad_shapes(image, patch_size, message):
    with pytest.raises(ValueError, match=message):
        denoise_image(_Identity(), image, patch_size)


def test_marchenko_pastur_median_of_square_noise_is_finite_without_warnings():
    # Ratio 1 (as many directions as rows) puts the law's singular point on the
    # grid; it used to make the median NaN, with a RuntimeWarning.
    rng = np.random.default_rng(0)
    noise = rng.standard_normal((800, 800))
    eigenvalues = np.linalg.eigvalsh(noise.T @ noise / 800)
    marchenko_pastur_median.cache_clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        median = marchenko_pastur_median(1.0)
    assert median == pytest.approx(np.median(eigenvalues), rel=0.03)


@pytest.mark.parametrize(("n_rows", "sampled"), [(300, 300), (30_000, 30_000), (50_000, 25_000)])
def test_the_pca_start_reports_the_rows_its_spectrum_comes_from(n_rows, sampled):
    # The denoiser's weights read the columns per row of the sample PCA saw:
    # every other row of 50000 (a step of 2), all of 30000 (a step of 1).
    X = np.random.default_rng(0).standard_normal((n_rows, 3))
    assert principal_components(X, 2, seed=0)[-1] == sampled
