"""A trained net as plain data, and back.

:func:`plain_net_state` turns a fitted net into numpy arrays, Python numbers,
strings, lists, tuples and dicts: the weights, the optimiser's state and the
per-epoch history. Formats that refuse to run code on load (skops) can hold
that, and pickles of it neither depend on how torch pickles its objects nor
store the weights twice, as pickling the skorch net does. :func:`restore_net`
loads such a state into a freshly built net of the same architecture.

This module imports torch, numpy and skorch, never the estimators.
"""

import numpy as np
import torch
from skorch.history import History

from .distributed import DistributedAutoencoderNet
from .net import ENGINE_CALLBACKS, AutoencoderNet

# The parts of a plain net state, for checking a state before restoring it.
STATE_KEYS = ("module", "criterion", "optimizer", "history", "random_seed", "device")
# The engine's nets, by the name a state records: loading looks a name up here
# and never imports a class a file names.
NET_CLASSES = {cls.__name__: cls for cls in (AutoencoderNet, DistributedAutoencoderNet)}


def to_plain(value):
    """``value`` with tensors as numpy arrays and numpy scalars as Python numbers.

    Containers (dicts, lists, tuples) are converted item by item; any other
    object is returned as it is.
    """
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {key: to_plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(to_plain(item) for item in value)
    return value


def _to_tensors(value):
    """The inverse of :func:`to_plain` for state dicts: arrays become tensors."""
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.array(value))
    if isinstance(value, dict):
        return {key: _to_tensors(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_to_tensors(item) for item in value)
    return value


def _callers_callbacks(net):
    """The initialised callbacks the caller gave the net, as ``(name, callback)`` pairs."""
    own = set(ENGINE_CALLBACKS) | {name for name, _ in net.get_default_callbacks()}
    return [(name, callback) for name, callback in net.callbacks_ if name not in own]


def plain_net_state(net):
    """The trained state of an initialised net as plain data (see the module's doc).

    The caller's own callbacks are kept as they are, with what they recorded
    (they are plain data only if they are); the engine's are rebuilt on load.
    """
    return {
        "net_class": type(net).__name__,
        "module": to_plain(net.module_.state_dict()),
        "criterion": to_plain(net.criterion_.state_dict()),
        "optimizer": to_plain(net.optimizer_.state_dict()),
        "history": to_plain(list(net.history)),
        "random_seed": int(net.random_seed),
        "device": str(net.device),
        "callbacks": _callers_callbacks(net),
    }


def saved_net_class(state, default):
    """The engine net class ``state`` was taken from (``default`` if it names none)."""
    return NET_CLASSES.get(state.get("net_class"), default)


def device_available(device):
    """Whether torch can put tensors on ``device`` here (a model saved on a GPU
    machine and loaded on a CPU one falls back to the CPU)."""
    kind = torch.device(device).type
    if kind == "cpu":
        return True
    backend = getattr(torch, kind, None)
    return bool(backend is not None and backend.is_available())


def restore_net(net, state):
    """Load ``state`` (from :func:`plain_net_state`) into the initialised ``net``.

    ``net`` must have the architecture the state was taken from; its weights,
    optimiser state and history are replaced. Returns ``net``.
    """
    missing = [key for key in STATE_KEYS if key not in state]
    if missing:
        raise ValueError(f"the saved network state lacks {missing}; the file is damaged.")

    net.module_.load_state_dict(_to_tensors(state["module"]))
    net.criterion_.load_state_dict(_to_tensors(state["criterion"]))
    net.optimizer_.load_state_dict(_to_tensors(state["optimizer"]))
    net.history = History(state["history"])
    net.random_seed = state["random_seed"]
    saved_callbacks = dict(state.get("callbacks", []))
    if saved_callbacks:
        # The net was built with the same callbacks: swap in the trained ones.
        net.callbacks_ = [
            (name, saved_callbacks.get(name, callback)) for name, callback in net.callbacks_
        ]
    return net
