"""Exceptions and warnings raised by sklae."""

from sklearn.exceptions import ConvergenceWarning

__all__ = ["DivergenceWarning", "InconsistentVersionWarning", "TrainingDivergedError"]


class TrainingDivergedError(ValueError, FloatingPointError):
    """Raised when training diverges.

    That is, when the training loss stops being a finite number, or grows by
    orders of magnitude over where it started. It subclasses
    :class:`ValueError` (what scikit-learn raises for bad hyper-parameters and
    data) and :class:`FloatingPointError` (what the failure is), so either can
    be caught. The message names the epoch and the remedies.

    Examples
    --------
    >>> from sklae.exceptions import TrainingDivergedError
    >>> issubclass(TrainingDivergedError, ValueError)
    True
    """


class DivergenceWarning(ConvergenceWarning):
    """Training ended with a loss far worse than predicting the mean of every column.

    The fit kept a model, but one that reconstructs worse than a constant: the
    optimisation diverged without the loss becoming infinite. It subclasses
    :class:`~sklearn.exceptions.ConvergenceWarning`, so filters on that catch it.

    Examples
    --------
    >>> from sklearn.exceptions import ConvergenceWarning
    >>> from sklae.exceptions import DivergenceWarning
    >>> issubclass(DivergenceWarning, ConvergenceWarning)
    True
    """


class InconsistentVersionWarning(UserWarning):
    """A fitted sklae estimator was unpickled by a different sklae version.

    Networks, training engine and fitted attributes may differ between
    versions, so the loaded model can fail or give other results. Refit it, or
    load it with the version that saved it. Like scikit-learn's warning of
    the same name, it can be turned into an error with :mod:`warnings` filters.

    Parameters
    ----------
    estimator_name : str
        Class name of the unpickled estimator.
    original_version : str
        The sklae version that pickled it.
    current_version : str
        The sklae version that unpickled it.
    library : str, default="sklae"
        The library whose versions differ: sklae, or torch or skorch, whose
        versions a pickle records too (the networks and the training net are
        theirs).

    Examples
    --------
    >>> from sklae import InconsistentVersionWarning
    >>> warning = InconsistentVersionWarning(
    ...     estimator_name="AutoencoderTransformer",
    ...     original_version="0.1.0",
    ...     current_version="0.2.0",
    ... )
    >>> issubclass(InconsistentVersionWarning, UserWarning)
    True
    >>> print(str(warning)[:79])
    Trying to unpickle estimator AutoencoderTransformer from sklae version 0.1.0 wh
    """

    def __init__(self, *, estimator_name, original_version, current_version, library="sklae"):
        self.estimator_name = estimator_name
        self.original_version = original_version
        self.current_version = current_version
        self.library = library

    def __str__(self):
        library = getattr(self, "library", "sklae")
        return (
            f"Trying to unpickle estimator {self.estimator_name} from {library} version "
            f"{self.original_version} when using version {self.current_version}. This "
            "might lead to breaking code or invalid results: refit the model with this "
            f"version, or load it with {library} {self.original_version}."
        )
