"""The engine's net trained data-parallel, by several processes at once.

:class:`DistributedAutoencoderNet` is :class:`~.net.AutoencoderNet` with the seams
of skorch's own ``AccelerateMixin`` overridden and nothing else: the training
forward pass goes through :class:`torch.nn.parallel.DistributedDataParallel`
(DDP), the training iterator takes this process's share of each step, and the
losses a step or a validation batch records are averaged over the processes.
Corruption, the random draws of the network and its loss, gradient clipping,
the divergence guard, early stopping and any other callback are the engine's
own, so they behave as with one process:

- one global step takes ``batch_size`` rows of the pass's shared permutation
  (rounded up to a multiple of the number of processes), each process a
  contiguous slice of them (:class:`~.data.Batches` with ``shard``); DDP
  averages the slices' gradients, which is the gradient of the whole batch
  when the loss is a mean over rows, as the engine's reconstruction, KL and
  L1 sparsity terms are;
- corruption is drawn for the whole global batch, as one process would draw
  it, and each process keeps its slice, so a row's noise does not depend on
  the number of processes;
- what the network and its loss draw themselves (a variational code's noise)
  is drawn per process, from a stream of its own;
- every history record that a callback reads is the same number in every
  process (a step's loss and a validation batch's loss are averaged over the
  processes), so stopping, divergence and restoring the best epoch are
  decided identically everywhere, and no process waits for a step that
  another has skipped;
- validation is not sharded: the processes hold the same weights, so each
  scores all held-out rows in the batches one process would use, and the
  validation loss is the single-process one.

Distributed training is active while ``fit``/``partial_fit`` runs inside an
initialised default ``torch.distributed`` process group; the DDP wrapper lives
only for that call, so ``module_`` stays the plain module, and outside a group
the net trains, pickles and predicts exactly as an ``AutoencoderNet``.

This module imports torch, numpy, skorch and the engine's own modules.
"""

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from .data import Batches, TrainingRows, pass_seeds
from .net import AutoencoderNet


def process_group_shape():
    """``(rank, world_size)`` of this process in the default process group, or None."""
    if not (dist.is_available() and dist.is_initialized()):
        return None
    return dist.get_rank(), dist.get_world_size()


def local_batch_size(batch_size, n_rows, world_size):
    """Rows each process takes per step, so that one step takes ``batch_size`` rows.

    A batch larger than the data is the data, as with one process; a global batch
    that does not divide by ``world_size`` is rounded up to a multiple of it.
    """
    return max(1, math.ceil(min(int(batch_size), n_rows) / world_size))


def _collective_device(device=None):
    """Where the backend takes its tensors: NCCL on this process's GPU, others on CPU."""
    if dist.get_backend() != "nccl":
        return torch.device("cpu")
    if device is not None and torch.device(device).type == "cuda":
        return torch.device(device)
    return torch.device("cuda", torch.cuda.current_device())


def shared_integer(value):
    """``value`` of rank 0 of the default process group, on every process."""
    tensor = torch.tensor([int(value)], dtype=torch.int64, device=_collective_device())
    dist.broadcast(tensor, src=0)
    return int(tensor.item())


def mean_over_processes(loss):
    """Mean over the processes of a scalar tensor, detached, on every process."""
    device = _collective_device(loss.device)
    total = loss.detach().to(device=device, dtype=torch.float64).reshape(1).clone()
    dist.all_reduce(total)
    return (total / dist.get_world_size()).to(loss.device, loss.dtype).reshape(loss.shape)


class SliceOfGlobalCorruption:
    """Corrupt a process's slice of a global batch as the whole batch would be.

    The wrapped :class:`~.data.Corruption` draws noise for ``world_size``
    slices of the batch's size, as one process draws it for the global batch,
    and this process keeps the draw of its slice ``rank``.
    """

    def __init__(self, corruption, rank, world_size):
        self.corruption = corruption
        self.rank = rank
        self.world_size = world_size
        self.pairs = getattr(corruption, "pairs", False)

    def __call__(self, batch, generator):
        n_rows = batch.shape[0]
        mine = slice(self.rank * n_rows, (self.rank + 1) * n_rows)
        whole = batch.new_zeros((n_rows * self.world_size, *batch.shape[1:]))
        whole[mine] = batch
        drawn = self.corruption(whole, generator)
        if self.pairs:
            return tuple(part[mine] for part in drawn)
        return drawn[mine]


@dataclass
class _DataParallel:
    """This process's part in one distributed training call."""

    rank: int
    world_size: int
    module: DistributedDataParallel


def _own_draws_seed(base_seed, pass_number, rank):
    """Seed of what the network and its loss draw in process ``rank`` (> 0)."""
    return np.random.SeedSequence([int(base_seed), int(pass_number), 2, int(rank)]).generate_state(
        1
    )[0]


class DistributedAutoencoderNet(AutoencoderNet):
    """:class:`~.net.AutoencoderNet` that trains data-parallel inside a process group.

    Parameters are those of :class:`~.net.AutoencoderNet`; ``batch_size`` is the
    global batch of one step over all processes. Each process calls
    ``fit``/``partial_fit`` with the same rows, the same seeds and the same
    initial weights; see the module's description for what each process does.
    """

    _parallel = None
    # DistributedDataParallel keeps the parameters' gradients in buckets of its
    # own: their storage is not re-pointed at flat tensors (flat_adam).
    flattens_optimizer = False

    def partial_fit(self, X, y=None, classes=None, **fit_params):
        shape = process_group_shape()
        if shape is None:
            return super().partial_fit(X, y, classes, **fit_params)
        if not self.initialized_:
            self.initialize()
        device = torch.device(self.device)
        device_ids = None
        if device.type == "cuda":
            device_ids = [device.index if device.index is not None else torch.cuda.current_device()]
        # The wrapper only routes the training forward pass; module_ stays the
        # plain module, so the fitted net pickles and predicts as usual.
        self._parallel = _DataParallel(
            *shape, DistributedDataParallel(self.module_, device_ids=device_ids)
        )
        try:
            return super().partial_fit(X, y, classes, **fit_params)
        finally:
            self._parallel = None

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        super().on_train_begin(net, X=X, y=y, **kwargs)
        parallel = self._parallel
        if parallel is None or parallel.rank == 0:
            return
        # AutoencoderNet.partial_fit gave the module and the loss one generator
        # seeded for this run; every process but the first reseeds it, so that
        # processes do not draw the same noise for different rows.
        seed = _own_draws_seed(self.random_seed, len(self.history), parallel.rank)
        for part in (*self.module_.modules(), *self.criterion_.modules()):
            generator = getattr(part, "noise_generator", None)
            if generator is not None:
                generator.manual_seed(int(seed))
                return

    def get_iterator(self, dataset, training=False):
        parallel = self._parallel
        if parallel is None or not training or not isinstance(dataset, TrainingRows):
            # Validation too: every process scores all held-out rows.
            return super().get_iterator(dataset, training=training)
        corruption = dataset.corruption
        if corruption is not None:
            corruption = SliceOfGlobalCorruption(corruption, parallel.rank, parallel.world_size)
        return Batches(
            TrainingRows(dataset.targets, dataset.inputs, corruption),
            local_batch_size(self.batch_size, len(dataset), parallel.world_size),
            self.device,
            seeds_for_pass=lambda: pass_seeds(self.random_seed, len(self.history)),
            shard=(parallel.rank, parallel.world_size),
        )

    def infer(self, x, **fit_params):
        parallel = self._parallel
        if parallel is None or not torch.is_grad_enabled():
            return super().infer(x, **fit_params)
        if getattr(self.criterion_, "needs_input_gradient", False):
            x.requires_grad_(True)
        return parallel.module(x, **fit_params)

    def _gradients_by_hand(self):
        # DistributedDataParallel averages the processes' gradients in hooks
        # on autograd's backward pass: gradients by hand would skip them.
        return None if self._parallel is not None else super()._gradients_by_hand()

    def train_step_single(self, batch, **fit_params):
        step = super().train_step_single(batch, **fit_params)
        if self._parallel is not None:
            # The global batch's loss: the mean of the processes' slice means.
            step["loss"] = mean_over_processes(step["loss"])
        return step

    def validation_step(self, batch, **fit_params):
        step = super().validation_step(batch, **fit_params)
        if self._parallel is not None:
            # Equal in every process up to rounding; averaged, equal to the bit,
            # so that every process stops at the same epoch.
            step["loss"] = mean_over_processes(step["loss"])
        return step

    def __getstate__(self):
        state = super().__getstate__()
        # A checkpoint taken during training does not carry the wrapper.
        state.pop("_parallel", None)
        return state
