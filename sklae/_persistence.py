"""Pickling that remembers which sklae, torch and skorch versions made a fitted model.

scikit-learn stores its own version in every pickled estimator and warns with
:class:`~sklearn.exceptions.InconsistentVersionWarning` when a model is loaded
by another version; it does so only for its own classes. :class:`VersionedPickleMixin`
does the same for sklae's estimators, with sklae's version, and with those of
torch and skorch, whose code rebuilds the trained network a saved model holds
as plain data (see ``BaseAutoencoder.__getstate__``). It applies to every
format that saves through ``__getstate__``: pickle, joblib and skops.
"""

import copyreg
import warnings

import skorch
import torch

from . import _version
from ._engine import (
    AutoencoderNet,
    TrainingPlan,
    build_net,
    device_available,
    plain_net_state,
    restore_net,
    saved_net_class,
)
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

    # Parameters added after a release, each with the value that keeps a model
    # saved by that release computing what it did (its files lack them).
    _parameters_since_earlier_releases: dict = {}

    def __setstate__(self, state):
        state = dict(state)
        for name, value in self._parameters_since_earlier_releases.items():
            state.setdefault(name, value)
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


class PlainNetStateMixin(VersionedPickleMixin):
    """Save a fitted ``net_`` as plain data, and rebuild the net from it on load.

    The trained net is kept as numpy arrays and numbers (its weights, the
    optimiser's state, the per-epoch history; :func:`~sklae._engine.plain_net_state`)
    with what the subclass needs to rebuild its module (``_describe_module``);
    loading rebuilds the module from the estimator's parameters
    (``_rebuilt_module``) and the objective (``_make_criterion``, the hook the
    estimators train with), so that it runs no code but sklae's, scikit-learn's
    and numpy's. skops calls ``__getstate__``, which refuses a state that is not
    plain data (``_plain_state_refusal``); pickle, copy and joblib call
    ``__reduce_ex__``, which stores the same state and may hold the user's own
    modules too (pickle stores their code by reference).
    """

    def _plain_state_refusal(self):
        """Why this model's state cannot be plain data, or None when it can."""
        return None

    def _describe_module(self, module):
        """Plain data that, with the parameters, rebuilds ``module``'s architecture."""
        return {}

    def _rate_reference_fan_in(self):
        """The fan-in above which the fit trained weights at a share of the rate."""
        return None

    def _rebuilt_module(self, net_state):
        """An untrained module of the saved architecture (its weights are loaded after)."""
        raise NotImplementedError

    def _make_criterion(self):
        """The training objective the net was built with."""
        raise NotImplementedError

    def __getstate__(self):
        refusal = self._plain_state_refusal()
        if refusal is not None:
            raise TypeError(refusal)
        return self._saved_state()

    def __reduce_ex__(self, protocol):
        return copyreg.__newobj__, (type(self),), self._saved_state()

    def _saved_state(self):
        state = super().__getstate__()
        net = state.get("net_")
        if isinstance(net, AutoencoderNet):
            state["net_"] = {**plain_net_state(net), **self._describe_module(net.module_)}
        return state

    def __setstate__(self, state):
        state = dict(state)
        net_state = state.get("net_")
        # Files saved before the state was plain data hold the net itself.
        plain = isinstance(net_state, dict)
        if plain:
            del state["net_"]
        super().__setstate__(state)
        if plain:
            self.net_ = self._rebuilt_net(net_state)

    def _rebuilt_net(self, net_state):
        """A net of the fitted architecture holding the saved ``net_state``."""
        device = net_state["device"]
        if not device_available(device):
            # A model saved on a GPU machine loads on one without a GPU.
            warnings.warn(
                f"This {type(self).__name__} was trained on device {device!r} (CUDA or "
                "another accelerator), which is not available here: it is loaded on the CPU.",
                UserWarning,
                stacklevel=3,
            )
            device = "cpu"
        plan = TrainingPlan(
            learning_rate=1e-3,  # replaced by the saved optimiser state
            # The optimiser's parameter groups as the fit made them.
            rate_reference_fan_in=self._rate_reference_fan_in(),
            device=device,
            callbacks=list(getattr(self, "callbacks", None) or []),
        )
        net_class = saved_net_class(net_state, getattr(self, "_net_class", AutoencoderNet))
        module = self._rebuilt_module(net_state)
        net = build_net(module, self._make_criterion(), plan, net_class=net_class)
        return restore_net(net, net_state)
