"""Rows, corruption and mini-batches: the engine's one data path.

Training, validation and inference all iterate :class:`Batches` over
:class:`TrainingRows`, so there is one batching loop. A batch is one
``index_select`` on a float32 tensor, one sparse row slice densified, or one
ascending read of a memmap; the target is the input itself unless the rows carry
separate inputs or a corruption, so nothing is copied twice.

Every random draw (row order, corruption) comes from a ``torch.Generator`` seeded
for that pass; torch's global random state is never read or written, so fits
running in threads do not disturb each other.

This module imports torch, numpy and scipy only.
"""

import math

import numpy as np
import torch
from scipy import sparse

# Validation and inference need no gradients, so they run in larger batches;
# the mean loss does not depend on the batch size.
EVALUATION_BATCH_SIZE = 4096

# Validation rows are corrupted the same way in every epoch, so that validation
# losses of different epochs compare; this pass number keys that fixed draw.
VALIDATION_PASS = 2**31 - 1


def check_float32_range(array):
    """Refuse values that float32, in which the network computes, cannot hold.

    Conversion to float32 is monotone, so converting the extremes alone tells
    whether any value would become infinite: no float32 copy of ``array``.
    """
    source = np.asarray(array)
    if source.dtype == np.float32 or not source.size:
        return
    with np.errstate(over="ignore"):
        extremes = np.asarray([source.min(), source.max()], dtype=np.float32)
    if not np.isfinite(extremes).all():
        # Finite float64 values beyond float32's range would silently become
        # infinite in the network, and so would every output.
        raise ValueError(
            f"X holds values of magnitude up to {np.abs(source).max():.3g}, beyond the range "
            "of float32 (about 3.4e38) in which the network computes. Scale X first, for "
            "example with sklearn.preprocessing.StandardScaler."
        )


def to_float32(array):
    """float32 numpy copy or view of ``array``, refusing values beyond float32's range."""
    check_float32_range(array)
    return np.asarray(array, dtype=np.float32)


def as_float32_tensor(array):
    """Dense float32 torch tensor sharing memory with ``array`` where possible."""
    array = to_float32(array)
    if not (array.flags.c_contiguous and array.flags.writeable):
        # torch refuses to share read-only memory (memmaps, broadcast views).
        array = np.array(array, dtype=np.float32, order="C")
    return torch.from_numpy(array)


def _convert(array, dtype):
    """``array`` as a numpy array of the torch ``dtype`` (float32 or float64).

    Values beyond float32's range are refused for either: the network was
    trained in float32, where they would have been infinite.
    """
    if dtype == torch.float64:
        check_float32_range(array)
        return np.asarray(array, dtype=np.float64)
    return to_float32(array)


class RowData:
    """Rows of a matrix: a float32 torch tensor, a scipy sparse matrix or a numpy array.

    Tensors are sliced on their device. Sparse matrices stay sparse and numpy
    arrays (memmaps included) stay where they are: :meth:`batch` reads,
    densifies and converts to float32 one mini-batch at a time. ``rows``, for a
    numpy array only, selects a subset of its rows (a split) without copying them.
    """

    def __init__(self, values, rows=None):
        if not (isinstance(values, (torch.Tensor, np.ndarray)) or sparse.issparse(values)):
            raise TypeError(
                f"RowData holds a tensor, a sparse matrix or a memmap, got {type(values)}"
            )
        if sparse.issparse(values) and not sparse.isspmatrix_csr(values):
            values = sparse.csr_matrix(values)
        self.values = values
        self.rows = rows

    def __len__(self):
        return self.values.shape[0] if self.rows is None else len(self.rows)

    @property
    def n_columns(self):
        return self.values.shape[1]

    @property
    def is_sparse(self):
        return sparse.issparse(self.values)

    @property
    def is_tensor(self):
        return isinstance(self.values, torch.Tensor)

    def take(self, indices):
        """The rows at ``indices`` (a 1-D integer numpy array) as a new ``RowData``."""
        if self.is_sparse:
            return RowData(self.values[indices])
        if not self.is_tensor:
            indices = np.asarray(indices, dtype=np.int64)
            return RowData(self.values, indices if self.rows is None else self.rows[indices])
        index = torch.as_tensor(indices, dtype=torch.long, device=self.values.device)
        return RowData(self.values.index_select(0, index))

    def batch(self, rows, device, dtype=torch.float32):
        """Dense tensor of ``dtype`` (float32 or float64) on ``device`` of the rows ``rows``.

        ``rows`` is a slice or a 1-D long tensor of row positions (on the data's
        device for a tensor, on the CPU otherwise). A tensor's rows keep its dtype.
        """
        if self.is_sparse:
            if isinstance(rows, torch.Tensor):
                rows = rows.cpu().numpy()
            dense = _convert(self.values[rows].toarray(), dtype)
            return torch.from_numpy(dense).to(device, non_blocking=True)
        if not self.is_tensor:
            return torch.from_numpy(self._read_rows(rows, dtype)).to(device, non_blocking=True)
        if not isinstance(rows, slice):
            if rows.device != self.values.device:
                rows = rows.to(self.values.device)
            return self.values.index_select(0, rows).to(device, non_blocking=True)
        return self.values[rows].to(device, non_blocking=True)

    def _read_rows(self, rows, dtype):
        """Copy of the selected rows of the array, in the order asked."""
        if isinstance(rows, slice) and self.rows is None:
            return np.array(_convert(self.values[rows], dtype), order="C")
        positions = np.arange(len(self))[rows] if isinstance(rows, slice) else rows.cpu().numpy()
        if self.rows is not None:
            positions = self.rows[positions]
        # Reading in ascending order turns random access into one forward sweep
        # over a file; putting the rows back in the asked order then gives the
        # very batch the in-memory path would, so results do not depend on the
        # input being on disk.
        ascending = np.argsort(positions, kind="stable")
        block = _convert(self.values[positions[ascending]], dtype)
        batch = np.empty(block.shape, dtype=block.dtype)
        batch[ascending] = block
        return batch


CORRUPTIONS = ("gaussian", "masking", "salt_and_pepper")


class Corruption:
    """How to corrupt a mini-batch of rows.

    Parameters
    ----------
    kind : {"gaussian", "masking", "salt_and_pepper"}
        ``"gaussian"`` adds normal noise of standard deviation ``level``;
        ``"masking"`` sets each entry to zero with probability ``level``;
        ``"salt_and_pepper"`` sets each entry with probability ``level`` to its
        column's ``low`` or ``high`` value (each with probability ``level / 2``).
    level : float
        Standard deviation or probability, as above. Zero leaves batches intact.
    low, high : torch.Tensor of shape (n_columns,) or None
        Per-column values of pepper and salt; needed for ``"salt_and_pepper"``.
    """

    def __init__(self, kind, level, low=None, high=None):
        if kind not in CORRUPTIONS:
            raise ValueError(f"the corruption must be one of {CORRUPTIONS}, got {kind!r}")
        if kind == "salt_and_pepper" and (low is None or high is None):
            raise ValueError("salt-and-pepper corruption needs the per-column low and high values")
        self.kind = kind
        self.level = float(level)
        self.low = low
        self.high = high

    def __call__(self, batch, generator):
        """Corrupted copy of ``batch`` (a float tensor), drawn with ``generator``.

        ``generator`` must live on ``batch``'s device.
        """
        if self.level == 0:
            return batch
        draw = torch.randn if self.kind == "gaussian" else torch.rand
        noise = draw(batch.shape, generator=generator, device=batch.device, dtype=batch.dtype)
        if self.kind == "gaussian":
            return batch + self.level * noise
        if self.kind == "masking":
            return batch.masked_fill(noise < self.level, 0.0)
        low = self.low.to(batch.device, batch.dtype)
        high = self.high.to(batch.device, batch.dtype)
        corrupted = torch.where(noise < self.level / 2, low, batch)
        return torch.where((noise >= self.level / 2) & (noise < self.level), high, corrupted)


class Recorruption:
    """Two noisy copies of noisy rows whose noises are independent (Recorrupted-to-Recorrupted).

    For rows ``y = x + n`` with white Gaussian noise ``n`` of standard
    deviation ``noise_std``, a fresh ``z`` of the same law gives the input
    ``y + scale * z`` and the target ``y - z / scale``: their noises ``n +
    scale * z`` and ``n - z / scale`` are jointly Gaussian and uncorrelated,
    hence independent, so the expected squared error against the target is
    the error against the clean ``x`` plus a constant (Pang et al., 2021,
    "Recorrupted-to-Recorrupted: unsupervised deep learning for image
    denoising"). A network cannot lower it by reproducing its input's noise.

    Parameters
    ----------
    noise_std : float
        Standard deviation of the noise already in the rows.
    scale : float
        ``alpha`` of the paper: the input's noise grows by a factor
        ``sqrt(1 + scale**2)``, the target's variance by ``1 + 1 / scale**2``.
    """

    # Batches take (input, target) from it, not an input for the rows as targets.
    pairs = True

    def __init__(self, noise_std, scale):
        self.noise_std = float(noise_std)
        self.scale = float(scale)

    def __call__(self, batch, generator):
        """``(input, target)`` copies of ``batch``, drawn with ``generator``."""
        noise = torch.randn(
            batch.shape, generator=generator, device=batch.device, dtype=batch.dtype
        )
        noise = noise * self.noise_std
        return batch + self.scale * noise, batch - noise / self.scale


class TrainingRows:
    """What the network learns from: target rows and what it sees of them.

    Parameters
    ----------
    targets : RowData
        The rows the network learns to output.
    inputs : RowData or None
        Given inputs for ``targets`` (same shape), for example noisy
        measurements of clean rows. ``None`` means the targets themselves,
        corrupted by ``corruption`` if there is one.
    corruption : Corruption or None
        Applied afresh to each training batch of targets when ``inputs`` is
        None; ``None`` means the input is the target (a plain autoencoder).
    """

    def __init__(self, targets, inputs=None, corruption=None):
        if inputs is not None and (len(inputs), inputs.n_columns) != (
            len(targets),
            targets.n_columns,
        ):
            raise ValueError(
                f"inputs of shape {(len(inputs), inputs.n_columns)} do not match targets of "
                f"shape {(len(targets), targets.n_columns)}"
            )
        self.targets = targets
        self.inputs = inputs
        self.corruption = corruption

    def __len__(self):
        return len(self.targets)

    def take(self, indices):
        """The rows at ``indices`` (a 1-D integer numpy array) as new ``TrainingRows``."""
        inputs = None if self.inputs is None else self.inputs.take(indices)
        return TrainingRows(self.targets.take(indices), inputs, self.corruption)


def epoch_seed(base_seed, epoch):
    """Seed of the row order of pass ``epoch`` (well mixed, reproducible)."""
    return np.random.SeedSequence([int(base_seed), int(epoch)]).generate_state(1)[0]


def steps_per_epoch(n_rows, batch_size):
    """Gradient steps in one pass over ``n_rows`` rows in batches of ``batch_size``.

    The last, shorter batch is a step too (as :class:`Batches` trains it), and
    a pass makes at least one.
    """
    return max(1, math.ceil(n_rows / batch_size))


def pass_seeds(base_seed, pass_number):
    """Seeds of the row order and of the corruption of one pass over the data."""
    corruption_seed = np.random.SeedSequence([int(base_seed), int(pass_number), 1])
    return epoch_seed(base_seed, pass_number), corruption_seed.generate_state(1)[0]


def draw_seed(base_seed, pass_number):
    """Seed of what the network and its loss draw themselves in a run from ``pass_number``.

    For example a variational code's noise or a contractive penalty's random
    projections; distinct from the order and corruption seeds of the same pass.
    """
    return np.random.SeedSequence([int(base_seed), int(pass_number), 2]).generate_state(1)[0]


class Batches:
    """Iterable of ``(input, target)`` mini-batches over :class:`TrainingRows`.

    Parameters
    ----------
    rows : TrainingRows
    batch_size : int
    device : str or torch.device
    seeds_for_pass : callable or None
        Returns ``(order_seed, corruption_seed)`` of the next pass (see
        :func:`pass_seeds`); called once at the start of every pass that
        draws an order or a corruption. ``None`` visits the rows in order and
        never corrupts them (inference).
    shuffle : bool, default=True
        Visit the rows in a fresh permutation each pass (training) or in order;
        a pass of a single batch holding every row visits them in order.
    dtype : torch.dtype, default=torch.float32
        Of the batches read from numpy and sparse rows (tensors keep theirs).
    shard : tuple of (int, int) or None, default=None
        ``(rank, world_size)``: this process takes every ``world_size``-th batch
        position of the pass's order, starting at ``rank``, padded by wrapping
        round so every process takes the same number of steps (distributed
        training, where each step is a collective).

    The last, shorter batch is kept: with fewer rows than ``batch_size`` there is
    one batch of all rows.
    """

    def __init__(
        self,
        rows,
        batch_size,
        device,
        seeds_for_pass=None,
        shuffle=True,
        shard=None,
        dtype=torch.float32,
    ):
        self.rows = rows
        self.dtype = dtype
        self.batch_size = int(batch_size)
        self.device = device
        self.seeds_for_pass = seeds_for_pass
        self.shuffle = shuffle and seeds_for_pass is not None
        self.shard = shard

    def __len__(self):
        return len(self._starts())

    def _starts(self):
        n_rows = len(self.rows)
        if self.shard is None:
            return range(0, n_rows, self.batch_size)
        rank, world_size = self.shard
        # Each global step takes world_size local batches of batch_size rows.
        n_steps = math.ceil(n_rows / (self.batch_size * world_size))
        return [(step * world_size + rank) * self.batch_size for step in range(n_steps)]

    def _positions(self, order, start):
        n_rows = len(self.rows)
        stop = start + self.batch_size
        if self.shard is not None and stop > n_rows:
            # Wrap round so every process's last step has a batch.
            positions = torch.arange(start, stop) % n_rows
            return positions if order is None else order[positions]
        if order is None:
            return slice(start, stop)
        return order[start:stop]

    def __iter__(self):
        order = None
        noise_generator = None
        targets, inputs = self.rows.targets, self.rows.inputs
        corruption = self.rows.corruption if self.seeds_for_pass is not None else None
        # One batch of every row needs no order: its loss is the mean over the
        # rows, the same in any order to rounding (a small table's detector
        # members train on a few hundred such passes).
        shuffle = self.shuffle and (self.shard is not None or len(self.rows) > self.batch_size)
        noisy = corruption is not None and inputs is None
        if self.seeds_for_pass is not None and (shuffle or noisy):
            order_seed, corruption_seed = self.seeds_for_pass()
            if shuffle:
                generator = torch.Generator().manual_seed(int(order_seed))
                order = torch.randperm(len(self.rows), generator=generator)
            if noisy:
                noise_generator = torch.Generator(device=torch.device(self.device))
                noise_generator.manual_seed(int(corruption_seed))
        if order is not None and targets.is_tensor:
            # Once per pass, not once per batch: the index lives with the rows.
            order = order.to(targets.values.device)
        size = self.batch_size
        for start in self._starts():
            if self.shard is not None:
                positions = self._positions(order, start)
            else:
                positions = (
                    slice(start, start + size) if order is None else order[start : start + size]
                )
            target = targets.batch(positions, self.device, self.dtype)
            if inputs is not None:
                source = inputs.batch(positions, self.device, self.dtype)
            elif noise_generator is not None and getattr(corruption, "pairs", False):
                source, target = corruption(target, noise_generator)
            elif noise_generator is not None:
                source = corruption(target, noise_generator)
            else:
                source = target
            yield source, target


def map_rows(
    values,
    function,
    n_outputs,
    device,
    dtype,
    compute_dtype=torch.float32,
    batch_size=EVALUATION_BATCH_SIZE,
):
    """Apply ``function`` (tensor -> tensor) to the rows of ``values`` in batches.

    ``values`` is a numpy array (memmaps included) or a scipy sparse matrix.
    Returns a numpy array of ``dtype`` with ``n_outputs`` columns, computed in
    ``compute_dtype`` batch by batch through :class:`Batches`, without gradients.
    """
    output = np.empty((values.shape[0], n_outputs), dtype=dtype)
    batches = Batches(TrainingRows(RowData(values)), batch_size, device, dtype=compute_dtype)
    with torch.no_grad():
        for start, (rows, _) in zip(range(0, values.shape[0], batch_size), batches):
            output[start : start + batch_size] = function(rows).cpu().numpy()
    return output
