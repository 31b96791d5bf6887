"""Callbacks the engine adds to every net: stopping, divergence, clipping, progress.

They speak of losses, epochs and batches only; the estimators translate what
they report into their own parameters' names.
"""

import math

from skorch.callbacks import Callback, EarlyStopping

from ..exceptions import TrainingDivergedError

# A training loss this many times the reference (the loss of the untrained
# network, or of predicting the mean where the caller knows it) is not an
# unlucky epoch: it is three orders of magnitude, and training has diverged.
DIVERGENCE_GROWTH = 1e3


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
        validated = [record for record in run if "valid_loss" in record]
        if validated:
            key, record = "valid_loss", min(validated, key=lambda r: r["valid_loss"])
        else:
            key, record = "train_loss", run[-1]
        value = record[key]
        if value > self.growth * reference:
            self._raise(
                f"the {key.replace('_', ' ')} ended at {value:.4g}, {value / reference:.3g} "
                f"times its starting value of {reference:.4g}",
                record["epoch"],
            )

    @staticmethod
    def _raise(what, epoch, batch=None):
        where = f"epoch {epoch}" + ("" if batch is None else f", batch {batch}")
        raise TrainingDivergedError(f"Training diverged: {what} at {where}.")
