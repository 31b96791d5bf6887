"""Pickling that remembers which sklae version made a fitted model.

scikit-learn stores its own version in every pickled estimator and warns with
:class:`~sklearn.exceptions.InconsistentVersionWarning` when a model is loaded
by another version; it does so only for its own classes. :class:`VersionedPickleMixin`
does the same for sklae's estimators, with sklae's version.
"""

import warnings

VERSION_KEY = "_sklae_version"
# What a pickle made before sklae stored its version is reported as.
UNKNOWN_VERSION = "unknown (before 0.1.0)"


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

    def __init__(self, *, estimator_name, original_version, current_version):
        self.estimator_name = estimator_name
        self.original_version = original_version
        self.current_version = current_version

    def __str__(self):
        return (
            f"Trying to unpickle estimator {self.estimator_name} from sklae version "
            f"{self.original_version} when using version {self.current_version}. This "
            "might lead to breaking code or invalid results: refit the model with this "
            f"version, or load it with sklae {self.original_version}."
        )


def current_version():
    # Imported when called: the package's __init__ imports the estimators first.
    from . import __version__

    return __version__


class VersionedPickleMixin:
    """Store sklae's version in the pickle; warn when another version loads it.

    Put it before :class:`~sklearn.base.BaseEstimator` among the bases, so that
    scikit-learn's own ``__getstate__``/``__setstate__`` still run.
    """

    def __getstate__(self):
        state = super().__getstate__()
        if state is self.__dict__:
            state = dict(state)
        state[VERSION_KEY] = current_version()
        return state

    def __setstate__(self, state):
        state = dict(state)
        original = state.pop(VERSION_KEY, UNKNOWN_VERSION)
        if original != current_version():
            warnings.warn(
                InconsistentVersionWarning(
                    estimator_name=type(self).__name__,
                    original_version=original,
                    current_version=current_version(),
                ),
                stacklevel=2,
            )
        super().__setstate__(state)
