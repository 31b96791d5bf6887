"""Training on several processes with PyTorch's own data parallelism (DDP).

:func:`fit_distributed` trains an autoencoder estimator's network with
:class:`torch.nn.parallel.DistributedDataParallel`: ``world_size`` processes,
started with :func:`torch.multiprocessing.spawn` on this machine and joined in a
``torch.distributed`` process group over TCP on loopback (backend ``"gloo"`` on
CPU, ``"nccl"`` when each process takes a GPU). Each process trains on its own
shard of the rows; DDP averages the gradients of every step across processes, so
all processes hold the same weights. The global mini-batch is the estimator's
``batch_size``, split evenly between processes, so one step sees as many rows as
one step of a single-process fit. Nothing here is needed for ordinary use: it is
an optional extra that relies only on torch.

Several machines: start the same script with ``torchrun`` on each and call the
worker loop yourself; this module covers the single-machine, several-process case
that is tested here.

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
Here, each of the ``world_size`` processes takes ``cores // world_size`` threads.
"""

import math
import os
import socket
import tempfile

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from sklearn.base import clone
from sklearn.utils import check_random_state
from sklearn.utils.validation import validate_data

from ._base import AUTO_BATCH_SIZE, FLOAT_DTYPES, check_unit_interval, resolve_device
from ._training import epoch_seed

__all__ = ["fit_distributed"]


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _shard(n_rows, rank, world_size):
    """Contiguous block of row positions of process ``rank`` (sizes differ by at most 1)."""
    bounds = np.linspace(0, n_rows, world_size + 1).astype(np.int64)
    return bounds[rank], bounds[rank + 1]


def _train_worker(rank, world_size, port, job, result_path):
    """Body of one process: join the group, train its shard, rank 0 saves the result."""
    device = job["device"]
    use_gpu = device == "cuda"
    if use_gpu:
        device = f"cuda:{rank}"
        torch.cuda.set_device(rank)
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // world_size))
    # What modules draw themselves (a variational code's noise) differs by process.
    torch.manual_seed(int(epoch_seed(job["seed"], 2**20 + rank)))
    dist.init_process_group(
        "nccl" if use_gpu else "gloo",
        init_method=f"tcp://127.0.0.1:{port}",
        rank=rank,
        world_size=world_size,
    )
    try:
        module = job["module"].to(device)
        criterion = job["criterion"].to(device)
        model = torch.nn.parallel.DistributedDataParallel(module)
        decay = [p for n, p in module.named_parameters() if not n.endswith("bias")]
        no_decay = [p for n, p in module.named_parameters() if n.endswith("bias")]
        optimizer = torch.optim.Adam(
            [{"params": decay, "weight_decay": job["alpha"]}, {"params": no_decay}],
            lr=job["lr"],
        )
        start, stop = _shard(len(job["X"]), rank, world_size)
        rows = job["X"][start:stop]
        local_batch = max(1, job["batch_size"] // world_size)
        # Every process takes the same number of steps per epoch, which DDP
        # needs (each step is a collective); shards differ by at most one row.
        largest_shard = math.ceil(len(job["X"]) / world_size)
        n_steps = math.ceil(largest_shard / local_batch)
        needs_input_gradient = getattr(criterion, "needs_input_gradient", False)
        losses = []
        for epoch in range(job["epochs"]):
            generator = torch.Generator().manual_seed(
                int(epoch_seed(job["seed"], epoch * world_size + rank))
            )
            order = torch.randperm(len(rows), generator=generator)
            # Cycling the shard's permutation pads a short shard by a few rows.
            order = order.repeat(math.ceil(n_steps * local_batch / max(1, len(rows))))
            total = torch.zeros(2, dtype=torch.float64)
            module.train()
            criterion.train()
            for step in range(n_steps):
                batch = rows[order[step * local_batch : (step + 1) * local_batch]].to(device)
                if needs_input_gradient:
                    batch.requires_grad_(True)
                optimizer.zero_grad(set_to_none=True)
                loss = criterion(model(batch), batch, batch, module)
                loss.backward()
                optimizer.step()
                total += torch.tensor([loss.item() * len(batch), len(batch)], dtype=torch.float64)
            dist.all_reduce(total)
            losses.append(float(total[0] / total[1]))
        if rank == 0:
            state = {k: v.cpu() for k, v in module.state_dict().items()}
            torch.save({"state_dict": state, "losses": losses}, result_path)
    finally:
        dist.destroy_process_group()


def fit_distributed(estimator, X, world_size=2, *, epochs=None):
    """Train ``estimator`` on ``X`` with DDP over ``world_size`` local processes.

    Parameters
    ----------
    estimator : BaseAutoencoder
        An unfitted (or fitted: it is cloned) sklae estimator with an MLP,
        convolutional or custom network. ``early_stopping`` does not apply: every
        epoch is trained.
    X : array-like of shape (n_samples, n_features)
        Training data, dense.
    world_size : int, default=2
        Number of processes. With ``device="cuda"`` each process takes one GPU.
    epochs : int or None, default=None
        Number of passes over the data; ``None`` means ``estimator.max_iter``.

    Returns
    -------
    fitted : BaseAutoencoder
        A fitted clone of ``estimator``: ``transform``, ``score``, pickling and
        ``partial_fit`` work as after ``fit`` (``partial_fit`` restarts Adam's
        moment estimates). ``loss_curve_`` holds the mean training loss of each
        epoch over all processes.

    Examples
    --------
    >>> import numpy as np
    >>> from sklae import AutoencoderTransformer
    >>> from sklae.distributed import fit_distributed
    >>> X = np.random.default_rng(0).normal(size=(200, 6))
    >>> model = fit_distributed(
    ...     AutoencoderTransformer(code_size=2, max_iter=2, random_state=0), X, world_size=2
    ... )  # doctest: +SKIP
    >>> model.transform(X).shape  # doctest: +SKIP
    (200, 2)
    """
    if int(world_size) < 1:
        raise ValueError(f"world_size must be a positive integer, got {world_size!r}")
    world_size = int(world_size)
    fitted = clone(estimator)
    fitted._validate_params()
    X = validate_data(fitted, X, dtype=FLOAT_DTYPES)
    fitted._resolved_output_activation()
    fitted._hidden_widths()
    fitted._check_variant_parameters(X.shape[1])
    check_unit_interval(X, fitted.loss)
    if X.shape[0] < world_size:
        raise ValueError(
            f"fit_distributed needs at least one row per process: got {X.shape[0]} rows "
            f"for world_size={world_size}."
        )
    device = resolve_device(fitted.device)
    if device == "cuda" and torch.cuda.device_count() < world_size:
        raise ValueError(
            f"world_size={world_size} processes need as many GPUs, found "
            f"{torch.cuda.device_count()}."
        )
    seeds = check_random_state(fitted.random_state).randint(np.iinfo(np.int32).max, size=3)
    net, fitted.code_size_ = fitted._make_net(X.shape[1], "cpu", seeds)
    batch_size = (
        min(AUTO_BATCH_SIZE, X.shape[0]) if fitted.batch_size == "auto" else fitted.batch_size
    )
    job = {
        "X": torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32)),
        "module": net.module_,
        "criterion": net.criterion_,
        "device": device,
        "lr": fitted.learning_rate_init,
        "alpha": fitted.alpha,
        "batch_size": batch_size,
        "epochs": fitted.max_iter if epochs is None else int(epochs),
        "seed": int(net.random_seed),
    }
    with tempfile.TemporaryDirectory() as folder:
        result_path = os.path.join(folder, "result.pt")
        mp.spawn(
            _train_worker,
            args=(world_size, _free_port(), job, result_path),
            nprocs=world_size,
            join=True,
        )
        result = torch.load(result_path, weights_only=True)
    net.module_.load_state_dict(result["state_dict"])
    if device != "cpu":
        net.device = device
        net.module_.to(device)
        net.criterion_.to(device)
    for loss in result["losses"]:
        net.history.new_epoch()
        net.history.record("train_loss", loss)
    fitted.net_ = net
    fitted._set_fitted_attributes(False)
    return fitted
