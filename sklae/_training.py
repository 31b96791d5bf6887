"""The training engine: a skorch ``NeuralNet`` with a fast data path.

skorch owns the epoch loop, the history, the callbacks and device handling. What
is replaced is the part that is slow for autoencoders on tabular data: skorch's
default ``DataLoader`` fetches rows one by one and collates them, which costs more
than the arithmetic of a small network. Here a batch is one ``index_select`` on a
float32 tensor (or one sparse row slice, densified), and the target is the input
itself, so nothing is copied twice.

This module imports torch, numpy, scipy and skorch, never the estimators.
"""

import math

import numpy as np
import torch
from scipy import sparse
from skorch import NeuralNet
from skorch.callbacks import Callback, EarlyStopping

from ._networks import AutoencoderObjective
from .exceptions import TrainingDivergedError

# Validation and prediction need no gradients, so they run in larger batches;
# the mean loss does not depend on the batch size.
EVALUATION_BATCH_SIZE = 4096


class RowData:
    """Rows of a matrix: a float32 torch tensor, a scipy CSR matrix or a numpy memmap.

    Sparse matrices stay sparse and memmaps stay on disk: :meth:`batch` reads,
    densifies and converts to float32 one mini-batch at a time. ``rows``, for a
    memmap only, selects a subset of its rows (a split) without copying them.
    """

    def __init__(self, values, rows=None):
        if not (isinstance(values, (torch.Tensor, np.ndarray)) or sparse.issparse(values)):
            raise TypeError(
                f"RowData holds a tensor, a sparse matrix or a memmap, got {type(values)}"
            )
        self.values = values
        self.rows = rows

    def __len__(self):
        return self.values.shape[0] if self.rows is None else len(self.rows)

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

    def batch(self, rows, device):
        """Dense float32 tensor on ``device`` of the rows selected by ``rows``.

        ``rows`` is a slice or a 1-D long tensor of row positions.
        """
        if self.is_sparse:
            if isinstance(rows, torch.Tensor):
                rows = rows.cpu().numpy()
            dense = self.values[rows].toarray()
            return torch.from_numpy(dense).to(device, non_blocking=True)
        if not self.is_tensor:
            return torch.from_numpy(self._read_rows(rows)).to(device, non_blocking=True)
        chunk = self.values[rows] if isinstance(rows, slice) else self.values.index_select(0, rows)
        return chunk.to(device, non_blocking=True)

    def _read_rows(self, rows):
        """float32 copy of the selected rows of the memmap, in the order asked."""
        if isinstance(rows, slice) and self.rows is None:
            return np.array(self.values[rows], dtype=np.float32, order="C")
        positions = np.arange(len(self))[rows] if isinstance(rows, slice) else rows.cpu().numpy()
        if self.rows is not None:
            positions = self.rows[positions]
        # Reading in ascending order turns random access into one forward sweep
        # over the file; putting the rows back in the asked order then gives the
        # very batch the in-memory path would, so results do not depend on the
        # input being on disk.
        ascending = np.argsort(positions, kind="stable")
        block = np.asarray(self.values[positions[ascending]], dtype=np.float32)
        batch = np.empty_like(block)
        batch[ascending] = block
        return batch


class RowBatches:
    """Iterable of ``(input, target)`` mini-batches over a :class:`RowData`.

    Parameters
    ----------
    data : RowData
    batch_size : int
    device : str or torch.device
    seed_for_epoch : callable or None
        Returns the seed of the next pass; ``None`` keeps the rows in order. The
        order of each pass is a fresh permutation derived from that seed alone,
        so training is reproducible across pickling and ``partial_fit``.

    The last, shorter batch is kept: with fewer rows than ``batch_size`` there is
    one batch of all rows.
    """

    def __init__(self, data, batch_size, device, seed_for_epoch=None):
        self.data = data
        self.batch_size = int(batch_size)
        self.device = device
        self.seed_for_epoch = seed_for_epoch

    def __len__(self):
        return math.ceil(len(self.data) / self.batch_size)

    def __iter__(self):
        n_rows = len(self.data)
        if self.seed_for_epoch is None:
            for start in range(0, n_rows, self.batch_size):
                batch = self.data.batch(slice(start, start + self.batch_size), self.device)
                yield batch, batch
            return
        generator = torch.Generator().manual_seed(int(self.seed_for_epoch()))
        order = torch.randperm(n_rows, generator=generator)
        if self.data.is_tensor:
            order = order.to(self.data.values.device)
        for start in range(0, n_rows, self.batch_size):
            batch = self.data.batch(order[start : start + self.batch_size], self.device)
            yield batch, batch


class RandomRowSplit:
    """skorch ``train_split``: hold out a random ``fraction`` of the rows.

    At least one row is held out and at least one is kept for training.
    """

    def __init__(self, fraction, seed):
        self.fraction = fraction
        self.seed = seed

    def __call__(self, dataset, y=None, **fit_params):
        n_rows = len(dataset)
        if n_rows < 2:
            raise ValueError(
                "early_stopping needs at least 2 samples to hold out a validation set, "
                f"got {n_rows}"
            )
        n_valid = min(max(1, round(self.fraction * n_rows)), n_rows - 1)
        order = np.random.default_rng(self.seed).permutation(n_rows)
        return dataset.take(np.sort(order[n_valid:])), dataset.take(np.sort(order[:n_valid]))


def epoch_seed(base_seed, epoch):
    """Seed of the shuffling of pass ``epoch`` (well mixed, reproducible)."""
    return np.random.SeedSequence([int(base_seed), int(epoch)]).generate_state(1)[0]


def noise_seed(base_seed, epoch):
    """Seed of torch's random state for a training run starting at pass ``epoch``.

    It seeds what modules draw themselves (a variational code's noise, dropout),
    distinct from the shuffling seed of the same pass.
    """
    return np.random.SeedSequence([int(base_seed), int(epoch), 2]).generate_state(1)[0]


class ImprovementStopper(EarlyStopping):
    """skorch's ``EarlyStopping`` that remembers whether it stopped the training.

    skorch stops a fit by raising ``KeyboardInterrupt``, the same signal as a user
    pressing Ctrl-C; ``stopped_`` tells the two apart.
    """

    def on_train_begin(self, net, **kwargs):
        super().on_train_begin(net, **kwargs)
        self.stopped_ = False

    def on_epoch_end(self, net, **kwargs):
        try:
            super().on_epoch_end(net, **kwargs)
        except KeyboardInterrupt:
            self.stopped_ = True
            raise


class DivergenceGuard(Callback):
    """Stop with :class:`TrainingDivergedError` once a recorded loss is not finite.

    Every mini-batch is checked, so a diverging fit stops within the epoch where
    the loss turns non-finite instead of training on to the epoch's end. The check
    reads the float that skorch already records per batch (one device sync per
    step that skorch makes anyway), so it adds no synchronisation of its own.
    """

    def __init__(self, learning_rate=None):
        self.learning_rate = learning_rate

    def _raise(self, key, value, where):
        raise TrainingDivergedError(
            f"Training diverged: the {key.replace('_', ' ')} became {value} at {where}. "
            f"Lower learning_rate_init (now {self.learning_rate}), scale the input (for "
            "example with StandardScaler or MinMaxScaler), or clip gradients with "
            "max_grad_norm (for example max_grad_norm=1.0)."
        )

    def on_batch_end(self, net, training=False, **kwargs):
        record = net.history[-1]
        batches = record["batches"]
        key = "train_loss" if training else "valid_loss"
        value = batches[-1].get(key) if batches else None
        if value is not None and not math.isfinite(value):
            batch = sum(key in entry for entry in batches)
            self._raise(key, value, f"epoch {record['epoch']}, batch {batch}")

    def on_epoch_end(self, net, **kwargs):
        record = net.history[-1]
        for key in ("train_loss", "valid_loss"):
            value = record.get(key)
            if value is not None and not math.isfinite(value):
                self._raise(key, value, f"epoch {record['epoch']}")


class AutoencoderNet(NeuralNet):
    """skorch ``NeuralNet`` that trains a module to reconstruct its input.

    Parameters are those of :class:`skorch.NeuralNet`, plus ``random_seed``, the
    base seed of the per-epoch shuffling. ``fit``/``partial_fit`` take a
    :class:`RowData`; ``y`` is ignored (the target is the input).
    """

    def __init__(self, *args, random_seed=0, **kwargs):
        super().__init__(*args, **kwargs)
        self.random_seed = random_seed

    def partial_fit(self, X, y=None, classes=None, **fit_params):
        # Random draws inside the module come from torch's global state: seed it
        # from this net's seed inside fork_rng, so that training is reproducible
        # and the caller's random state is left as it was.
        device = torch.device(self.device)
        devices = [device.index or 0] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(int(noise_seed(self.random_seed, len(self.history))))
            return super().partial_fit(X, y, classes, **fit_params)

    def get_dataset(self, X, y=None):
        if isinstance(X, RowData):
            return X
        return super().get_dataset(X, y)

    def get_iterator(self, dataset, training=False):
        if not isinstance(dataset, RowData):
            return super().get_iterator(dataset, training=training)
        if training:
            return RowBatches(
                dataset,
                self.batch_size,
                self.device,
                seed_for_epoch=lambda: epoch_seed(self.random_seed, len(self.history)),
            )
        return RowBatches(dataset, max(self.batch_size, EVALUATION_BATCH_SIZE), self.device)

    def infer(self, x, **fit_params):
        if torch.is_grad_enabled() and getattr(self.criterion_, "needs_input_gradient", False):
            # The contractive penalty differentiates the code with respect to the
            # input; in place, because get_loss receives this same tensor.
            x.requires_grad_(True)
        return self.module_(x, **fit_params)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        if isinstance(self.criterion_, AutoencoderObjective):
            return self.criterion_(y_pred, y_true, X, self.module_)
        if isinstance(y_pred, tuple):
            y_pred = y_pred[0]
        return self.criterion_(y_pred, y_true)

    def _set_training(self, training=True):
        # skorch sets the mode before every batch; walking the module tree each
        # time is measurable per-step overhead for small networks.
        if self.module_.training != training or self.criterion_.training != training:
            super()._set_training(training)


# ---------------------------------------------------------------------- denoising
#
# A denoising autoencoder trains on corrupted inputs against clean targets. The
# corruption is drawn afresh for every mini-batch of every epoch, from a generator
# seeded per epoch, so training is reproducible and never touches torch's global
# random state.

NOISE_KINDS = ("gaussian", "masking", "salt_and_pepper")

# Validation rows are corrupted the same way in every epoch, so that validation
# losses of different epochs compare; this pass number keys that fixed draw.
VALIDATION_PASS = 2**31 - 1


class Corruption:
    """How to corrupt a mini-batch of rows.

    Parameters
    ----------
    noise : {"gaussian", "masking", "salt_and_pepper"}
        ``"gaussian"`` adds normal noise of standard deviation ``level``;
        ``"masking"`` sets each entry to zero with probability ``level``;
        ``"salt_and_pepper"`` sets each entry with probability ``level`` to its
        feature's ``low`` or ``high`` value (each with probability ``level / 2``).
    level : float
        Standard deviation or probability, as above. Zero leaves batches intact.
    low, high : torch.Tensor of shape (n_features,) or None
        Per-feature values of pepper and salt; needed for ``"salt_and_pepper"``.
    """

    def __init__(self, noise, level, low=None, high=None):
        if noise not in NOISE_KINDS:
            raise ValueError(f"noise must be one of {NOISE_KINDS}, got {noise!r}")
        if noise == "salt_and_pepper" and (low is None or high is None):
            raise ValueError("noise='salt_and_pepper' needs the per-feature low and high values")
        self.noise = noise
        self.level = float(level)
        self.low = low
        self.high = high

    def __call__(self, batch, generator):
        """Corrupted copy of ``batch`` (a float tensor), drawn with ``generator``.

        ``generator`` must live on ``batch``'s device.
        """
        if self.level == 0:
            return batch
        draw = torch.rand if self.noise != "gaussian" else torch.randn
        noise = draw(batch.shape, generator=generator, device=batch.device, dtype=batch.dtype)
        if self.noise == "gaussian":
            return batch + self.level * noise
        if self.noise == "masking":
            return batch.masked_fill(noise < self.level, 0.0)
        low = self.low.to(batch.device, batch.dtype)
        high = self.high.to(batch.device, batch.dtype)
        corrupted = torch.where(noise < self.level / 2, low, batch)
        return torch.where((noise >= self.level / 2) & (noise < self.level), high, corrupted)


class DenoisingRows:
    """Training rows of a denoising autoencoder: clean targets and their inputs.

    Parameters
    ----------
    targets : RowData
        The clean rows, which the network learns to output.
    inputs : RowData or None
        Given noisy versions of ``targets`` (same shape). ``None`` means the
        inputs are made by applying ``corruption`` to the targets.
    corruption : Corruption or None
        Applied to the targets when ``inputs`` is None; ``None`` means no noise.
    """

    def __init__(self, targets, inputs=None, corruption=None):
        if inputs is not None and _shape(inputs) != _shape(targets):
            raise ValueError(
                f"inputs of shape {_shape(inputs)} do not match targets of shape "
                + str(_shape(targets))
            )
        self.targets = targets
        self.inputs = inputs
        self.corruption = corruption

    def __len__(self):
        return len(self.targets)

    def take(self, indices):
        """The rows at ``indices`` (a 1-D integer numpy array) as new ``DenoisingRows``."""
        inputs = None if self.inputs is None else self.inputs.take(indices)
        return DenoisingRows(self.targets.take(indices), inputs, self.corruption)


def _shape(data):
    """(rows, columns) of a :class:`RowData`, also for a subset of a memmap's rows."""
    return (len(data), data.values.shape[1])


def _positions_for(data, positions):
    """Row positions in the form ``data.batch`` takes, on the data's device."""
    if isinstance(positions, slice) or not data.is_tensor:
        return positions
    return positions.to(data.values.device)


def pass_seeds(base_seed, pass_number):
    """Seeds of the row order and of the corruption of one pass over the data.

    The order seed equals :func:`epoch_seed`, so with zero noise a denoising net
    sees its batches in the same order as an :class:`AutoencoderNet`.
    """
    corruption_seed = np.random.SeedSequence([int(base_seed), int(pass_number), 1])
    return epoch_seed(base_seed, pass_number), corruption_seed.generate_state(1)[0]


class DenoisingBatches:
    """Iterable of ``(input, clean target)`` mini-batches over :class:`DenoisingRows`.

    Parameters
    ----------
    rows : DenoisingRows
    batch_size : int
    device : str or torch.device
    seeds_for_pass : callable
        Returns ``(order_seed, corruption_seed)`` of the next pass (see
        :func:`pass_seeds`); called once at the start of every pass.
    shuffle : bool
        Visit the rows in a fresh permutation each pass (training) or in order.
    """

    def __init__(self, rows, batch_size, device, seeds_for_pass, shuffle):
        self.rows = rows
        self.batch_size = int(batch_size)
        self.device = device
        self.seeds_for_pass = seeds_for_pass
        self.shuffle = shuffle

    def __len__(self):
        return math.ceil(len(self.rows) / self.batch_size)

    def __iter__(self):
        n_rows = len(self.rows)
        order_seed, corruption_seed = self.seeds_for_pass()
        order = None
        if self.shuffle:
            order = torch.randperm(n_rows, generator=torch.Generator().manual_seed(int(order_seed)))
        noise_generator = torch.Generator(device=torch.device(self.device))
        noise_generator.manual_seed(int(corruption_seed))
        targets, inputs = self.rows.targets, self.rows.inputs
        for start in range(0, n_rows, self.batch_size):
            if order is None:
                positions = slice(start, start + self.batch_size)
            else:
                positions = order[start : start + self.batch_size]
            target = targets.batch(_positions_for(targets, positions), self.device)
            if inputs is not None:
                source = inputs.batch(_positions_for(inputs, positions), self.device)
            elif self.rows.corruption is not None:
                source = self.rows.corruption(target, noise_generator)
            else:
                source = target
            yield source, target


class DenoisingNet(AutoencoderNet):
    """:class:`AutoencoderNet` that trains on corrupted inputs against clean targets.

    ``fit``/``partial_fit`` take :class:`DenoisingRows`. Training inputs are
    corrupted afresh in every epoch; validation inputs are corrupted with one
    fixed draw, so the validation loss measures denoising and compares across
    epochs. Any other data is handled as by :class:`AutoencoderNet`.
    """

    def get_dataset(self, X, y=None):
        if isinstance(X, DenoisingRows):
            return X
        return super().get_dataset(X, y)

    def get_iterator(self, dataset, training=False):
        if not isinstance(dataset, DenoisingRows):
            return super().get_iterator(dataset, training=training)
        if training:
            return DenoisingBatches(
                dataset,
                self.batch_size,
                self.device,
                seeds_for_pass=lambda: pass_seeds(self.random_seed, len(self.history)),
                shuffle=True,
            )
        return DenoisingBatches(
            dataset,
            max(self.batch_size, EVALUATION_BATCH_SIZE),
            self.device,
            seeds_for_pass=lambda: pass_seeds(self.random_seed, VALIDATION_PASS),
            shuffle=False,
        )
