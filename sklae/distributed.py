"""Training one network with several processes: PyTorch's data parallelism (DDP).

Two entry points train an autoencoder estimator through its own ``fit`` (the
same validation, the same engine) with its network wrapped in
:class:`torch.nn.parallel.DistributedDataParallel`:

- :func:`fit_distributed` starts ``world_size`` processes on this machine
  (:func:`torch.multiprocessing.spawn`; backend ``"gloo"`` on CPU, ``"nccl"``
  with one GPU per process) and returns the fitted estimator;
- :func:`fit_from_environment` is called by every process that ``torchrun``
  starts, on one machine or several (``env://`` rendezvous from ``RANK``,
  ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``), and returns the fitted
  estimator in each. Run without ``torchrun``, it fits in the calling process,
  so one script serves both.

Every process reads the same rows with the same seeds. A training step takes
``batch_size`` rows of the epoch's shuffled order, each process a slice of them,
and DDP averages the slices' gradients: the gradient of the whole batch, since
the losses are means over rows. The noise of ``DenoisingAutoencoder`` is drawn
for the whole batch too, so training follows the single-process fit up to
rounding when the number of rows is a multiple of ``batch_size``; otherwise each
epoch's last step is filled up from the epoch's first rows, since every process
must take the same number of steps. A variational code's noise is drawn per
process. Gradient clipping (``max_grad_norm``), ``early_stopping`` (every
process scores all held-out rows), the divergence check and any ``callbacks``
act on losses averaged over the processes, so they decide the same in every
process. ``AutoencoderOutlierDetector`` trains an ensemble of small networks
and is not trained this way.

Threads and parallel jobs
-------------------------
torch computes with one thread per core by default. When scikit-learn runs jobs in
parallel (``GridSearchCV(n_jobs=...)``), those jobs are processes: joblib's loky
backend starts each worker with ``OMP_NUM_THREADS = cores // n_jobs`` and Dask's
worker processes start with ``OMP_NUM_THREADS=1``, and torch follows that
variable, so the cores are not oversubscribed and the estimators need no thread
setting of their own (``tests/test_streaming.py`` checks both). Where jobs are
threads of one process (``joblib.parallel_backend("threading")`` or a Dask
cluster with ``processes=False``), wrap the search in
``threadpoolctl.threadpool_limits(1)``, which limits torch's OpenMP pool too.
Here, each of the ``world_size`` processes of :func:`fit_distributed` takes
``cores // world_size`` threads (fewer if this process uses fewer); ``torchrun``
sets ``OMP_NUM_THREADS=1`` itself when it starts several processes per machine.
"""

import atexit
import contextlib
import mmap
import os
import pickle
import tempfile
import warnings
from datetime import timedelta
from numbers import Integral

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from sklearn.base import clone
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import InvalidParameterError

from ._base import BaseAutoencoder
from ._engine.distributed import DistributedAutoencoderNet, process_group_shape, shared_integer
from ._outlier import AutoencoderOutlierDetector
from ._validation import resolve_device

__all__ = ["fit_distributed", "fit_from_environment"]

# Seeds are drawn in [0, 2**31 - 1), as the estimators draw theirs.
SEED_BOUND = np.iinfo(np.int32).max


def _check_world_size(world_size):
    # 1.7 is not taken for 1, nor True for 1: a count of processes is an integer.
    is_integer = isinstance(world_size, Integral) and not isinstance(world_size, (bool, np.bool_))
    if not is_integer or world_size < 1:
        raise InvalidParameterError(
            f"world_size must be a positive integer (a number of processes), got {world_size!r}."
        )
    return int(world_size)


def _check_estimator(estimator, function):
    if isinstance(estimator, BaseAutoencoder):
        return
    if isinstance(estimator, AutoencoderOutlierDetector):
        raise TypeError(
            f"{function} trains one network with several processes, but "
            "AutoencoderOutlierDetector trains an ensemble of small networks on subsamples. "
            "Fit the detector with its own fit(); its members are small enough for one process."
        )
    raise TypeError(
        f"{function} trains an sklae autoencoder (AutoencoderTransformer, "
        f"VariationalAutoencoder, DenoisingAutoencoder), got {type(estimator).__name__}."
    )


def _fit_in_group(fitted, X, fit_params):
    """Fit ``fitted`` in place as this process's part of the default process group."""
    rank = dist.get_rank()
    random_state, verbose = fitted.random_state, fitted.verbose
    # Every process must shuffle, corrupt and split alike: they share rank 0's seed.
    if isinstance(random_state, Integral) and not isinstance(random_state, bool):
        draw = int(random_state)
    else:
        draw = int(check_random_state(random_state).randint(SEED_BOUND))
    fitted.set_params(random_state=shared_integer(draw))
    if rank > 0:
        # One progress table, from the first process.
        fitted.set_params(verbose=0)
    fitted._net_class = DistributedAutoencoderNet
    try:
        with warnings.catch_warnings():
            if rank > 0:
                # The same warnings, once, from the first process.
                warnings.simplefilter("ignore")
            fitted.fit(X, **fit_params)
    finally:
        fitted.__dict__.pop("_net_class", None)
        fitted.set_params(random_state=random_state, verbose=verbose)
    return fitted


# ---------------------------------------------------------------- fit_distributed


def _portable(X):
    """``X`` for the spawned processes: shared, not copied, where it can be."""
    if isinstance(X, np.memmap) and isinstance(X.base, mmap.mmap) and X.filename:
        # A whole file mapping (np.memmap, np.load(mmap_mode=...)): each process
        # maps the file itself, so the rows stay on disk.
        order = "F" if X.flags.f_contiguous and not X.flags.c_contiguous else "C"
        return ("memmap", X.filename, X.dtype.str, X.shape, X.offset, order)
    if type(X) is np.ndarray and X.dtype in (np.float32, np.float64):
        rows = np.require(X, requirements=["C_CONTIGUOUS", "WRITEABLE"])
        return ("shared", torch.from_numpy(rows).share_memory_())
    return ("as_is", X)


def _restored(portable):
    kind, *content = portable
    if kind == "memmap":
        filename, dtype, shape, offset, order = content
        return np.memmap(filename, dtype=dtype, mode="r", shape=shape, offset=offset, order=order)
    if kind == "shared":
        return content[0].numpy()
    return content[0]


def _save(obj, path):
    with open(path, "wb") as file:
        pickle.dump(obj, file)


def _spawned_process(rank, world_size, folder, job):
    """One of ``fit_distributed``'s processes; the first saves the fitted estimator."""
    try:
        torch.set_num_threads(job["threads"])
        if job["use_gpu"]:
            torch.cuda.set_device(rank)
        dist.init_process_group(
            "nccl" if job["use_gpu"] else "gloo",
            init_method=f"file://{os.path.join(folder, 'rendezvous')}",
            rank=rank,
            world_size=world_size,
        )
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                fit_params = {name: _restored(value) for name, value in job["fit_params"].items()}
                fitted = _fit_in_group(job["estimator"], _restored(job["X"]), fit_params)
            # Every process past its last collective before any tears the group
            # down: gloo aborts (SIGABRT) a process whose peer leaves while
            # communication between them may still be in flight.
            dist.barrier()
        finally:
            dist.destroy_process_group()
        if rank == 0:
            found = [(warning.category, str(warning.message)) for warning in caught]
            _save({"estimator": fitted, "warnings": found}, os.path.join(folder, "result.pkl"))
    except BaseException as error:
        # The caller re-raises the error itself, of its own type.
        path = os.path.join(folder, f"error-{rank}.pkl")
        try:
            _save(error, path)
        except Exception:
            _save(RuntimeError(f"{type(error).__name__}: {error}"), path)
        raise


def _raised_in_process(folder, failure, world_size):
    """The error a spawned process raised, as it raised it, or None."""
    first = getattr(failure, "error_index", 0)
    for rank in [first, *range(world_size)]:
        path = os.path.join(folder, f"error-{rank}.pkl")
        if os.path.exists(path):
            try:
                with open(path, "rb") as file:
                    return pickle.load(file)
            except Exception:
                # Not rebuilt here: the process's own traceback tells instead.
                return None
    return None


def fit_distributed(estimator, X, world_size=2, **fit_params):
    """Fit a clone of ``estimator`` on ``X`` with ``world_size`` processes of this machine.

    The processes (started with :func:`torch.multiprocessing.spawn`) each run
    the estimator's own ``fit`` with its network wrapped in
    :class:`torch.nn.parallel.DistributedDataParallel`: each takes its slice
    of every mini-batch, and the gradients are averaged over the processes. On
    CPU they communicate with the ``"gloo"`` backend; with ``device="cuda"``
    each takes one GPU and they use ``"nccl"``. Errors and warnings of the fit
    come back as ``fit`` raises and issues them.

    In a script, call it under ``if __name__ == "__main__":``: the processes
    start by importing the script.

    Parameters
    ----------
    estimator : AutoencoderTransformer, VariationalAutoencoder or DenoisingAutoencoder
        The estimator to fit; it is cloned, so it stays unfitted. Every
        parameter applies as in ``fit``; ``batch_size`` is the number of rows of
        one step over all processes.
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        Training data. A float array is shared with the processes, not copied;
        a ``numpy.memmap`` of a whole file is mapped by each process and read
        one mini-batch at a time.
    world_size : int, default=2
        Number of processes. With ``device="cuda"``, at most the number of GPUs.
    **fit_params : dict
        Passed to the estimator's ``fit``, for example ``X_clean`` of
        :class:`~sklae.DenoisingAutoencoder`.

    Returns
    -------
    fitted : estimator
        The fitted clone, as ``fit`` leaves it: ``transform``, ``score``,
        pickling, ``partial_fit`` and warm starts work as after ``fit``, in this
        one process. ``loss_curve_`` holds the epochs' training losses averaged
        over the processes.

    See Also
    --------
    fit_from_environment : The same training, in processes started by ``torchrun``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklae import AutoencoderTransformer
    >>> from sklae.distributed import fit_distributed
    >>> X = np.random.default_rng(0).normal(size=(256, 6))
    >>> model = fit_distributed(
    ...     AutoencoderTransformer(code_size=2, max_iter=3, batch_size=64, random_state=0),
    ...     X,
    ...     world_size=2,
    ... )  # doctest: +SKIP
    >>> model.transform(X).shape  # doctest: +SKIP
    (256, 2)
    """
    world_size = _check_world_size(world_size)
    _check_estimator(estimator, "fit_distributed")
    fitted = clone(estimator)
    # Before starting any process: the parameters' errors, at once.
    fitted._validate_params()
    random_state = fitted.random_state
    use_gpu = resolve_device(fitted.device) == "cuda"
    if use_gpu and torch.cuda.device_count() < world_size:
        raise ValueError(
            f"world_size={world_size} processes with device='cuda' take one GPU each, but "
            f"torch sees {torch.cuda.device_count()}."
        )
    if not (isinstance(random_state, Integral) and not isinstance(random_state, bool)):
        # Drawn here, as fit would draw it, so that every process uses the same.
        fitted.set_params(random_state=int(check_random_state(random_state).randint(SEED_BOUND)))
    job = {
        "estimator": fitted,
        "X": _portable(X),
        "fit_params": {name: _portable(value) for name, value in fit_params.items()},
        "use_gpu": use_gpu,
        "threads": max(1, min(torch.get_num_threads(), (os.cpu_count() or 1) // world_size)),
    }
    with tempfile.TemporaryDirectory(prefix="sklae-distributed-") as folder:
        try:
            mp.start_processes(
                _spawned_process,
                args=(world_size, folder, job),
                nprocs=world_size,
                join=True,
                start_method="spawn",
            )
        except (mp.ProcessRaisedException, mp.ProcessExitedException) as failure:
            error = _raised_in_process(folder, failure, world_size)
            if error is None:
                raise
            raise error from failure
        with open(os.path.join(folder, "result.pkl"), "rb") as file:
            result = pickle.load(file)
    fitted = result["estimator"]
    fitted.set_params(random_state=random_state)
    for category, message in result["warnings"]:
        warnings.warn(message, category, stacklevel=2)
    return fitted


# ---------------------------------------------------------------- torchrun


# How long a process leaving the job's process group waits for its peers.
LEAVING_TIMEOUT = timedelta(seconds=60)


def fit_from_environment(estimator, X, **fit_params):
    """Fit a clone of ``estimator`` as one of the processes that ``torchrun`` started.

    Every process of the job calls this with the same estimator and the same
    ``X``; each trains its slice of every mini-batch, with the network wrapped
    in :class:`torch.nn.parallel.DistributedDataParallel`, and returns the same
    fitted estimator. The process group is joined from the environment that
    ``torchrun`` sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
    ``MASTER_ADDR``, ``MASTER_PORT``: ``env://``), with the ``"gloo"`` backend
    on CPU and ``"nccl"`` with ``device="cuda"`` (GPU ``LOCAL_RANK`` of the
    machine) at the first call, and kept for the process's later calls. A
    process group the caller initialised is used as it is. Without
    ``torchrun``'s variables the fit runs in this process alone, so the same
    script runs with or without ``torchrun``.

    Two machines with one process each, the first at address 10.0.0.1, run the
    same script ``train.py`` that calls this function::

        # on the first machine
        torchrun --nnodes=2 --node-rank=0 --nproc-per-node=1 \\
            --master-addr=10.0.0.1 --master-port=29500 train.py
        # on the second machine
        torchrun --nnodes=2 --node-rank=1 --nproc-per-node=1 \\
            --master-addr=10.0.0.1 --master-port=29500 train.py

    Parameters
    ----------
    estimator : AutoencoderTransformer, VariationalAutoencoder or DenoisingAutoencoder
        The estimator to fit; it is cloned. ``batch_size`` is the number of rows
        of one step over all processes. With ``random_state=None`` the processes
        use a seed drawn by the first one.
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        Training data, the same rows in every process.
    **fit_params : dict
        Passed to the estimator's ``fit``, for example ``X_clean`` of
        :class:`~sklae.DenoisingAutoencoder`.

    Returns
    -------
    fitted : estimator
        The fitted clone, the same in every process; typically the process
        with ``RANK`` 0 saves it.

    See Also
    --------
    fit_distributed : The same training with processes started on this machine.

    Examples
    --------
    >>> import numpy as np
    >>> from sklae import AutoencoderTransformer
    >>> from sklae.distributed import fit_from_environment
    >>> X = np.random.default_rng(0).normal(size=(256, 6))
    >>> model = fit_from_environment(
    ...     AutoencoderTransformer(code_size=2, max_iter=3, batch_size=64, random_state=0), X
    ... )
    >>> model.transform(X).shape
    (256, 2)
    """
    _check_estimator(estimator, "fit_from_environment")
    fitted = clone(estimator)
    if process_group_shape() is None:
        if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
            return fitted.fit(X, **fit_params)
        fitted._validate_params()
        use_gpu = resolve_device(fitted.device) == "cuda"
        if use_gpu:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        # Joined once and kept for later fits of this process: joining again
        # through torchrun's store races with the keys of the first group.
        dist.init_process_group("nccl" if use_gpu else "gloo", init_method="env://")
        atexit.register(_leave_process_group)
    return _fit_in_group(fitted, X, fit_params)


def _leave_process_group():
    """Leave the job's process group at exit, after every process has reached it.

    A process that destroys the group while a peer's communication is still
    in flight gets that peer aborted by gloo ("terminate called without an
    active exception", SIGABRT; measured under torchrun with two nodes, where
    the surviving node then waits on the other until its exit barrier times
    out). A peer that never arrives (it crashed) does not hold this one past
    ``LEAVING_TIMEOUT``.
    """
    if not dist.is_initialized():
        return
    with contextlib.suppress(Exception):
        dist.barrier(async_op=True).wait(timeout=LEAVING_TIMEOUT)
    dist.destroy_process_group()
