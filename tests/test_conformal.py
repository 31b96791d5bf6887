"""ConformalOutlierDetector: false-alarm rates that hold on fresh normal rows."""

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from sklearn.ensemble import IsolationForest
from sklearn.frozen import FrozenEstimator

from sklae import AutoencoderOutlierDetector, ConformalOutlierDetector

SEED = 0
N_FEATURES = 6


def normal_rows(n_rows, seed):
    """Correlated Gaussian rows: the same distribution for every seed."""
    mixing = np.random.default_rng(SEED).normal(size=(N_FEATURES, N_FEATURES))
    return np.random.default_rng(seed).normal(size=(n_rows, N_FEATURES)) @ mixing


@pytest.fixture(scope="module")
def calibrated():
    detector = AutoencoderOutlierDetector(n_estimators=2, random_state=SEED)
    return ConformalOutlierDetector(detector, calibration_size=500, random_state=SEED).fit(
        normal_rows(1500, seed=1)
    )


@pytest.mark.parametrize("rate", [0.01, 0.05, 0.1])
def test_the_false_alarm_rate_on_fresh_normal_rows_is_the_target(calibrated, rate):
    fresh = normal_rows(20000, seed=2)
    detector = calibrated
    flagged = np.mean(detector.p_values(fresh) <= rate)

    # Sampling error of the test rows and of the calibration draw (the rate a
    # calibration yields varies like a Beta variable around the target).
    n_calibration = len(detector.calibration_scores_)
    sigma = np.sqrt(rate * (1 - rate) * (1 / len(fresh) + 1 / (n_calibration + 2)))
    assert abs(flagged - rate) < 3 * sigma, (flagged, rate, sigma)


def test_predict_flags_exactly_the_rows_whose_p_value_is_at_most_the_rate(calibrated):
    rows = np.vstack([normal_rows(3000, seed=3), calibrated.estimator_.center_ + 0.0])
    assert_array_equal(
        calibrated.predict(rows) == -1, calibrated.p_values(rows) <= calibrated.false_alarm_rate
    )
    assert_array_equal(calibrated.predict(rows) == -1, calibrated.decision_function(rows) < 0)
    # The calibration rows' own scores sit on the boundary's right side too.
    scores = calibrated.calibration_scores_
    k = int(np.floor(calibrated.false_alarm_rate * (len(scores) + 1)))
    assert calibrated.offset_ == scores[k - 1]


def test_p_values_of_normal_rows_spread_evenly_and_outliers_get_small_ones(calibrated):
    p_values = calibrated.p_values(normal_rows(5000, seed=4))
    assert 0.45 < p_values.mean() < 0.55
    assert np.all((p_values > 0) & (p_values <= 1))
    outliers = np.random.default_rng(5).uniform(-40, 40, size=(50, N_FEATURES))
    assert np.mean(calibrated.p_values(outliers) <= 0.01) > 0.9


def test_any_detector_with_score_samples_is_calibrated():
    detector = ConformalOutlierDetector(
        IsolationForest(random_state=SEED), false_alarm_rate=0.1, random_state=SEED
    ).fit(normal_rows(2000, seed=6))
    flagged = np.mean(detector.predict(normal_rows(20000, seed=7)) == -1)
    sigma = np.sqrt(0.1 * 0.9 * (1 / 20000 + 1 / 502))
    assert abs(flagged - 0.1) < 3 * sigma


def test_a_frozen_detector_is_calibrated_on_every_row_without_refitting():
    fitted = AutoencoderOutlierDetector(n_estimators=2, random_state=SEED).fit(
        normal_rows(500, seed=8)
    )
    network = fitted.net_
    calibration = normal_rows(300, seed=9)
    detector = ConformalOutlierDetector(FrozenEstimator(fitted), false_alarm_rate=0.05).fit(
        calibration
    )

    assert len(detector.calibration_scores_) == 300
    assert detector.estimator_.net_ is network
    assert_array_equal(detector.score_samples(calibration), fitted.score_samples(calibration))


def test_too_few_calibration_rows_for_the_rate_is_an_error_with_the_remedy():
    with pytest.raises(ValueError, match=r"10 calibration rows can flag nothing.*at least 99 rows"):
        ConformalOutlierDetector(
            AutoencoderOutlierDetector(n_estimators=1, random_state=SEED),
            false_alarm_rate=0.01,
            calibration_size=10,
        ).fit(normal_rows(100, seed=10))


def test_one_row_is_an_error_that_points_to_a_frozen_detector():
    with pytest.raises(ValueError, match=r"at least 2 rows.*FrozenEstimator"):
        ConformalOutlierDetector().fit(normal_rows(1, seed=11))


def test_missing_values_and_feature_names_pass_to_the_detector():
    pd = pytest.importorskip("pandas")
    rows = normal_rows(400, seed=12)
    rows[::7, 2] = np.nan
    frame = pd.DataFrame(rows, columns=[f"f{i}" for i in range(N_FEATURES)])
    detector = ConformalOutlierDetector(
        AutoencoderOutlierDetector(n_estimators=1, random_state=SEED), random_state=SEED
    ).fit(frame)

    assert list(detector.feature_names_in_) == list(frame.columns)
    assert detector.n_features_in_ == N_FEATURES
    assert np.all(np.isfinite(detector.p_values(frame)))
