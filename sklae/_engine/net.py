"""The skorch net the engine trains, built and re-configured from a plain plan.

:func:`build_net` turns a torch module, its loss and a :class:`TrainingPlan`
into an initialised :class:`AutoencoderNet`; :func:`configure_net` applies a
changed plan to a fitted net through skorch's own ``set_params`` (warm starts,
``partial_fit``); :func:`train` runs it and reports how training ended, each
run updating the parameters laid out flat (:func:`flat_adam`);
:func:`map_module` runs batched inference. The estimators describe, this module
trains: nothing here names an estimator parameter.

This module imports torch, numpy, scipy, skorch and the engine's own modules,
never the estimators.
"""

import contextlib
import copy
import fnmatch
import inspect
import operator
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.optim.optimizer as _optimizer_module
from scipy import sparse
from skorch import NeuralNet
from skorch.callbacks import GradientNormClipping, LRScheduler, ProgressBar
from skorch.dataset import unpack_data
from torch import nn

from ..exceptions import TrainingDivergedError
from .callbacks import (
    RATE_FACTOR,
    CosineLearningRate,
    DivergenceGuard,
    ImprovementStopper,
    ProgressReport,
    TinyValueFlush,
    WeightAverage,
    set_learning_rate,
)
from .data import (
    EVALUATION_BATCH_SIZE,
    VALIDATION_PASS,
    Batches,
    RowData,
    TrainingRows,
    as_float32_tensor,
    draw_seed,
    map_rows,
    pass_seeds,
)


@dataclass
class TrainingPlan:
    """How to train: the optimiser, the batches, when to stop, what to watch.

    Parameters
    ----------
    learning_rate : float
        Adam's step size.
    weight_decay : float
        L2 penalty on the weights (not the biases), as in ``MLPRegressor``.
    max_epochs : int
        Passes over the data of one :func:`train` call.
    batch_size : int
        Rows per training step.
    validation_fraction : float or None
        Share of rows held out to watch and restore the best epoch; ``None``
        watches the training loss and holds nothing out.
    patience : int
        Epochs without improvement before stopping.
    tol : float
        Relative improvement that counts.
    max_grad_norm : float or None
        Clip the norm of all gradients together; ``None`` does not clip.
    callbacks : list
        Further skorch callbacks, instances or ``(name, instance)`` pairs;
        copied into the net.
    verbose : int
        skorch's per-epoch table from 1, a progress bar per epoch from 2.
    device : str
        torch device to train on.
    seed : int
        Base seed of the draws of training: the row order and corruption of
        each pass, and what the network and its loss draw themselves.
    split_seed : int
        Seed of the choice of validation rows.
    reference_loss : float or None
        A loss any working fit stays well below (for example of predicting
        the mean); divergence is judged against it.
    score_start : bool
        Whether the weights training starts from are a model worth keeping (a
        known solution such as PCA's, or a fitted model trained further): with
        validation rows they are scored as an epoch and kept unless an epoch
        beats them by more than the noise of the validation rows.
    rate_reference_fan_in : int or None
        Scale the learning rate of each weight with more inputs per unit
        (fan-in) than this by ``rate_reference_fan_in / fan_in``
        (:func:`rate_factors`); ``None`` trains every weight at
        ``learning_rate``.
    learning_rate_schedule : {"constant", "cosine"}
        ``"cosine"`` anneals the rate to zero over ``max_epochs`` epochs
        (:class:`~.callbacks.CosineLearningRate`), unless ``callbacks``
        bring a skorch ``LRScheduler`` of their own, which then rules.
    report_after : float or None
        Seconds after which a run reports its progress on standard error
        (:class:`~.callbacks.ProgressReport`) when ``verbose`` is 0; ``None``
        never does.
    average_epochs : float or None
        With validation rows, score and keep a moving average of the weights
        over about this many epochs (:class:`~.callbacks.WeightAverage`)
        instead of the last step's; ``None`` keeps the last step's.
    adam_epsilon : float
        Adam's epsilon, in the units of the gradients (after ``gradient_scale``).
    gradient_scale : float
        Every step's gradients are multiplied by this before clipping and the
        update (loss scaling, as mixed-precision training does it; Micikevicius
        et al., 2018). A loss in the data's units has gradients and Adam
        moments in powers of those units, which float32 cannot hold for data
        far from unit spread: with ``1 / unit**2`` for a squared error they are
        those of data of spread one. Adam's step does not depend on a
        constant factor of the loss (but for epsilon), so the steps are those
        an epsilon scaled by ``unit**2`` would take, without the underflow.
    fixed_budget : bool
        Train exactly ``max_epochs`` epochs with nothing watching but the
        divergence check: no validation rows, no stopping rule (set
        ``patience`` to ``max_epochs``), schedule, clipping, averaging,
        progress report or further callbacks. Such a run skips skorch's
        per-batch and per-epoch bookkeeping (:meth:`AutoencoderNet.fit_loop`),
        which costs as much as the arithmetic of a step of a small network.
    """

    learning_rate: float
    weight_decay: float = 0.0
    max_epochs: int = 200
    batch_size: int = 256
    validation_fraction: float | None = None
    patience: int = 10
    tol: float = 1e-4
    max_grad_norm: float | None = None
    callbacks: list = field(default_factory=list)
    verbose: int = 0
    device: str = "cpu"
    seed: int = 0
    split_seed: int = 0
    reference_loss: float | None = None
    score_start: bool = False
    rate_reference_fan_in: int | None = None
    learning_rate_schedule: str = "constant"
    report_after: float | None = None
    average_epochs: float | None = None
    adam_epsilon: float = 1e-8
    gradient_scale: float = 1.0
    fixed_budget: bool = False

    def __post_init__(self):
        if self.fixed_budget and _watches(self):
            raise ValueError(
                "A fixed-budget plan trains with nothing watching: it takes no "
                "validation rows, stopping rule, schedule, clipping, averaging, "
                "progress report, verbosity or callbacks."
            )


def _watches(plan):
    """Whether anything but the divergence check watches a run of ``plan``."""
    return bool(
        plan.validation_fraction is not None
        or plan.patience < plan.max_epochs
        or plan.learning_rate_schedule != "constant"
        or plan.max_grad_norm is not None
        or plan.average_epochs is not None
        or plan.report_after is not None
        or plan.verbose
        or plan.callbacks
    )


@dataclass
class TrainingOutcome:
    """How a :func:`train` call ended."""

    epochs_run: int
    stopped_early: bool
    interrupted: bool
    kept_start: bool = False
    start_score: float | None = None
    # The divergence of a run whose starting weights were kept, if it diverged.
    diverged: str | None = None
    # The epoch, numbered as the history numbers them, whose weights the run
    # ended with (the one before its first when it kept its start); None when
    # no validation loss chose them.
    best_epoch: int | None = None


def held_out_count(n_rows, fraction):
    """Rows :class:`RandomRowSplit` holds out: ``fraction`` of them, at least one, not all."""
    return min(max(1, round(fraction * n_rows)), n_rows - 1)


class RandomRowSplit:
    """skorch ``train_split``: hold out a random ``fraction`` of the rows.

    At least one row is held out and at least one is kept for training.
    """

    def __init__(self, fraction, seed):
        self.fraction = fraction
        self.seed = seed

    def indices(self, n_rows):
        """Sorted indices of the training rows and of the validation rows."""
        if n_rows < 2:
            raise ValueError(f"holding out validation rows needs at least 2 rows, got {n_rows}")
        n_valid = held_out_count(n_rows, self.fraction)
        order = np.random.default_rng(self.seed).permutation(n_rows)
        return np.sort(order[n_valid:]), np.sort(order[:n_valid])

    def __call__(self, dataset, y=None, **fit_params):
        training, validation = self.indices(len(dataset))
        return dataset.take(training), dataset.take(validation)


def set_random_source(modules, generator):
    """Give every sub-module that draws random numbers the generator to draw from.

    Modules that draw (a variational code, a contractive penalty's projections)
    declare a ``noise_generator`` attribute; drawing from an explicit generator
    instead of torch's global state keeps fits in threads independent.
    """
    for module in modules:
        for part in module.modules():
            if hasattr(part, "noise_generator"):
                part.noise_generator = generator


class AutoencoderNet(NeuralNet):
    """skorch ``NeuralNet`` that trains a module to output its targets from its inputs.

    Parameters are those of :class:`skorch.NeuralNet`, plus ``random_seed``, the
    base seed of every draw of training, and ``fixed_budget`` (see
    :meth:`fit_loop`). ``fit``/``partial_fit`` take
    :class:`~sklae._engine.data.TrainingRows`; ``y`` is ignored.
    """

    # flat_adam lays the parameters out flat for each run (see there).
    flattens_optimizer = True

    def __init__(self, *args, random_seed=0, fixed_budget=False, gradient_scale=1.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.random_seed = random_seed
        self.fixed_budget = fixed_budget
        self.gradient_scale = gradient_scale

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        """skorch's loop; with ``fixed_budget``, the same steps without its bookkeeping.

        A fixed-budget run (:class:`TrainingPlan`) has no validation rows and
        no callback that acts per batch, so it takes the same batches (same
        seeds) and the same steps as skorch's loop, but skips the callback
        notifications per batch and per epoch and the per-batch history
        records: for the outlier detector's members (a few hundred weights,
        one batch per epoch on small tables) they took a third of the
        training time. A criterion with ``gradients_by_hand(module, inputs,
        targets)`` may compute a step's loss and gradients itself, without
        autograd (the same step to rounding), writing them into ``.grad``
        where autograd would add to zeroed ones. Each epoch's record holds its
        epoch number, training loss and batch count, as skorch writes them;
        the divergence check and the flush of tiny values run as their
        callbacks would, once per epoch.
        """
        # Nets pickled by releases before the parameter train as they did.
        if not getattr(self, "fixed_budget", False):
            return super().fit_loop(X, y, epochs=epochs, **fit_params)
        self.check_training_readiness()
        dataset = self.get_dataset(X, y)
        batches = self.get_iterator(dataset, training=True)
        callbacks = dict(self.callbacks_)
        guard, flush = callbacks["divergence_guard"], callbacks["tiny_value_flush"]
        epochs = self.max_epochs if epochs is None else epochs
        # A criterion may fill in the gradients itself, without autograd's
        # bookkeeping (its gradients_by_hand returns None where it cannot).
        by_hand = self._gradients_by_hand()
        self._set_training(True)
        for _ in range(epochs):
            # The record first: the batches' seeds are drawn from the epoch number.
            self.history.new_epoch()
            self.history.record("epoch", len(self.history))
            flush.on_epoch_begin(self, dataset_train=dataset)
            losses, sizes = [], []
            for inputs, targets in batches:
                # Gradients by hand are assigned, not accumulated: nothing to zero.
                loss = by_hand(self.module_, inputs, targets) if by_hand else None
                if loss is None:
                    self._zero_grad_optimizer()
                    loss = self.get_loss(self.infer(inputs), targets, X=inputs, training=True)
                    loss.backward()
                self._scale_gradients()
                self.optimizer_.step()
                losses.append(loss.detach())
                sizes.append(len(inputs))
            if guard.first_batch_loss_ is None:
                guard.first_batch_loss_ = float(losses[0])
            # skorch's train loss: the mean over the epoch's batches, weighted by
            # rows, in float64 as numpy's average takes it (without its call,
            # a tenth of a small member's step).
            losses = torch.stack(losses).double().cpu().tolist()
            train_loss = sum(map(operator.mul, losses, sizes)) / sum(sizes)
            self.history.record("train_loss", train_loss)
            self.history.record("train_batch_count", len(losses))
            guard.on_epoch_end(self)
        return self

    def partial_fit(self, X, y=None, classes=None, **fit_params):
        generator = torch.Generator(device=torch.device(self.device))
        generator.manual_seed(int(draw_seed(self.random_seed, len(self.history))))
        parts = [self.module_, self.criterion_]
        set_random_source(parts, generator)
        try:
            # The whole run, callbacks' on_train_begin included (a skorch
            # LRScheduler binds the optimiser there), updates flat parameters.
            with flat_adam(self):
                return super().partial_fit(X, y, classes, **fit_params)
        finally:
            # A generator is state of this run, not of the fitted model.
            set_random_source(parts, None)

    def get_default_callbacks(self):
        # skorch's PrintLog tabulates every epoch even when it prints nothing: on
        # small tables that was a tenth of a fit. A silent net goes without it
        # (_callbacks_key re-initialises the callbacks when verbosity changes).
        return [
            (name, callback)
            for name, callback in super().get_default_callbacks()
            if self.verbose or name != "print_log"
        ]

    def get_dataset(self, X, y=None):
        if isinstance(X, TrainingRows):
            return X
        return super().get_dataset(X, y)

    def get_iterator(self, dataset, training=False):
        if not isinstance(dataset, TrainingRows):
            return super().get_iterator(dataset, training=training)
        if training:
            return Batches(
                dataset,
                self.batch_size,
                self.device,
                seeds_for_pass=lambda: pass_seeds(self.random_seed, len(self.history)),
            )
        # Validation inputs are corrupted with one fixed draw, so that validation
        # losses of different epochs compare.
        return Batches(
            dataset,
            max(self.batch_size, EVALUATION_BATCH_SIZE),
            self.device,
            seeds_for_pass=lambda: pass_seeds(self.random_seed, VALIDATION_PASS),
            shuffle=False,
        )

    def train_step_single(self, batch, **fit_params):
        # A criterion may compute the loss and gradients itself, without
        # autograd (gradients_by_hand, as in fit_loop); the notifications and
        # records around the step are skorch's.
        by_hand = self._gradients_by_hand()
        step = None
        if by_hand is not None and not fit_params:
            self._set_training(True)
            inputs, targets = unpack_data(batch)
            computed = by_hand(self.module_, inputs, targets, with_outputs=True)
            if computed is not None:
                loss, outputs = computed
                step = {"loss": loss, "y_pred": outputs}
        if step is None:
            step = super().train_step_single(batch, **fit_params)
        # Before skorch's on_grad_computed: clipping sees the scaled gradients.
        self._scale_gradients()
        return step

    def _scale_gradients(self):
        """Multiply the gradients the optimiser will read by ``gradient_scale``.

        Once a step, over the optimiser's tensors: one or two flat ones
        inside :func:`flat_adam`. Nets pickled by releases before the
        parameter train unscaled.
        """
        scale = getattr(self, "gradient_scale", 1.0)
        if scale == 1.0:
            return
        with torch.no_grad():
            for group in self.optimizer_.param_groups:
                for parameter in group["params"]:
                    if parameter.grad is not None:
                        parameter.grad.mul_(scale)

    def _gradients_by_hand(self):
        """The criterion's ``gradients_by_hand``, or ``None`` where this net must use autograd."""
        return getattr(self.criterion_, "gradients_by_hand", None)

    def infer(self, x, **fit_params):
        if torch.is_grad_enabled() and getattr(self.criterion_, "needs_input_gradient", False):
            # The contractive penalty differentiates the code with respect to the
            # input; in place, because get_loss receives this same tensor.
            x.requires_grad_(True)
        return self.module_(x, **fit_params)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        if getattr(self.criterion_, "takes_inputs", False):
            return self.criterion_(y_pred, y_true, X, self.module_)
        if isinstance(y_pred, tuple):
            y_pred = y_pred[0]
        return self.criterion_(y_pred, y_true)

    def _set_training(self, training=True):
        # skorch sets the mode before every batch; walking the module tree each
        # time is measurable per-step overhead for small networks.
        if self.module_.training != training or self.criterion_.training != training:
            super()._set_training(training)


# Names of the callbacks _callbacks adds itself; any other is the caller's.
ENGINE_CALLBACKS = (
    "learning_rate_schedule",
    "gradient_clipping",
    "stopper",
    "weight_average",
    "divergence_guard",
    "tiny_value_flush",
    "progress_bar",
    "progress_report",
)


def _callbacks(plan):
    callbacks = [
        *(
            [("learning_rate_schedule", CosineLearningRate(plan.max_epochs))]
            if plan.learning_rate_schedule == "cosine" and not _schedules_itself(plan)
            else []
        ),
        ("gradient_clipping", GradientNormClipping(plan.max_grad_norm)),
        # The stopper before the guard: at the end of a run it has restored the
        # weights to keep when the guard judges how the run ended.
        ("stopper", _stopper(plan)),
        # After the stopper, which keeps an epoch's weights while the average is
        # in the module (WeightAverage).
        *([("weight_average", WeightAverage(plan.average_epochs))] if _averages(plan) else []),
        ("divergence_guard", DivergenceGuard(reference_loss=plan.reference_loss)),
        ("tiny_value_flush", TinyValueFlush()),
        *copy.deepcopy(plan.callbacks),
    ]
    if plan.verbose >= 2:
        # Within-epoch progress for long epochs; the per-epoch table prints too.
        callbacks.append(("progress_bar", ProgressBar()))
    elif _reports_progress(plan):
        callbacks.append(("progress_report", ProgressReport(plan.max_epochs, plan.report_after)))
    return callbacks


def _averages(plan):
    """Whether the run validates a moving average of the weights (only with validation rows)."""
    return plan.average_epochs is not None and plan.validation_fraction is not None


def _reports_progress(plan):
    """Whether a :class:`~.callbacks.ProgressReport` watches the run (only when silent)."""
    return not plan.verbose and plan.report_after is not None


def _schedules_itself(plan):
    """Whether the caller's callbacks include a learning-rate scheduler, which then rules."""
    return any(
        isinstance(entry[1] if isinstance(entry, tuple) else entry, LRScheduler)
        for entry in plan.callbacks
    )


def _stopper(plan):
    watching_validation = plan.validation_fraction is not None
    return ImprovementStopper(
        monitor="valid_loss" if watching_validation else "train_loss",
        patience=plan.patience,
        threshold=plan.tol,
        threshold_mode="rel",
        load_best=watching_validation,
        score_start=watching_validation and plan.score_start,
    )


def _split(plan):
    if plan.validation_fraction is None:
        return None
    return RandomRowSplit(plan.validation_fraction, plan.split_seed)


class _SameCallbacks:
    """The caller's callbacks, equal to another list only of the very same objects.

    It holds them, so that none is freed while the net keeps the key: a key of
    their ``repr`` (or ``id``) compared equal when a new callback took the
    memory of a freed one, and the new callback was then never put to work.
    """

    def __init__(self, entries):
        self.entries = tuple(
            entry if isinstance(entry, tuple) else (None, entry) for entry in entries
        )

    def __eq__(self, other):
        if not isinstance(other, _SameCallbacks) or len(self.entries) != len(other.entries):
            return False
        return all(
            name == other_name and callback is other_callback
            for (name, callback), (other_name, other_callback) in zip(self.entries, other.entries)
        )

    __hash__ = None

    def __deepcopy__(self, memo):
        # A copied net (a warm start trains a copy) keeps the caller's objects.
        return self


def _callbacks_key(plan):
    """What, in a plan, can only change by replacing the net's callbacks."""
    return (
        _SameCallbacks(plan.callbacks),
        bool(plan.verbose),
        plan.verbose >= 2,
        plan.learning_rate_schedule,
        plan.max_epochs,
        _reports_progress(plan) and plan.report_after,
        _averages(plan) and plan.average_epochs,
    )


class FlatAdam(torch.optim.Adam):
    """Adam over flat tensors that the parameters and their ``.grad`` are views of.

    ``zero_grad`` zeroes the gradients in place whatever ``set_to_none`` says:
    a gradient set to ``None`` would be re-created by autograd outside the
    flat tensor, which the update reads (see :func:`flat_adam`).
    """

    def zero_grad(self, set_to_none=True):
        for group in self.param_groups:
            for parameter in group["params"]:
                if parameter.grad is not None:
                    parameter.grad.zero_()

    def step(self, closure=None):
        """Adam's step; once its state exists, the fused kernel is called directly.

        ``torch.optim.Adam.step`` wraps the kernel in a profiler range, hook
        calls and a regrouping of the tensors by device: 60 microseconds a
        step on a CPU, against 11 for the two kernels it ends in (a flat
        tensor of 2000 entries), a tenth of a step of the outlier detector's
        members. Where nothing needs that wrapping (fused, no hooks, a float
        rate, no AMSGrad or maximisation, every state initialised), the same
        kernels run with the same arguments: the same update bit for bit.
        Otherwise, and for the first step, which creates the state, Adam's
        own step runs, hooks and all.
        """
        if self._has_step_hooks():
            return self.profile_hook_step(_ADAM_STEP)(self, closure)
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        if not self._fused_kernels_suffice():
            _ADAM_STEP(self)
            return loss
        with torch.no_grad():
            for group in self.param_groups:
                parameters = [p for p in group["params"] if p.grad is not None]
                if not parameters:
                    continue
                states = [self.state[parameter] for parameter in parameters]
                steps = [state["step"] for state in states]
                beta1, beta2 = group["betas"]
                torch._foreach_add_(steps, 1)
                update = (
                    torch._fused_adamw_
                    if group.get("decoupled_weight_decay", False)
                    else torch._fused_adam_
                )
                update(
                    parameters,
                    [parameter.grad for parameter in parameters],
                    [state["exp_avg"] for state in states],
                    [state["exp_avg_sq"] for state in states],
                    [],
                    steps,
                    amsgrad=False,
                    lr=group["lr"],
                    beta1=beta1,
                    beta2=beta2,
                    weight_decay=group["weight_decay"],
                    eps=group["eps"],
                    maximize=False,
                    grad_scale=None,
                    found_inf=None,
                )
        return loss

    # torch.optim wraps an optimiser class's step in its hook-calling wrapper
    # unless it says it is wrapped already; this one calls that wrapper itself
    # where it must.
    step.hooked = True

    def _has_step_hooks(self):
        """Whether step hooks (this optimiser's or global ones) must be called around a step."""
        return bool(
            self._optimizer_step_pre_hooks
            or self._optimizer_step_post_hooks
            or _optimizer_module._global_optimizer_pre_hooks
            or _optimizer_module._global_optimizer_post_hooks
        )

    def _fused_kernels_suffice(self):
        """Whether the fused kernels called directly make Adam's whole update (see :meth:`step`)."""
        for group in self.param_groups:
            if (
                not group.get("fused")
                or group["amsgrad"]
                or group["maximize"]
                or group["differentiable"]
                or torch.is_tensor(group["lr"])
                or any(torch.is_tensor(beta) for beta in group["betas"])
            ):
                return False
            for parameter in group["params"]:
                if parameter.grad is not None and (
                    parameter not in self.state or parameter.is_complex()
                ):
                    return False
        return True


# Adam's step without torch.optim's hook-calling wrapper (which an Adam
# instance puts round the class's step when it is created).
_ADAM_STEP = (
    torch.optim.Adam.step.__wrapped__
    if getattr(torch.optim.Adam.step, "hooked", False)
    else torch.optim.Adam.step
)


# Adam's settings that belong to the optimiser rather than to a parameter group.
OPTIMISER_WIDE = ("foreach", "fused", "capturable", "differentiable")


def _flat_state(optimizer, parameters):
    """The state of ``parameters`` as one flat state, ``{}`` if none, or ``None`` if it differs.

    Adam's state can be laid out flat when every parameter has the same keys
    and has taken the same number of steps (the bias corrections).
    """
    states = [optimizer.state.get(parameter) for parameter in parameters]
    if not any(states):
        return {}
    if not all(states) or len({tuple(sorted(state)) for state in states}) > 1:
        return None
    steps = [state["step"] for state in states]
    if any(not torch.equal(torch.as_tensor(step), torch.as_tensor(steps[0])) for step in steps):
        return None
    return {
        key: (
            torch.cat([state[key].reshape(-1) for state in states])
            if key != "step"
            else copy.deepcopy(steps[0])
        )
        for key in states[0]
    }


@contextlib.contextmanager
def flat_adam(net):
    """Within the block, ``net.optimizer_`` is Adam over the parameters laid out flat.

    Adam updates each entry on its own, so one update of a tensor holding
    parameters of the same settings (rate, weight decay) is the update of
    each, to rounding (the fused kernel's vector lanes fall on other
    entries), for parameters that take part in every step's loss (a
    parameter outside it gets a zero gradient here instead of none). The
    parameters and their gradients become views into flat tensors, one pair
    per set of groups with the same settings, and the fused kernel runs
    once a step over a few tensors instead of over every one: 58 against 149
    microseconds a step for the eight tensors of the outlier detector's
    members, and zeroing the gradients is one fill per flat tensor.

    Gradients must reach the ``.grad`` tensors in place: autograd
    accumulates into them (:class:`FlatAdam` zeroes them in place), and
    gradients by hand are written into them (``write_gradient``). The state
    an earlier run left is laid out flat too when every parameter of a set
    took the same steps. On leaving, each parameter and gradient owns its
    storage again, and the optimiser holds the state and the group settings
    (a schedule's rate) the flat one reached, so nothing after the block can
    tell. Where this does not hold (another optimiser, a net that does not
    flatten, mixed devices), the block runs with the optimiser as it is.
    """
    optimizer = net.optimizer_
    groups = optimizer.param_groups
    parameters = [parameter for group in groups for parameter in group["params"]]
    settings = [{key: value for key, value in group.items() if key != "params"} for group in groups]
    if (
        not getattr(net, "flattens_optimizer", False)
        or type(optimizer) is not torch.optim.Adam
        or any(torch.is_tensor(value) for setting in settings for value in setting.values())
    ):
        yield
        return
    # Groups of the same settings (the biases' and the weights' without weight
    # decay) share a flat tensor: one update serves them all.
    classes = []
    for index, setting in enumerate(settings):
        same = [members for first, members in classes if settings[first] == setting]
        if same:
            same[0].append(index)
        else:
            classes.append((index, [index]))
    members_of = [
        [p for index in members for p in groups[index]["params"]] for _, members in classes
    ]
    flat_states = [_flat_state(optimizer, members) for members in members_of]
    if (
        any(state is None for state in flat_states)
        or any(
            setting.get(key) != settings[0].get(key)
            for setting in settings
            for key in OPTIMISER_WIDE
        )
        or len({(parameter.device, parameter.dtype) for parameter in parameters}) > 1
        or len({id(parameter) for parameter in parameters}) < len(parameters)
        or not all(parameter.requires_grad for parameter in parameters)
    ):
        yield
        return
    flat_groups, sizes = [], []
    for (first, _), members in zip(classes, members_of):
        with torch.no_grad():
            flat = torch.cat([parameter.reshape(-1) for parameter in members])
        gradients = torch.zeros_like(flat)
        sizes.append([parameter.numel() for parameter in members])
        for parameter, values, gradient in zip(
            members, flat.split(sizes[-1]), gradients.split(sizes[-1])
        ):
            parameter.data = values.view_as(parameter)
            parameter.grad = gradient.view_as(parameter)
        flat_parameter = nn.Parameter(flat)
        flat_parameter.grad = gradients
        flat_groups.append({**settings[first], "params": [flat_parameter]})
    accepted = inspect.signature(torch.optim.Adam).parameters
    wide = {key: value for key, value in settings[0].items() if key in OPTIMISER_WIDE}
    flat_optimizer = FlatAdam(flat_groups, **{k: v for k, v in wide.items() if k in accepted})
    for flat_group, state in zip(flat_optimizer.param_groups, flat_states):
        if state:
            flat_optimizer.state[flat_group["params"][0]] = state
    net.optimizer_ = flat_optimizer
    try:
        yield
    finally:
        net.optimizer_ = optimizer
        for (_, indices), members, flat_group, member_sizes in zip(
            classes, members_of, flat_optimizer.param_groups, sizes
        ):
            # What ran during the block (a schedule's rate) stays with the groups.
            for index in indices:
                groups[index].update(
                    {key: value for key, value in flat_group.items() if key != "params"}
                )
            state = flat_optimizer.state.get(flat_group["params"][0], {})
            pieces = {
                key: value.split(member_sizes) for key, value in state.items() if key != "step"
            }
            for position, parameter in enumerate(members):
                parameter.data = parameter.data.clone()
                parameter.grad = parameter.grad.clone()
                if state:
                    optimizer.state[parameter] = {
                        "step": copy.deepcopy(state["step"]),
                        **{key: pieces[key][position].view_as(parameter).clone() for key in pieces},
                    }


def rate_factors(module, reference_fan_in):
    """Share of the learning rate of each weight of ``module`` whose fan-in exceeds a reference.

    Adam moves every weight by about the learning rate per step, whatever the
    scale of its gradient, so the pre-activation of a unit with ``fan_in``
    inputs moves by up to ``fan_in`` times the rate: a rate that suits a
    layer of 128 inputs shakes a layer of 784 (an image's pixels) six times
    as hard. Scaling a weight's rate by ``reference_fan_in / fan_in`` bounds
    every unit's step by that of a unit with ``reference_fan_in`` inputs:
    the per-layer Adam rate of the maximal-update parametrisation (Yang et
    al., 2021, *Tensor Programs V*), which scales rates as ``1 / fan_in``.
    Measured on 20000 MNIST images (code 8, 2000 steps of a cosine schedule
    from 3e-3): 0.636x PCA's test error with one rate for every weight,
    0.578x with the input layers' rate at a third of it. Weights of at most
    ``reference_fan_in`` inputs and every bias keep the full rate (omitted
    from the result); ``None`` scales nothing.

    Returns
    -------
    dict
        ``{parameter name: factor}`` for the weights whose rate is scaled.
    """
    if reference_fan_in is None:
        return {}
    factors = {}
    for name, parameter in module.named_parameters():
        if parameter.ndim < 2:
            continue
        fan_in, _ = nn.init._calculate_fan_in_and_fan_out(parameter)
        if fan_in > reference_fan_in:
            factors[name] = reference_fan_in / fan_in
    return factors


# skorch's pattern of the parameters without weight decay (as in MLPRegressor).
NOT_DECAYED = "*.bias"


def _parameter_groups(module, plan):
    """skorch's parameter groups: the biases without weight decay, and each weight
    trained at a share of the rate in a group of its own."""
    groups = [(NOT_DECAYED, {"weight_decay": 0.0})]
    # One group per scaled weight (a name is an fnmatch pattern matching itself):
    # few weights have many inputs, the input layers mostly.
    for name, factor in rate_factors(module, plan.rate_reference_fan_in).items():
        groups.append((name, {"lr": plan.learning_rate * factor, RATE_FACTOR: factor}))
    return groups


def _parameter_names(module):
    """``{id(parameter): name}`` of ``module``'s parameters."""
    return {id(parameter): name for name, parameter in module.named_parameters()}


def build_net(module, criterion, plan, net_class=AutoencoderNet, **net_params):
    """An initialised net that trains ``module`` with ``criterion`` as ``plan`` says.

    ``module`` must already hold its initial weights; ``net_params`` go to
    ``net_class`` as they are.
    """
    net = net_class(
        module=module,
        criterion=criterion,
        optimizer=torch.optim.Adam,
        lr=plan.learning_rate,
        optimizer__weight_decay=plan.weight_decay,
        # One fused kernel per step instead of a loop over parameters: the
        # same Adam update, and a third less time per step on small networks.
        optimizer__fused=True,
        optimizer__eps=plan.adam_epsilon,
        # The L2 penalty applies to weights, not to biases, as in MLPRegressor;
        # weights of many inputs may train at a share of the rate.
        optimizer__param_groups=_parameter_groups(module, plan),
        max_epochs=plan.max_epochs,
        batch_size=plan.batch_size,
        train_split=_split(plan),
        callbacks=_callbacks(plan),
        verbose=plan.verbose,
        device=plan.device,
        random_seed=plan.seed,
        fixed_budget=plan.fixed_budget,
        gradient_scale=plan.gradient_scale,
        **net_params,
    )
    net.callbacks_key = _callbacks_key(plan)
    return net.initialize()


def configure_net(net, plan, criterion=None):
    """Apply ``plan`` to an initialised net, keeping its weights and history.

    Everything goes through skorch's ``set_params``: a new ``criterion`` (a
    changed objective) replaces the old one, which restarts the optimiser; the
    learning rate and weight decay reach the optimiser's parameter groups, the
    stopping rule and clipping their callbacks, and changed extra callbacks
    replace the old ones.
    """
    if criterion is not None:
        # Before the optimiser's settings below: skorch re-creates the optimiser
        # from the net's initial arguments when the criterion changes.
        net.set_params(criterion=criterion)
    params = {
        "lr": plan.learning_rate,
        "max_epochs": plan.max_epochs,
        "batch_size": plan.batch_size,
        "verbose": plan.verbose,
        "train_split": _split(plan),
    }
    # An attribute, not set_params: nets pickled by releases before it lack it.
    net.gradient_scale = plan.gradient_scale
    # Every group but the biases' (_parameter_groups) decays.
    names = _parameter_names(net.module_)
    for index, group in enumerate(net.optimizer_.param_groups):
        biases = all(
            fnmatch.fnmatch(names[id(parameter)], NOT_DECAYED) for parameter in group["params"]
        )
        if not biases and group.get("weight_decay") != plan.weight_decay:
            params[f"optimizer__param_groups__{index}__weight_decay"] = plan.weight_decay
        if group.get("eps") != plan.adam_epsilon:
            params[f"optimizer__param_groups__{index}__eps"] = plan.adam_epsilon
    net.set_params(**params)
    _apply_rate_factors(net, plan)
    if getattr(net, "callbacks_key", None) != _callbacks_key(plan):
        net.set_params(callbacks=_callbacks(plan))
        # skorch's set_params initialises the callbacks before it stores the new
        # list; initialising again puts the new list to work.
        net.initialize_callbacks()
        net.callbacks_key = _callbacks_key(plan)
        return net
    stopper = _stopper(plan)
    net.set_params(
        callbacks__stopper__monitor=stopper.monitor,
        callbacks__stopper__patience=stopper.patience,
        callbacks__stopper__threshold=stopper.threshold,
        callbacks__stopper__load_best=stopper.load_best,
        callbacks__gradient_clipping__gradient_clip_value=plan.max_grad_norm,
        callbacks__divergence_guard__reference_loss=plan.reference_loss,
    )
    return net


def _apply_rate_factors(net, plan):
    """Give each parameter group its share of the plan's rate (skorch set one rate for all).

    When the plan scales other weights than the optimiser's groups hold (a
    warm start that changed the rule), the optimiser is re-created with the
    plan's groups, as skorch does for a changed objective.
    """
    factors = rate_factors(net.module_, plan.rate_reference_fan_in)
    names = _parameter_names(net.module_)
    held = {
        names[id(parameter)]: group.get(RATE_FACTOR, 1.0)
        for group in net.optimizer_.param_groups
        for parameter in group["params"]
        if group.get(RATE_FACTOR, 1.0) != 1.0
    }
    if held != factors:
        net.optimizer__param_groups = _parameter_groups(net.module_, plan)
        net.optimizer__weight_decay = plan.weight_decay
        net.optimizer__eps = plan.adam_epsilon
        net.initialize_optimizer()
    set_learning_rate(net.optimizer_, plan.learning_rate)


def train(net, rows, epochs):
    """Train ``net`` on ``rows`` for up to ``epochs`` passes; say how it ended.

    A ``KeyboardInterrupt`` (Ctrl-C) during training keeps the epochs completed
    so far, as ``MLPRegressor`` does; one before the first complete epoch of the
    net's life leaves nothing to keep and goes on to the caller.
    """
    epochs_before = len(net.history)
    diverged = None
    try:
        net.partial_fit(rows, epochs=epochs)
    except TrainingDivergedError as error:
        # A run that ended diverged after the stopper had put its starting
        # weights back leaves a good model: that is reported, not raised.
        if not getattr(dict(net.callbacks_)["stopper"], "kept_start_", False):
            raise
        diverged = str(error)
    if net.history and "train_loss" not in net.history[-1]:
        # An interrupted epoch left a record without a loss.
        net.history.pop()
    if not net.history:
        raise KeyboardInterrupt
    epochs_run = len(net.history) - epochs_before
    stopper = dict(net.callbacks_)["stopper"]
    stopped_early = bool(getattr(stopper, "stopped_", False))
    kept_start = bool(getattr(stopper, "kept_start_", False))
    best_epoch = None
    if stopper.load_best and stopper.monitor == "valid_loss":
        best_epoch = epochs_before if kept_start else getattr(stopper, "best_epoch_", None)
    return TrainingOutcome(
        epochs_run=epochs_run,
        stopped_early=stopped_early,
        interrupted=epochs_run < epochs and not stopped_early,
        kept_start=kept_start,
        start_score=getattr(stopper, "start_score_", None),
        diverged=diverged,
        best_epoch=None if best_epoch is None else int(best_epoch),
    )


def map_module(module, values, function, n_outputs, dtype, device):
    """Batched inference: ``function(module, rows)`` over the rows of ``values``.

    Returns an array of ``dtype``. float64 output is computed in float64, on a
    float64 copy of the module: float32 results of a row depend, in the last
    bits, on how many rows share its matrix product, and a row's result must
    not depend on which other rows came with it.
    """
    compute_dtype = torch.float64 if np.dtype(dtype) == np.float64 else torch.float32
    if compute_dtype == torch.float64:
        module = copy.deepcopy(module).double()
    module.eval()
    return map_rows(
        values, lambda rows: function(module, rows), n_outputs, device, dtype, compute_dtype
    )


def rows_on(values, device):
    """:class:`RowData` for training: dense input as a float32 tensor on ``device``.

    Sparse matrices and numpy memmaps stay as they are and are read one
    mini-batch at a time.
    """
    if isinstance(values, np.memmap) or sparse.issparse(values):
        return RowData(values.astype(np.float32).tocsr() if sparse.issparse(values) else values)
    return RowData(as_float32_tensor(values).to(device))
