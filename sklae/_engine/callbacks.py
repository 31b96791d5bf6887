"""Callbacks the engine adds to every net: stopping, divergence, schedule, progress.

They speak of losses, epochs and batches only; the estimators translate what
they report into their own parameters' names.
"""

import copy
import math
import sys
import time

import numpy as np
import torch
from skorch.callbacks import Callback, EarlyStopping

from ..exceptions import TrainingDivergedError
from .data import steps_per_epoch

# Key of an optimiser parameter group's share of the net's learning rate (a
# group without it trains at the full rate).
RATE_FACTOR = "rate_factor"

# A training loss this many times the reference (the loss of the untrained
# network, or of predicting the mean where the caller knows it) is not an
# unlucky epoch: it is three orders of magnitude, and training has diverged.
DIVERGENCE_GROWTH = 1e3


def set_learning_rate(optimizer, rate):
    """Set the optimiser's rate to ``rate``, each parameter group at its share of it."""
    for group in optimizer.param_groups:
        group["lr"] = rate * group.get(RATE_FACTOR, 1.0)


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
        if (
            self.load_best
            and self.best_model_weights_ is not None
            and net.history
            and self.best_epoch_ == net.history[-1, "epoch"]
        ):
            # skorch restores nothing when the last epoch is the best, taking the
            # module to hold its weights; with a WeightAverage it holds the last
            # step's, and the epoch was validated (and is kept) with the average.
            net.module_.load_state_dict(self.best_model_weights_)
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


# Weights and optimiser states that shrink without bound (a weight that only
# weight decay moves, Adam's moments of a weight without gradient) pass into
# float32's subnormal range (below 2**-126, about 1.2e-38), where x86 CPUs
# compute up to a hundredfold slower. Entries below TINY_VALUE are set to zero
# every FLUSH_INTERVAL_STEPS training steps. At 2**-80 (about 8e-25) a weight
# moves no output visibly, and a second moment's square root (1e-12) is
# nothing beside Adam's epsilon (1e-8); the 46 binary orders left above the
# subnormal range take more than the interval's steps at the fastest decay
# measured (20000 Fashion-MNIST images, alpha=1e-4: at 2**-100 some epochs
# still slowed down). A zeroed weight without gradient stays zero.
TINY_VALUE = 2.0**-80
FLUSH_INTERVAL_STEPS = 128


def flush_tiny_(tensors):
    """Set the entries of floating-point ``tensors`` below ``TINY_VALUE`` in size to zero."""
    for tensor in tensors:
        if tensor.is_floating_point():
            tensor.masked_fill_(tensor.abs() < TINY_VALUE, 0.0)


class TinyValueFlush(Callback):
    """Keep the weights and the optimiser's state out of the subnormal range.

    Every ``interval_steps`` training steps, at the start of an epoch, entries
    smaller than ``TINY_VALUE`` of the module's parameters, the optimiser's
    state and any other callback's ``flushable_tensors()`` become zero, which
    is what a CPU's flush-to-zero mode would do for subnormal values, without
    changing a mode of the user's threads (torch's worker threads take it from
    the main thread only when they start). Measured on 20000 Fashion-MNIST
    images with ``alpha=1e-4``: 0.6 s per epoch throughout instead of 14 s per
    epoch from epoch 23 on.
    """

    def __init__(self, interval_steps=FLUSH_INTERVAL_STEPS):
        self.interval_steps = interval_steps

    def initialize(self):
        # Steps count across runs, so that partial_fit's short runs flush too.
        self.steps_since_flush_ = 0
        return super().initialize()

    def on_epoch_begin(self, net, dataset_train=None, **kwargs):
        if self.steps_since_flush_ >= self.interval_steps:
            self.steps_since_flush_ = 0
            with torch.no_grad():
                flush_tiny_(net.module_.parameters())
                flush_tiny_(
                    value
                    for state in net.optimizer_.state.values()
                    for value in state.values()
                    if torch.is_tensor(value)
                )
                for _, callback in net.callbacks_:
                    if hasattr(callback, "flushable_tensors"):
                        flush_tiny_(callback.flushable_tensors())
        if dataset_train is not None:
            self.steps_since_flush_ += steps_per_epoch(len(dataset_train), net.batch_size)


class WeightAverage(Callback):
    """Validate, and keep, a moving average of the weights instead of the last step's.

    An exponential moving average of the weights over about ``epochs`` epochs
    (Polyak and Juditsky, 1992; the "EMA" of modern training recipes) is
    updated after every training step. Each epoch's validation rows are
    scored with the average swapped into the module, so the epoch an early
    stopper keeps is an average; training goes on from the weights of the
    last step. The average smooths the noise of the last steps: where early
    stopping ends a fit at a high learning rate, the average is the better
    model.

    Each step's weights count in proportion to their precision, the inverse
    of the learning rate they were taken at: around a minimum, the iterates of
    stochastic gradient descent scatter with a variance proportional to the
    rate (Mandt, Hoffman and Blei, 2017), and weights inversely proportional
    to the variances make the least noisy average of independent estimates.
    At a constant rate this is the plain moving average, which starts at the
    weights training starts from; where a schedule anneals the rate, the
    latest, least noisy steps weigh more, and as the rate reaches zero the
    average becomes the last step's weights. A plain average lagged behind
    weights that still improved: on 10000 MNIST images, 10 epochs annealed
    to zero left 0.0318 test error with it, 0.0282 with the last step's
    weights and 0.0284 with this one. The rate read is the first parameter
    group's (the groups follow one schedule, each at its share). A schedule
    that warms up from a small rate gives its first steps large weights,
    which fade at the average's pace.

    It must come after the early stopper in a net's callbacks: the stopper
    keeps the best epoch's weights in its ``on_epoch_end``, while the average
    is in the module, and this callback's ``on_epoch_end`` then puts the last
    step's weights back. Only a net that holds out validation rows needs it.
    """

    def __init__(self, epochs):
        self.epochs = epochs

    def on_train_begin(self, net, **kwargs):
        self.average_ = None
        self.last_step_ = None

    def on_epoch_begin(self, net, dataset_train=None, **kwargs):
        if self.average_ is None:
            # Views of the weights, which the optimiser updates in place.
            self._weights = [parameter.detach() for parameter in net.module_.parameters()]
            self.average_ = [weight.clone() for weight in self._weights]
            steps = steps_per_epoch(len(dataset_train), net.batch_size)
            # At a constant rate each step moves the average 1 / (epochs * steps
            # per epoch) of the way to the weights: a time constant of ``epochs``
            # epochs. The precisions of the steps so far decay at that pace.
            self.step_weight_ = 1.0 / max(1.0, self.epochs * steps)
            self.precision_sum_ = None

    def on_batch_end(self, net, training=False, **kwargs):
        if not training:
            return
        rate = float(net.optimizer_.param_groups[0]["lr"])
        if rate > 0:
            precision = 1.0 / rate
            if self.precision_sum_ is None:
                # The weights training starts from count as a time constant's
                # steps at the first rate, as they do in the plain average: a
                # network started at a known solution (PCA's) stays near it in
                # the first epochs' averages, which early stopping may keep.
                self.precision_sum_ = precision / self.step_weight_
            self.precision_sum_ = (1.0 - self.step_weight_) * self.precision_sum_ + precision
            weight = precision / self.precision_sum_
        else:
            # The limit of a vanishing rate: no noise, the average is the weights.
            weight = 1.0
        # One fused update of every tensor, as torch.optim's own updates.
        torch._foreach_lerp_(self.average_, self._weights, weight)

    def on_batch_begin(self, net, training=False, **kwargs):
        if not training and self.last_step_ is None:
            # The first validation batch of an epoch: score the average.
            self.last_step_ = [weight.clone() for weight in self._weights]
            torch._foreach_copy_(self._weights, self.average_)

    def on_epoch_end(self, net, **kwargs):
        if self.last_step_ is not None:
            torch._foreach_copy_(self._weights, self.last_step_)
            self.last_step_ = None

    def flushable_tensors(self):
        """The average, for :class:`TinyValueFlush`: it decays as the weights do."""
        return self.average_ or []

    def on_train_end(self, net, **kwargs):
        # A net is pickled with its callbacks: no copies of its weights with them.
        self._weights = self.average_ = self.last_step_ = None


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


class CosineLearningRate(Callback):
    """Anneal the optimiser's learning rate to zero over ``epochs`` epochs, step by step.

    The rate of training step ``t`` of ``T`` is ``lr * (1 + cos(pi * t / T)) / 2``
    (Loshchilov and Hutter, *SGDR*, ICLR 2017), where ``lr`` is the net's rate
    and ``T`` the steps of ``epochs`` passes over the training rows. A constant
    rate leaves Adam's iterates jittering around a minimum at the size of its
    last steps; shrinking the steps to zero over a known budget ends with
    small steps, and the budget's end is planned rather than a failure to
    converge. At the end of the run the optimiser's rate is set back to
    ``lr``, so that a later run starts from it. A parameter group that trains
    at a share of the rate (its ``RATE_FACTOR`` entry) keeps its share.
    """

    def __init__(self, epochs):
        self.epochs = epochs

    def on_train_begin(self, net, **kwargs):
        self.steps_done_ = 0
        self.total_steps_ = None

    def on_epoch_begin(self, net, dataset_train=None, **kwargs):
        if self.total_steps_ is None and dataset_train is not None:
            steps = steps_per_epoch(len(dataset_train), net.batch_size)
            self.total_steps_ = max(1, self.epochs * steps)

    def on_batch_begin(self, net, training=False, **kwargs):
        if not training or self.total_steps_ is None:
            return
        progress = min(self.steps_done_, self.total_steps_) / self.total_steps_
        self._set_rate(net, net.lr * 0.5 * (1.0 + math.cos(math.pi * progress)))
        self.steps_done_ += 1

    def on_train_end(self, net, **kwargs):
        self._set_rate(net, net.lr)

    @staticmethod
    def _set_rate(net, rate):
        set_learning_rate(net.optimizer_, rate)


class ProgressReport(Callback):
    """One line per epoch on standard error once a run has taken ``after_seconds``.

    Short fits stay silent; a long one says where it is (epoch, losses, seconds
    per epoch, at most how long is left) without being asked, in a terminal and
    in a notebook alike, and a last line says how it ended. Lines come at most
    every ``every_seconds``, so fast epochs do not flood the output.
    """

    def __init__(self, epochs, after_seconds=10.0, every_seconds=5.0, stream=None):
        self.epochs = epochs
        self.after_seconds = after_seconds
        self.every_seconds = every_seconds
        self.stream = stream

    def on_train_begin(self, net, **kwargs):
        self.start_ = time.perf_counter()
        self.last_line_ = None
        self.first_epoch_ = len(net.history)
        self.reported_ = False

    def _write(self, text):
        print(text, file=self.stream if self.stream is not None else sys.stderr, flush=True)

    def on_epoch_end(self, net, **kwargs):
        now = time.perf_counter()
        elapsed = now - self.start_
        if elapsed < self.after_seconds:
            return
        if self.last_line_ is not None and now - self.last_line_ < self.every_seconds:
            return
        self.last_line_ = now
        self.reported_ = True
        record = net.history[-1]
        done = len(net.history) - self.first_epoch_
        per_epoch = elapsed / max(1, done)
        losses = f"train loss {record['train_loss']:.4g}"
        if "valid_loss" in record:
            losses += f", validation loss {record['valid_loss']:.4g}"
        left = per_epoch * (self.epochs - done)
        self._write(
            f"[sklae] epoch {done}/{self.epochs}: {losses}; {per_epoch:.2f} s per epoch, "
            f"at most {_duration(left)} left"
        )

    def on_train_end(self, net, **kwargs):
        if not getattr(self, "reported_", False):
            return
        done = len(net.history) - self.first_epoch_
        self._write(
            f"[sklae] trained {done} epochs in {_duration(time.perf_counter() - self.start_)}"
        )


def _duration(seconds):
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"
