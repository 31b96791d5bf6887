"""ConformalOutlierDetector: a false-alarm rate you choose, from conformal p-values."""

import math
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, OutlierMixin, _fit_context, clone
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import train_test_split
from sklearn.utils._param_validation import HasMethods, Interval
from sklearn.utils.validation import _num_samples, check_is_fitted

from ._outlier import AutoencoderOutlierDetector
from ._persistence import VersionedPickleMixin
from ._validation import FLOAT_DTYPES, check_array


class ConformalOutlierDetector(VersionedPickleMixin, OutlierMixin, BaseEstimator):
    """Flag outliers at a false-alarm rate you choose, with conformal p-values.

    A wrapper around any outlier detector with ``score_samples`` (higher for
    more normal rows): :class:`AutoencoderOutlierDetector` by default,
    :class:`~sklearn.ensemble.IsolationForest` or a
    :class:`~sklearn.neighbors.LocalOutlierFactor` with ``novelty=True`` as
    well. :meth:`fit` holds ``calibration_size`` of its rows out, fits the
    detector on the others and scores the held-out rows. A new row's p-value
    is then the share of those calibration rows scoring at or below it (split
    conformal prediction; Vovk et al. 2005, Bates et al. 2023)::

        p(x) = (1 + #{calibration scores <= score(x)}) / (n_calibration + 1)

    and :meth:`predict` flags the rows whose p-value is at most
    ``false_alarm_rate``. When the rows given to :meth:`fit` are normal and a
    new normal row is drawn like them, its p-value is uniform on the grid
    ``1/(n+1), ..., 1``: the share of normal rows flagged is at most
    ``false_alarm_rate`` on average over calibrations, and within
    ``1 / (n_calibration + 1)`` of it. No assumption on the data's
    distribution or on the detector is needed; a better detector flags more
    of the true outliers at the same false-alarm rate.

    Fit it on rows known to be normal (for example data from a period without
    incidents). Outliers among them make it conservative: the false-alarm rate
    on normal rows ends below the target. To calibrate a detector fitted
    beforehand, wrap it in :class:`~sklearn.frozen.FrozenEstimator`: every row
    given to :meth:`fit` then calibrates.

    Parameters
    ----------
    estimator : outlier detector or None, default=None
        The detector whose scores are calibrated; cloned (unless frozen).
        ``None`` means ``AutoencoderOutlierDetector(random_state=random_state)``.

    false_alarm_rate : float in (0, 1), default=0.05
        Share of normal rows :meth:`predict` may flag as outliers.

    calibration_size : float in (0, 1) or int, default=0.25
        Rows held out of the detector's training to calibrate it: a share of
        the rows, or a number of rows. Ignored for a frozen detector. The
        smallest false-alarm rate that can flag anything is
        ``1 / (n_calibration + 1)``; :meth:`fit` raises an error below it.

    random_state : int, RandomState instance or None, default=None
        Seeds the choice of calibration rows (and the default detector).

    Attributes
    ----------
    estimator_ : outlier detector
        The fitted detector.

    calibration_scores_ : ndarray of shape (n_calibration,)
        The detector's ``score_samples`` of the calibration rows, sorted.

    offset_ : float
        Threshold on :meth:`score_samples`: ``decision_function`` is
        ``score_samples - offset_``, negative exactly where the p-value is at
        most ``false_alarm_rate``.

    n_features_in_ : int
        Number of features seen during :term:`fit`.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :term:`fit`. Defined only when `X`
        has feature names that are all strings.

    See Also
    --------
    AutoencoderOutlierDetector : The default detector.

    Notes
    -----
    ``decision_function`` and ``score_samples`` are higher for more normal
    rows, as in scikit-learn's detectors. To evaluate against labels where
    outliers are 1, rank by outlyingness:
    ``roc_auc_score(y, -detector.decision_function(X))``; with ``y`` marking
    outliers as 1, scikit-learn's ``scoring="roc_auc"`` reads the higher
    scores as the positive class and reports ``1 - AUC``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklae import AutoencoderOutlierDetector, ConformalOutlierDetector
    >>> rng = np.random.RandomState(0)
    >>> normal = rng.normal(size=(400, 4))
    >>> detector = ConformalOutlierDetector(
    ...     AutoencoderOutlierDetector(n_estimators=2, random_state=0),
    ...     false_alarm_rate=0.05,
    ...     random_state=0,
    ... ).fit(normal)
    >>> new = np.vstack([rng.normal(size=(2, 4)), [[8.0, -8.0, 8.0, -8.0]]])
    >>> detector.predict(new)
    array([ 1,  1, -1])
    >>> float(detector.p_values(new)[-1])
    0.0099...
    """

    _parameter_constraints: dict = {
        "estimator": [HasMethods(["fit", "score_samples"]), None],
        "false_alarm_rate": [Interval(Real, 0, 1, closed="neither")],
        "calibration_size": [
            Interval(Real, 0, 1, closed="neither"),
            Interval(Integral, 1, None, closed="left"),
        ],
        "random_state": ["random_state"],
    }

    def __init__(
        self, estimator=None, *, false_alarm_rate=0.05, calibration_size=0.25, random_state=None
    ):
        self.estimator = estimator
        self.false_alarm_rate = false_alarm_rate
        self.calibration_size = calibration_size
        self.random_state = random_state

    @_fit_context(
        # The detector validates its own parameters when it is fitted.
        prefer_skip_nested_validation=False
    )
    def fit(self, X, y=None):
        """Fit the detector on part of ``X`` and calibrate it on the rest.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Rows known to be normal (or mostly so). All of them calibrate a
            frozen detector.
        y : None
            Ignored; present for API consistency.

        Returns
        -------
        self : object
            The fitted detector.
        """
        # Bad input fails here with the detector's own explanations, not inside
        # the split; X itself goes on as it is (a DataFrame keeps its names).
        check_array(
            X,
            input_name="X",
            accept_sparse=("csr", "csc"),
            dtype=FLOAT_DTYPES,
            ensure_all_finite="allow-nan" if self.__sklearn_tags__().input_tags.allow_nan else True,
        )
        if isinstance(self.estimator, FrozenEstimator):
            estimator, calibration = self.estimator, X
        elif _num_samples(X) < 2:
            raise ValueError(
                f"ConformalOutlierDetector fits its detector on some rows and calibrates "
                f"it on others, which needs at least 2 rows; got n_samples = {_num_samples(X)}. To "
                "calibrate a detector fitted beforehand, wrap it in "
                "sklearn.frozen.FrozenEstimator: every row then calibrates."
            )
        else:
            if self.estimator is None:
                estimator = AutoencoderOutlierDetector(random_state=self.random_state)
            else:
                estimator = clone(self.estimator)
            training, calibration = train_test_split(
                X, test_size=self.calibration_size, random_state=self.random_state
            )
            estimator.fit(training)
        scores = np.sort(np.asarray(estimator.score_samples(calibration), dtype=np.float64))
        # A row is flagged when 1 + #{scores <= its score} <= rate * (n + 1),
        # that is, when it scores below the k-th smallest calibration score.
        k = math.floor(self.false_alarm_rate * (len(scores) + 1))
        if k < 1:
            raise ValueError(
                f"{len(scores)} calibration rows can flag nothing at false_alarm_rate="
                f"{self.false_alarm_rate}: their p-values are at least 1 / {len(scores) + 1}. "
                f"Calibrate on at least {math.ceil(1 / self.false_alarm_rate) - 1} rows "
                "(more rows or a larger calibration_size), or raise false_alarm_rate."
            )
        offset = float(scores[k - 1])
        self.estimator_ = estimator
        self.calibration_scores_ = scores
        self.offset_ = offset
        return self

    @property
    def n_features_in_(self):
        return self.estimator_.n_features_in_

    @property
    def feature_names_in_(self):
        return self.estimator_.feature_names_in_

    def score_samples(self, X):
        """The detector's scores: higher for more normal rows.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Rows to score.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            ``estimator_.score_samples(X)``.
        """
        check_is_fitted(self)
        return self.estimator_.score_samples(X)

    def p_values(self, X):
        """Conformal p-values: how plausible each row is as a normal one.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Rows to test.

        Returns
        -------
        p_values : ndarray of shape (n_samples,)
            ``(1 + #{calibration scores <= score}) / (n_calibration + 1)``,
            in ``(0, 1]``. For normal rows drawn like the calibration rows,
            ``P(p <= a) <= a`` for every ``a``; small values mark outliers.
        """
        scores = self.score_samples(X)
        below = np.searchsorted(self.calibration_scores_, scores, side="right")
        return (1.0 + below) / (len(self.calibration_scores_) + 1.0)

    def decision_function(self, X):
        """``score_samples(X) - offset_``: negative for outliers.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Rows to score.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            Negative exactly where the p-value is at most ``false_alarm_rate``.
        """
        return self.score_samples(X) - self.offset_

    def predict(self, X):
        """Label each row: -1 where its p-value is at most ``false_alarm_rate``, else +1.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Rows to label.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            +1 for inliers, -1 for outliers.
        """
        return np.where(self.decision_function(X) < 0, -1, 1)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        inner = (
            AutoencoderOutlierDetector() if self.estimator is None else self.estimator
        ).__sklearn_tags__()
        tags.input_tags.allow_nan = inner.input_tags.allow_nan
        tags.input_tags.sparse = inner.input_tags.sparse
        return tags
