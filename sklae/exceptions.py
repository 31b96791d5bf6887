"""Exceptions and warnings raised by sklae."""

__all__ = ["TrainingDivergedError"]


class TrainingDivergedError(ValueError, FloatingPointError):
    """Raised when the training loss stops being a finite number.

    It subclasses :class:`ValueError` (what scikit-learn raises for bad
    hyper-parameters and data) and :class:`FloatingPointError` (what the failure
    is), so either can be caught. The message names the epoch and the remedies.

    Examples
    --------
    >>> from sklae.exceptions import TrainingDivergedError
    >>> issubclass(TrainingDivergedError, ValueError)
    True
    """
