"""Callbacks the engine adds to every net: stopping, divergence, clipping, progress.

They speak of losses, epochs and batches only; the estimators translate what
they report into their own parameters' names.
"""

import copy
import math

import numpy as np
from skorch.callbacks import Callback, EarlyStopping

from ..exceptions import TrainingDivergedError

# A training loss this many times the reference (the loss of the untrained
# network, or of predicting the mean where the caller knows it) is not an
# unlucky epoch: it is three orders of magnitude, and training has diverged.
DIVERGENCE_GROWTH = 1e3


class ImprovementStopper(EarlyStopping):
    """skorch's ``EarlyStopping`` that can count where training starts from as an epoch.

    With ``score_start`` (for weights worth keeping: a known solution, or a
    fitted model trained further), when it watches a validation loss with
    ``load_best``, the weights training starts from are scored on the
    validation rows before the first epoch, and they are the best so far. At
    the end, the best epoch replaces the start only if it is better by more
    than one standard error of the paired difference over ``CHUNKS`` slices
    of the validation rows: the one-standard-error rule
    of model selection (Breiman et al., 1984; Hastie, Tibshirani and Friedman,
    *The Elements of Statistical Learning*, section 7.10), which keeps the
    simpler model when a small validation set cannot tell them apart. A network
    started at a known solution (PCA's) thus ends worse than it on held-out
    rows only by chance of the validation draw, and then by less than the noise.

    skorch stops a fit by raising ``KeyboardInterrupt``, the same signal as a user
    pressing Ctrl-C; ``stopped_`` tells the two apart; ``kept_start_`` says
    whether the run ended with the weights it started from.
    """

    # Slices of the validation rows whose paired losses estimate the noise.
    CHUNKS = 16

    def __init__(self, *args, score_start=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.score_start = score_start

    def on_train_begin(self, net, **kwargs):
        super().on_train_begin(net, **kwargs)
        self.stopped_ = False
        self.kept_start_ = False
        self.start_score_ = None
        self._start = None

    def _chunk_losses(self, net, dataset):
        """Mean loss and row count of each of up to ``CHUNKS`` slices of ``dataset``."""
        size = max(1, math.ceil(len(dataset) / self.CHUNKS))
        iterator = net.get_iterator(dataset, training=False)
        iterator.batch_size = size
        losses, rows = [], []
        for batch in iterator:
            losses.append(float(net.validation_step(batch)["loss"].item()))
            rows.append(len(batch[0]))
        return np.array(losses), np.array(rows)

    def on_epoch_begin(self, net, dataset_valid=None, **kwargs):
        if not self.score_start or self._start is not None or dataset_valid is None:
            return
        if not self.load_best:
            return
        if self.monitor != "valid_loss":
            return
        losses, rows = self._chunk_losses(net, dataset_valid)
        self.start_score_ = float(np.average(losses, weights=rows))
        self._start = {
            "dataset": dataset_valid,
            "losses": losses,
            "weights": copy.deepcopy(net.module_.state_dict()),
        }
        self.dynamic_threshold_ = self._calc_new_threshold(self.start_score_)
        # The start is the end of the previous epoch (0 before any).
        self.best_epoch_ = net.history[-1, "epoch"] - 1
        self.best_model_weights_ = self._start["weights"]

    def on_train_end(self, net, **kwargs):
        super().on_train_end(net, **kwargs)
        start, self._start = self._start, None
        if start is None:
            return
        if self.best_model_weights_ is start["weights"]:
            self.kept_start_ = True
            return
        # The module now holds the best epoch's weights.
        losses, _ = self._chunk_losses(net, start["dataset"])
        gain = start["losses"] - losses
        # One validation row gives no estimate of the noise: keep the start.
        noise = gain.std(ddof=1) / math.sqrt(len(gain)) if len(gain) > 1 else math.inf
        if not gain.mean() > noise:
            net.module_.load_state_dict(start["weights"])
            self.kept_start_ = True
            self._sink(
                "Keeping the starting weights: the best epoch is not better on the "
                "validation rows by more than one standard error.",
                verbose=net.verbose,
            )

    def on_epoch_end(self, net, **kwargs):
        try:
            super().on_epoch_end(net, **kwargs)
        except KeyboardInterrupt:
            self.stopped_ = True
            raise


class DivergenceGuard(Callback):
    """Stop with :class:`~sklae.exceptions.TrainingDivergedError` when training diverges.

    Two failures are caught:

    - a loss that is not finite, checked after every mini-batch, so a fit stops
      within the epoch where it happens (the check reads the float that skorch
      already records per batch, so it adds no device synchronisation);
    - a finite loss that ends a training run ``growth`` times (three orders of
      magnitude) above ``reference_loss``: the last epoch's training loss, or
      with validation the best validation loss of the run (the weights a
      stopper restores). Without a reference, the run's first training batch
      (the untrained network's loss) is the reference. It is judged at the end
      of the run, not per epoch: a large step can throw the loss up by many
      orders of magnitude for a few epochs from which training recovers
      (measured: 1.9e15 at epoch 1, below 10 by epoch 15 with clipped
      gradients), and such a fit has not diverged.

    Parameters
    ----------
    reference_loss : float or None, default=None
        A loss any working fit stays well below, such as the loss of
        predicting the mean of every column.
    growth : float, default=1e3
        How many times the reference a loss may end at before it counts as
        divergence.
    """

    def __init__(self, reference_loss=None, growth=DIVERGENCE_GROWTH):
        self.reference_loss = reference_loss
        self.growth = growth

    def on_train_begin(self, net, **kwargs):
        # Each fit (or partial_fit call) is judged against its own start.
        self.first_batch_loss_ = None
        self.first_epoch_ = len(net.history)

    def _reference(self):
        candidates = [
            loss
            for loss in (self.reference_loss, getattr(self, "first_batch_loss_", None))
            if loss is not None
        ]
        return max(candidates) if candidates else None

    def on_batch_end(self, net, training=False, **kwargs):
        record = net.history[-1]
        batches = record["batches"]
        key = "train_loss" if training else "valid_loss"
        value = batches[-1].get(key) if batches else None
        if value is None:
            return
        if not math.isfinite(value):
            batch = sum(key in entry for entry in batches)
            self._raise(f"the {key.replace('_', ' ')} became {value}", record["epoch"], batch)
        if training and getattr(self, "first_batch_loss_", None) is None:
            self.first_batch_loss_ = value

    def on_epoch_end(self, net, **kwargs):
        record = net.history[-1]
        for key in ("train_loss", "valid_loss"):
            value = record.get(key)
            if value is not None and not math.isfinite(value):
                self._raise(f"the {key.replace('_', ' ')} became {value}", record["epoch"])

    def on_train_end(self, net, **kwargs):
        run = [
            record
            for record in net.history[getattr(self, "first_epoch_", 0) :]
            if "train_loss" in record
        ]
        reference = self._reference()
        if not run or reference is None or reference <= 0:
            return
        value = run[-1]["train_loss"]
        if value > self.growth * reference:
            self._raise(
                f"the train loss ended at {value:.4g}, {value / reference:.3g} times its "
                f"starting value of {reference:.4g}",
                run[-1]["epoch"],
            )

    @staticmethod
    def _raise(what, epoch, batch=None):
        where = f"epoch {epoch}" + ("" if batch is None else f", batch {batch}")
        raise TrainingDivergedError(f"Training diverged: {what} at {where}.")
