"""Tests of AutoencoderOutlierDetector."""

import pickle

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from sklearn import clone, config_context
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV, PredefinedSplit

from sklae import AutoencoderOutlierDetector, AutoencoderTransformer, _outlier
from sklae._outlier import FENCE_ROWS, neighbour_search

N_INLIERS = 300
N_OUTLIERS = 15
FAST = {"n_estimators": 2, "random_state": 0}


def make_outlier_data(seed=0, n_features=6):
    """Inliers near a 2-D plane in ``n_features`` dimensions, outliers off it."""
    rng = np.random.RandomState(seed)
    latent = rng.normal(size=(N_INLIERS, 2))
    mixing = rng.normal(size=(2, n_features))
    inliers = latent @ mixing + 0.1 * rng.normal(size=(N_INLIERS, n_features))
    outliers = rng.uniform(-6, 6, size=(N_OUTLIERS, n_features))
    X = np.vstack([inliers, outliers])
    is_outlier = np.r_[np.zeros(N_INLIERS), np.ones(N_OUTLIERS)]
    return X, is_outlier


@pytest.fixture(scope="module")
def data():
    return make_outlier_data()


@pytest.fixture(scope="module")
def fitted(data):
    X, _ = data
    return AutoencoderOutlierDetector(contamination=0.05, **FAST).fit(X)


def test_finds_outliers_in_its_own_training_data(data, fitted):
    X, is_outlier = data
    assert roc_auc_score(is_outlier, -fitted.score_samples(X)) > 0.97
    labels = fitted.predict(X)
    assert set(np.unique(labels)) == {-1, 1}
    # contamination=0.05 flags that share of the training rows, and they are the outliers.
    assert np.mean(labels == -1) == pytest.approx(0.05, abs=0.01)
    assert np.mean(labels[is_outlier == 1] == -1) > 0.8


def test_isolation_forest_conventions(data, fitted):
    X, _ = data
    scores = fitted.score_samples(X)
    assert_allclose(fitted.decision_function(X), scores - fitted.offset_)
    assert_array_equal(fitted.predict(X), np.where(fitted.decision_function(X) < 0, -1, 1))
    assert_allclose(fitted.offset_, np.percentile(scores, 5))
    refit = AutoencoderOutlierDetector(contamination=0.05, **FAST)
    assert_array_equal(refit.fit_predict(X), fitted.predict(X))


@pytest.mark.parametrize("contamination", ["auto", 0.1])
def test_fit_predict_scores_the_rows_once_and_labels_them_as_predict(data, contamination):
    X, _ = data
    X = X.copy()
    X[::7, 1] = np.nan
    detector = AutoencoderOutlierDetector(contamination=contamination, **FAST)
    scored = []
    original = detector._member_outputs
    detector._member_outputs = lambda rows: scored.append(len(rows)) or original(rows)

    labels = detector.fit_predict(X)

    assert scored == [len(X)]
    del detector._member_outputs
    assert_array_equal(labels, detector.predict(X))
    assert (labels == -1).any()


def test_auto_contamination_is_tukeys_far_out_fence(data):
    X, is_outlier = data
    detector = AutoencoderOutlierDetector(**FAST).fit(X)
    q1, q3 = np.percentile(detector.score_samples(X), [25, 75])
    assert detector.offset_ == pytest.approx(q1 - 3 * (q3 - q1))
    labels = detector.predict(X)
    assert np.mean(labels[is_outlier == 1] == -1) > 0.8
    assert np.mean(labels[is_outlier == 0] == -1) < 0.1


def test_auto_fence_on_many_rows_comes_from_a_sample_of_them():
    """Past FENCE_ROWS rows the fit scores a random FENCE_ROWS of them, not all.

    The fence then lies near the one of every row's scores, and fit_predict
    still labels every row as predict does.
    """
    rng = np.random.RandomState(0)
    n_rows = 3 * FENCE_ROWS
    X = np.vstack([rng.normal(size=(n_rows - 60, 5)), rng.uniform(-9, 9, size=(60, 5))])
    detector = AutoencoderOutlierDetector(**FAST)
    scored = []
    original = detector._member_outputs
    detector._member_outputs = lambda rows: scored.append(len(rows)) or original(rows)

    detector.fit(X)

    # The members' own subsamples and the fence's rows, each once.
    assert len(scored) == 1
    assert FENCE_ROWS <= scored[0] <= FENCE_ROWS + detector.n_estimators * detector.max_samples_
    del detector._member_outputs
    scores = detector.score_samples(X)
    q1, q3 = np.percentile(scores, [25, 75])
    assert abs(detector.offset_ - (q1 - 3 * (q3 - q1))) < 0.3 * (q3 - q1)
    assert detector.offset_ != pytest.approx(q1 - 3 * (q3 - q1), rel=1e-9)
    # fit_predict scores every row once and places the same fence from the same rows.
    predicting = AutoencoderOutlierDetector(**FAST)
    scored.clear()
    original = predicting._member_outputs
    predicting._member_outputs = lambda rows: scored.append(len(rows)) or original(rows)
    labels = predicting.fit_predict(X)
    assert scored == [n_rows]
    assert predicting.offset_ == pytest.approx(detector.offset_, rel=1e-6)
    assert_array_equal(labels, detector.predict(X))
    assert np.mean(labels[-60:] == -1) > 0.8


def test_score_is_sum_of_components(data, fitted):
    X, _ = data
    components = fitted.score_components(X[:20])
    assert components.shape == (20, 4)
    assert_allclose(-components.sum(axis=1), fitted.score_samples(X[:20]))


def test_raw_feature_units_do_not_matter(data):
    X, _ = data
    units = np.array([1e-3, 1.0, 1e4, 1.0, 250.0, 1.0])
    scaled = AutoencoderOutlierDetector(**FAST).fit(X)
    raw = AutoencoderOutlierDetector(**FAST).fit(X * units)
    assert_allclose(raw.score_samples(X * units), scaled.score_samples(X), rtol=1e-3, atol=1e-3)


def test_scale_can_be_switched_off(data):
    X, is_outlier = data
    detector = AutoencoderOutlierDetector(scale=False, clip=None, **FAST).fit(X)
    assert_array_equal(detector.center_, 0.0)
    assert_array_equal(detector.scale_, 1.0)
    assert roc_auc_score(is_outlier, -detector.score_samples(X)) > 0.95


def test_novelty_detection_on_new_rows(data):
    X, is_outlier = data
    detector = AutoencoderOutlierDetector(contamination=0.01, **FAST).fit(X[is_outlier == 0])
    far = np.random.RandomState(2).uniform(-6, 6, size=(20, X.shape[1]))
    assert np.mean(detector.predict(far) == -1) >= 0.9
    assert np.mean(detector.predict(X[:N_INLIERS]) == 1) >= 0.95


def test_feature_errors_point_at_the_odd_feature(data, fitted):
    X, _ = data
    row = X[:1].copy()
    row[0, 2] += 30 * fitted.scale_[2]
    errors = fitted.feature_errors(row)
    assert errors.shape == (1, X.shape[1])
    assert np.argmax(errors[0]) == 2
    assert np.all(errors >= 0)


def test_same_random_state_same_scores(data):
    X, _ = data
    first = AutoencoderOutlierDetector(**FAST).fit(X).score_samples(X)
    second = AutoencoderOutlierDetector(**FAST).fit(X).score_samples(X)
    assert_array_equal(first, second)
    other = AutoencoderOutlierDetector(n_estimators=2, random_state=1).fit(X).score_samples(X)
    assert not np.array_equal(first, other)


def test_pickle_round_trip(data, fitted):
    X, _ = data
    restored = pickle.loads(pickle.dumps(fitted))
    assert_array_equal(restored.score_samples(X), fitted.score_samples(X))


def test_members_use_subsamples_and_auto_sizes(data):
    X, _ = data
    detector = AutoencoderOutlierDetector(n_estimators=3, max_samples=256, random_state=0).fit(X)
    assert detector.max_samples_ == 256
    assert detector.net_.module_.n_members == 3
    assert all(len(rows) == 256 for rows in detector.estimators_samples_)
    assert detector.code_size_ == 3  # ceil(6 / 2)
    assert detector.hidden_layer_sizes_ == (12,)
    # "auto" epochs make about 150 steps: 256 rows in batches of 128 is 2 steps an epoch.
    assert_array_equal(detector.n_iter_, 75)


def test_auto_sizes_are_bounded_on_wide_data():
    # 300 features: the members stay 128 units wide (a row costs O(n_features)).
    X = np.random.RandomState(0).normal(size=(200, 300))
    detector = AutoencoderOutlierDetector(n_estimators=1, max_iter=1, random_state=0).fit(X)
    assert detector.hidden_layer_sizes_ == (128,)
    assert detector.code_size_ == 64
    narrow = AutoencoderOutlierDetector(n_estimators=1, max_iter=1, random_state=0)
    assert narrow.fit(X[:, :40]).hidden_layer_sizes_ == (40,)
    assert narrow.code_size_ == 20


def test_auto_sizes_are_bounded_by_the_directions_the_rows_span():
    # 60 centred rows span 59 directions: no layer is wider, and the code has
    # half of them, so a member cannot copy its rows through it.
    X = np.random.RandomState(0).normal(size=(60, 300))
    detector = AutoencoderOutlierDetector(n_estimators=1, max_iter=1, random_state=0).fit(X)
    assert (detector.hidden_layer_sizes_, detector.code_size_) == ((59,), 30)
    fewer = AutoencoderOutlierDetector(n_estimators=1, max_samples=21, max_iter=1, random_state=0)
    fewer.fit(X)
    assert (fewer.hidden_layer_sizes_, fewer.code_size_) == ((20,), 10)
    # Explicit sizes are the user's.
    fixed = AutoencoderOutlierDetector(
        n_estimators=1, code_size=40, hidden_layer_sizes=(100,), max_iter=1, random_state=0
    )
    assert (fixed.fit(X).hidden_layer_sizes_, fixed.code_size_) == ((100,), 40)


def test_finds_outliers_among_few_rows_of_many_features():
    # 60 rows of 300 features near a 5-dimensional curved manifold, the first
    # three from another one. With members as wide as the features (128 units,
    # a 64-unit code, all 60 rows in every subsample) they scored 0.918.
    rng = np.random.RandomState(2)

    def manifold(weights, n_rows):
        return np.tanh(rng.normal(size=(n_rows, 5)) @ weights / np.sqrt(5))

    X = manifold(rng.normal(size=(5, 300)), 60) + 0.1 * rng.normal(size=(60, 300))
    X[:3] = manifold(rng.normal(size=(5, 300)), 3) + 0.1 * rng.normal(size=(3, 300))
    y = np.r_[np.ones(3), np.zeros(57)]
    detector = AutoencoderOutlierDetector(random_state=0).fit(X)
    assert roc_auc_score(y, -detector.score_samples(X)) >= 0.98


def test_networks_score_rows_bounded_as_in_training(data, fitted):
    X, _ = data
    # Beyond the clip the networks see the clipped value: the codes do not move,
    # while the reconstruction error still grows with the value.
    row = X[:1].copy()
    far, farther = row.copy(), row.copy()
    far[0, 0] = fitted.center_[0] + 4 * fitted.clip * fitted.scale_[0]
    farther[0, 0] = fitted.center_[0] + 40 * fitted.clip * fitted.scale_[0]
    near, distant = fitted.score_components(np.vstack([far, farther]))
    assert_allclose(near[1:], distant[1:])
    assert distant[0] > near[0]
    # The reconstruction view is the Cauchy log-likelihood of the scaled residuals.
    X_scaled = (X[:5] - fitted.center_) / fitted.scale_
    codes, reconstructions = fitted._member_outputs(X_scaled)[0]
    raw = fitted._raw_views(codes, reconstructions, fitted._calibrations[0], X_scaled)
    assert_allclose(raw[:, 0], np.mean(np.log1p((X_scaled - reconstructions) ** 2), axis=1))


def test_row_neighbour_view_is_the_distance_to_the_nearest_training_rows(data, fitted):
    X, _ = data
    X_scaled = (X[:30] - fitted.center_) / fitted.scale_
    raw = fitted._row_view(np.clip(X_scaled, -3, 3))
    # The first member's training rows as the network saw them: scaled and clipped.
    train = (X[fitted.estimators_samples_[0]] - fitted.center_) / fitted.scale_
    train = np.clip(train, -fitted.clip, fitted.clip)
    gaps = np.linalg.norm(np.clip(X_scaled, -3, 3)[:, None] - train[None], axis=2)
    nearest = np.sort(gaps, axis=1)[:, : fitted.n_neighbors]
    assert_allclose(raw[:, 0], np.mean(nearest, axis=1) ** 2 / X.shape[1], rtol=1e-9)
    # Its robust z-score is the fourth component.
    location = fitted._row_calibration["view_location"]
    scale = fitted._row_calibration["view_scale"]
    assert_allclose(fitted.score_components(X[:30])[:, 3], (raw[:, 0] - location) / scale)


def test_row_neighbours_fill_a_missing_value_with_its_reconstruction(data, fitted):
    X, _ = data
    X_scaled = (X[:10] - fitted.center_) / fitted.scale_
    X_scaled[::2, 3] = np.nan
    codes, reconstructions = fitted._member_outputs(X_scaled)[0]
    compared = fitted._compared_rows(X_scaled, reconstructions)
    assert_allclose(compared[::2, 3], np.clip(reconstructions[::2, 3], -3, 3))
    assert_allclose(compared[1::2], np.clip(X_scaled[1::2], -3, 3))


@pytest.mark.parametrize(
    ("n_rows", "n_features", "with_reconstruction"), [(20, 19, True), (20, 20, False)]
)
def test_rows_fewer_than_their_features_are_scored_without_reconstruction(
    n_rows, n_features, with_reconstruction
):
    # 20 centred rows span 19 directions: fewer than 20 features.
    X = np.random.default_rng(0).normal(size=(n_rows, n_features))
    detector = AutoencoderOutlierDetector(**FAST).fit(X)
    assert ("reconstruction" in detector.scored_views_) is with_reconstruction
    components = detector.score_components(X)
    assert components.shape == (n_rows, 3 + with_reconstruction)
    assert_allclose(detector.score_samples(X), -components.sum(axis=1))
    with config_context(transform_output="pandas"):
        assert tuple(detector.score_components(X).columns) == detector.scored_views_


@pytest.mark.parametrize("seed", range(4))
def test_simple_rows_among_few_wide_ones_are_found_though_reconstructed_best(seed):
    # 40 noisy waves of 200 steps and two flat series off their level: the
    # flat rows are reconstructed better than every wave (the view alone ranks
    # them most normal), yet they are isolated and far along the code.
    rng = np.random.default_rng(seed)
    steps = np.linspace(0, 1, 200)
    frequencies = rng.uniform(2, 6, size=(40, 1))
    phases = rng.uniform(0, 6.3, size=(40, 1))
    waves = np.sin(2 * np.pi * frequencies * steps + phases) + 0.3 * rng.normal(size=(40, 200))
    X = np.vstack([waves, 0.8 + 0.1 * rng.normal(size=(2, 200))])
    is_outlier = np.r_[np.zeros(40), np.ones(2)]
    detector = AutoencoderOutlierDetector(random_state=0).fit(X)
    assert roc_auc_score(is_outlier, -detector.score_samples(X)) >= 0.9
    detector.scored_views_ = _outlier.SCORE_COMPONENTS
    assert roc_auc_score(is_outlier, detector.score_components(X)[:, 0]) < 0.1


def test_models_saved_without_row_neighbours_score_with_three_views(data):
    X, _ = data
    detector = AutoencoderOutlierDetector(**FAST).fit(X)
    four = detector.score_components(X[:20])
    # As an earlier version saved it: no row view.
    restored = pickle.loads(pickle.dumps(detector))
    del restored._row_calibration, restored.scored_views_
    three = restored.score_components(X[:20])
    assert_allclose(three, four[:, :3])
    assert_allclose(restored.score_samples(X[:20]), -three.sum(axis=1))
    assert_allclose(detector.score_samples(X[:20]), -four.sum(axis=1))


def test_one_wild_value_does_not_outrank_rows_off_the_manifold():
    # Inliers near a plane in 20 dimensions, 20 of them with one value 10 standard
    # deviations out (a chance stroke, a typo); 20 outliers off the plane in every
    # feature. Under squared errors the single values outranked the outliers
    # (ROC-AUC 0.05 between the two groups); the Cauchy view ranks the outliers
    # first and still puts the wild values above the clean inliers.
    rng = np.random.RandomState(0)
    latent, mixing = rng.normal(size=(400, 2)), rng.normal(size=(2, 20))
    X = latent @ mixing + 0.1 * rng.normal(size=(400, 20))
    wild = rng.choice(400, 20, replace=False)
    X[wild, rng.randint(20, size=20)] += 10 * X.std(axis=0).mean()
    outliers = rng.normal(size=(20, 2)) @ mixing + rng.normal(size=(20, 20))
    outlyingness = (
        -AutoencoderOutlierDetector(random_state=0)
        .fit(np.vstack([X, outliers]))
        .score_samples(np.vstack([X, outliers]))
    )
    clean = np.setdiff1d(np.arange(400), wild)
    off, one_value = outlyingness[400:], outlyingness[wild]
    two_groups = np.r_[np.zeros(20), np.ones(20)]
    assert roc_auc_score(two_groups, np.r_[one_value, off]) > 0.9
    labels = np.r_[np.zeros(len(clean)), np.ones(20)]
    assert roc_auc_score(labels, np.r_[outlyingness[clean], one_value]) > 0.95


def test_estimator_parameter_sets_the_members(data):
    X, is_outlier = data
    template = AutoencoderTransformer(code_size=2, hidden_layer_sizes=(16, 8), max_iter=20)
    detector = AutoencoderOutlierDetector(estimator=template, **FAST).fit(X)
    assert all(member.hidden_layer_sizes == (16, 8) for member in detector.estimators_)
    assert detector.estimators_[0].random_state != detector.estimators_[1].random_state
    assert template.random_state is None  # the template itself is not touched
    assert roc_auc_score(is_outlier, -detector.score_samples(X)) > 0.95


def test_grid_search_with_a_labelled_validation_scorer(data):
    X, is_outlier = data

    def outlier_auc(estimator, X, y):
        return roc_auc_score(y, -estimator.score_samples(X))

    split = PredefinedSplit(np.where(np.arange(len(X)) % 3 == 0, 0, -1))
    search = GridSearchCV(
        AutoencoderOutlierDetector(**FAST),
        {"n_neighbors": [5, 20]},
        scoring=outlier_auc,
        cv=split,
    )
    search.fit(X, is_outlier)
    assert search.best_score_ > 0.9


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"contamination": 0.6}, "contamination"),
        ({"contamination": 0.0}, "contamination"),
        ({"n_estimators": 0}, "n_estimators"),
        ({"clip": -1.0}, "clip"),
        ({"estimator": "mlp"}, "estimator"),
    ],
)
def test_invalid_parameters(data, params, match):
    X, _ = data
    with pytest.raises(ValueError, match=match):
        AutoencoderOutlierDetector(**params).fit(X)


def test_bad_input_is_a_clear_error_and_leaves_the_model_alone(data, fitted):
    X, _ = data
    detector = AutoencoderOutlierDetector(**FAST).fit(X)
    before = detector.score_samples(X)
    bad = X.copy()
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        detector.fit(bad)
    with pytest.raises(ValueError, match="infinity"):
        detector.score_samples(bad)
    with pytest.raises(ValueError, match="features"):
        detector.predict(X[:, :3])
    with pytest.raises(ValueError, match="0 sample"):
        detector.fit(X[:0])
    assert_array_equal(detector.score_samples(X), before)


def test_tiny_and_constant_data_work():
    X = np.ones((3, 4))
    detector = AutoencoderOutlierDetector(**FAST).fit(X)
    assert np.all(np.isfinite(detector.score_samples(X)))
    # Three rows span two directions: half of them.
    assert detector.code_size_ == 1


# ------------------------------------------------------------- real tables


def test_missing_values_are_scored_on_the_features_a_row_has(data):
    X, y = data
    holes = np.random.default_rng(0).random(X.shape) < 0.1
    X_holes = np.where(holes, np.nan, X)
    detector = AutoencoderOutlierDetector(**FAST).fit(X_holes)

    scores = detector.score_samples(X_holes)
    assert np.all(np.isfinite(scores))
    # A tenth of the values missing still ranks the outliers first (0.98 without holes).
    assert roc_auc_score(y, -scores) > 0.9
    errors = detector.feature_errors(X_holes)
    assert_array_equal(np.isnan(errors), holes)
    # The reconstruction view averages over the features a row has: a missing
    # value adds nothing, rather than an error against the median.
    components = detector.score_components(X_holes)
    full = detector.score_components(np.where(holes, 0.0, X_holes))
    assert not np.allclose(components[:, 0], full[:, 0])


def test_a_row_with_every_value_missing_gets_a_finite_score(fitted):
    assert np.all(np.isfinite(fitted.score_samples(np.full((2, fitted.n_features_in_), np.nan))))


def test_a_feature_missing_in_every_training_row_is_ignored(data):
    X, _ = data
    X_holes = X.copy()
    X_holes[:, 0] = np.nan
    detector = AutoencoderOutlierDetector(**FAST).fit(X_holes)
    assert detector.center_[0] == 0
    assert detector.scale_[0] == 1
    assert np.all(np.isfinite(detector.score_samples(X_holes)))


@pytest.mark.parametrize("value", [1e39, np.finfo(np.float64).max, -np.finfo(np.float64).max])
def test_extreme_values_are_outliers_not_errors(fitted, data, value):
    X, is_outlier = data
    rows = X[:3].copy()
    rows[:, 1] = value
    assert_array_equal(fitted.predict(rows), [-1, -1, -1])
    # Beyond every inlier, and among the planted outliers (far in every feature).
    decisions = fitted.decision_function(X)
    assert np.all(fitted.decision_function(rows) < decisions[is_outlier == 0].min())
    assert np.all(fitted.decision_function(rows) < np.median(decisions[is_outlier == 1]))


def test_members_train_together_yet_apart(data):
    X, _ = data
    detector = AutoencoderOutlierDetector(n_estimators=3, max_samples=100, random_state=0).fit(X)
    module = detector.net_.module_
    rows = torch.as_tensor(np.tile(X[:5], (1, 3)), dtype=torch.float32)
    changed = rows.clone()
    changed[:, 6:] = 100.0  # the second and third members' columns only
    with torch.no_grad():
        codes, changed_codes = module.encode(rows), module.encode(changed)
    # Member 0's code depends on its own columns alone ...
    assert torch.equal(codes[:, :3], changed_codes[:, :3])
    assert not torch.equal(codes[:, 3:], changed_codes[:, 3:])
    # ... and the members differ: each started from its own draw, on its own rows.
    weights = module.encoder[0].weight
    assert not torch.allclose(weights[0], weights[1])
    assert len({tuple(rows) for rows in detector.estimators_samples_}) == 3


def test_feature_errors_come_as_a_data_frame_through_a_pipeline(data):
    pd = pytest.importorskip("pandas")
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    X, _ = data
    frame = pd.DataFrame(X[:, :5], columns=[f"num{i}" for i in range(5)])
    frame["colour"] = np.where(X[:, 5] > 0, "red", "blue")

    def pipeline_with(encoder, output="default", **column_options):
        columns = ColumnTransformer(
            [
                ("scaled", StandardScaler(), list(frame.columns[:5])),
                ("onehot", encoder, ["colour"]),
            ],
            **column_options,
        )
        pipeline = make_pipeline(columns, AutoencoderOutlierDetector(**FAST))
        pipeline.set_output(transform=output)
        pipeline[-1].set_output(transform=output)
        return pipeline.fit(frame)

    # A sparse block out of the ColumnTransformer works inside the pipeline.
    assert pipeline_with(OneHotEncoder(), sparse_threshold=1.0).predict(frame).shape == (len(X),)

    # Pandas output needs dense columns, as for any transformer.
    pipeline = pipeline_with(OneHotEncoder(sparse_output=False), output="pandas")
    rows = pipeline[:-1].transform(frame.iloc[:4])
    errors = pipeline[-1].feature_errors(rows)
    assert isinstance(errors, pd.DataFrame)
    assert list(errors.columns) == list(pipeline[:-1].get_feature_names_out())
    assert "onehot__colour_red" in errors.columns
    assert list(errors.index) == list(rows.index)
    np.testing.assert_allclose(
        errors.to_numpy(), pipeline[-1].set_output(transform="default").feature_errors(rows)
    )


def test_score_components_come_as_a_data_frame_with_named_views(data, fitted):
    pd = pytest.importorskip("pandas")
    X, _ = data
    rows = pd.DataFrame(X[:6], columns=[f"f{i}" for i in range(X.shape[1])], index=range(10, 16))
    detector = clone(fitted).fit(pd.DataFrame(X, columns=rows.columns))
    plain = detector.score_components(rows)
    components = detector.set_output(transform="pandas").score_components(rows)
    assert list(components.columns) == [
        "reconstruction",
        "code_centre",
        "code_neighbours",
        "row_neighbours",
    ]
    assert list(components.index) == list(rows.index)
    np.testing.assert_allclose(components.to_numpy(), plain)
    # A model saved before the row view names its three columns.
    del detector._row_calibration, detector.scored_views_
    assert list(detector.score_components(rows).columns) == [
        "reconstruction",
        "code_centre",
        "code_neighbours",
    ]
    with config_context(transform_output="pandas"):
        assert isinstance(clone(fitted).fit(X).score_components(X[:3]), pd.DataFrame)


# ---------------------------------------------------------------------- neighbour search


def test_the_neighbour_search_is_a_tree_only_where_it_can_prune():
    # A k-d tree needs many more points than cells of its splits (n >> 2**d).
    assert neighbour_search(512, 5) == "kd_tree"
    assert neighbour_search(512, 6) == "brute"
    assert neighbour_search(64, 2) == "kd_tree"
    assert neighbour_search(63, 2) == "brute"


def test_scores_do_not_depend_on_the_neighbour_search(monkeypatch):
    # 14 features make codes of 7: an exhaustive search, as fast as a tree
    # gets only with far more than 512 points; the scores are the tree's.
    X = np.random.default_rng(0).standard_normal((300, 14))
    detector = AutoencoderOutlierDetector(**FAST).fit(X)
    scores = detector.score_samples(X)
    monkeypatch.setattr(_outlier, "neighbour_search", lambda n_points, n_dimensions: "kd_tree")
    tree = AutoencoderOutlierDetector(**FAST).fit(X)

    assert {c["neighbours"].algorithm for c in detector._calibrations} == {"brute"}
    assert {c["neighbours"].algorithm for c in tree._calibrations} == {"kd_tree"}
    assert_allclose(scores, tree.score_samples(X), rtol=1e-9, atol=1e-12)
    assert detector.offset_ == pytest.approx(tree.offset_, rel=1e-9)
