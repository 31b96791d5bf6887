"""Pickling that remembers which sklae, torch and skorch versions made a fitted model.

scikit-learn stores its own version in every pickled estimator and warns with
:class:`~sklearn.exceptions.InconsistentVersionWarning` when a model is loaded
by another version; it does so only for its own classes. :class:`VersionedPickleMixin`
does the same for sklae's estimators, with sklae's version, and with those of
torch and skorch, whose code rebuilds the trained network a saved model holds
as plain data (see ``BaseAutoencoder.__getstate__``). It applies to every
format that saves through ``__getstate__``: pickle, joblib and skops.
"""

import warnings

import skorch
import torch

from . import _version
from .exceptions import InconsistentVersionWarning

VERSION_KEY = "_sklae_version"
LIBRARY_VERSIONS_KEY = "_sklae_library_versions"
# What a pickle made before sklae stored its version is reported as.
UNKNOWN_VERSION = "unknown (before 0.1.0)"


def current_version():
    return _version.__version__


def library_versions():
    """torch's and skorch's versions, without a local build label.

    ``2.13.0+cpu`` and ``2.13.0+cu124`` are builds of one release, whose
    objects load in each other: moving a model from a GPU machine to a CPU one
    is no version change.
    """
    return {
        "torch": torch.__version__.split("+")[0],
        "skorch": skorch.__version__.split("+")[0],
    }


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
        state[LIBRARY_VERSIONS_KEY] = library_versions()
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
        # Pickles made before the libraries' versions were recorded have none.
        recorded = state.pop(LIBRARY_VERSIONS_KEY, {})
        current = library_versions()
        for library, version in recorded.items():
            if library in current and version != current[library]:
                warnings.warn(
                    InconsistentVersionWarning(
                        estimator_name=type(self).__name__,
                        original_version=version,
                        current_version=current[library],
                        library=library,
                    ),
                    stacklevel=2,
                )
        super().__setstate__(state)
