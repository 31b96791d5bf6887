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

from .exceptions import TrainingDivergedError

# Validation and prediction need no gradients, so they run in larger batches;
# the mean loss does not depend on the batch size.
EVALUATION_BATCH_SIZE = 4096


class RowData:
    """Rows of a float32 matrix: a dense torch tensor or a scipy CSR matrix.

    Sparse matrices stay sparse; :meth:`batch` densifies one mini-batch at a time.
    """

    def __init__(self, values):
        if not (isinstance(values, torch.Tensor) or sparse.issparse(values)):
            raise TypeError(f"RowData holds a tensor or a sparse matrix, got {type(values)}")
        self.values = values

    def __len__(self):
        return self.values.shape[0]

    @property
    def is_sparse(self):
        return not isinstance(self.values, torch.Tensor)

    def take(self, indices):
        """The rows at ``indices`` (a 1-D integer numpy array) as a new ``RowData``."""
        if self.is_sparse:
            return RowData(self.values[indices])
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
        chunk = self.values[rows] if isinstance(rows, slice) else self.values.index_select(0, rows)
        return chunk.to(device, non_blocking=True)


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
        if not self.data.is_sparse:
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
    """Stop with :class:`TrainingDivergedError` once a recorded loss is not finite."""

    def __init__(self, learning_rate=None):
        self.learning_rate = learning_rate

    def on_epoch_end(self, net, **kwargs):
        record = net.history[-1]
        for key in ("train_loss", "valid_loss"):
            value = record.get(key)
            if value is not None and not math.isfinite(value):
                raise TrainingDivergedError(
                    f"Training diverged: the {key.replace('_', ' ')} became {value} at epoch "
                    f"{record['epoch']}. Lower learning_rate_init (now {self.learning_rate}), "
                    "scale the input (for example with StandardScaler or MinMaxScaler), "
                    "or clip gradients with skorch.callbacks.GradientNormClipping in callbacks."
                )


class AutoencoderNet(NeuralNet):
    """skorch ``NeuralNet`` that trains a module to reconstruct its input.

    Parameters are those of :class:`skorch.NeuralNet`, plus ``random_seed``, the
    base seed of the per-epoch shuffling. ``fit``/``partial_fit`` take a
    :class:`RowData`; ``y`` is ignored (the target is the input).
    """

    def __init__(self, *args, random_seed=0, **kwargs):
        super().__init__(*args, **kwargs)
        self.random_seed = random_seed

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
        return self.module_(x, **fit_params)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        return self.criterion_(y_pred, y_true)

    def _set_training(self, training=True):
        # skorch sets the mode before every batch; walking the module tree each
        # time is measurable per-step overhead for small networks.
        if self.module_.training != training or self.criterion_.training != training:
            super()._set_training(training)
