"""Pickling that remembers which sklae version made a fitted model.

scikit-learn stores its own version in every pickled estimator and warns with
:class:`~sklearn.exceptions.InconsistentVersionWarning` when a model is loaded
by another version; it does so only for its own classes. :class:`VersionedPickleMixin`
does the same for sklae's estimators, with sklae's version.
"""

import warnings

from . import _version
from .exceptions import InconsistentVersionWarning

VERSION_KEY = "_sklae_version"
# What a pickle made before sklae stored its version is reported as.
UNKNOWN_VERSION = "unknown (before 0.1.0)"


def current_version():
    return _version.__version__


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
