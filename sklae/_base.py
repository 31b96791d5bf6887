"""The abstract base of the autoencoder estimators: describe, then hand to the engine.

An estimator validates its parameters and data, describes the network (a torch
module from :mod:`sklae._networks`) and the training (a
:class:`~sklae._engine.TrainingPlan`), and hands both to the engine
(:mod:`sklae._engine`), which builds, re-configures and trains the skorch net and
runs batched inference. What the engine reports (how training ended, a
divergence) is translated here into scikit-learn's fitted attributes, warnings
and errors in the estimators' own vocabulary.

Imports go one way: estimators -> engine and networks.
"""

import copy
import dataclasses
import math
import warnings
from abc import ABCMeta, abstractmethod
from numbers import Integral, Real

import numpy as np
import torch
from scipy import sparse
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, InvalidParameterError, StrOptions
from sklearn.utils.validation import check_is_fitted
from skorch.callbacks import Callback
from torch import nn

from ._bounds import column_extremes, entries_needed, merged_extreme, piled_up_bound
from ._engine import (
    EVALUATION_BATCH_SIZE,
    AutoencoderNet,
    RandomRowSplit,
    TrainingPlan,
    TrainingRows,
    build_net,
    configure_net,
    held_out_count,
    map_module,
    rows_on,
    steps_per_epoch,
    train,
)
from ._networks import (
    ACTIVATIONS,
    LOSSES,
    Autoencoder,
    AutoencoderObjective,
    LinearPathAutoencoder,
    ReconstructionLoss,
    build_initialized,
    conv_encoder_decoder,
    mlp_encoder_decoder,
)
from ._persistence import PlainNetStateMixin
from ._validation import (
    ACCEPTED_SPARSE,
    FLOAT_DTYPES,
    check_array,
    check_unit_interval,
    evenly_spaced_rows,
    is_out_of_core,
    positive_ints,
    resolve_device,
    validate_data,
    validate_out_of_core,
)
from .exceptions import DivergenceWarning, TrainingDivergedError

AUTO_BATCH_SIZE = 256
MIN_AUTO_BATCH_SIZE = 16
STEPS_PER_EPOCH = 32
# Gradient steps max_iter="auto" budgets for a fit, and the bounds on the
# epochs that makes (see BaseAutoencoder._max_epochs).
AUTO_TRAINING_STEPS = 4000
MIN_AUTO_EPOCHS = 10
MAX_AUTO_EPOCHS = 200
# n_iter_no_change="auto": epochs without improvement before stopping, and the
# gradient steps they must make at least (see BaseAutoencoder._patience).
AUTO_PATIENCE_EPOCHS = 10
AUTO_PATIENCE_STEPS = AUTO_PATIENCE_EPOCHS * STEPS_PER_EPOCH
# With early stopping, the weights scored on the validation rows and kept are a
# moving average over about this many epochs (the engine's WeightAverage).
# Chosen on the ADBench half A over three seeds (1 epoch was worse on one seed),
# confirmed on half B (see the user guide, training.rst).
AVERAGED_EPOCHS = 3
# hidden_layer_sizes="auto": the narrowest widths (those of tables of up to 128
# features), the widest first layer, and the ratio of the first width to the
# second (see BaseAutoencoder._resolve_hidden_widths).
AUTO_HIDDEN_WIDTHS = (128, 64)
MAX_AUTO_FIRST_WIDTH = 512
AUTO_WIDTH_RATIO = 4
# learning_rate_init="auto": Adam's rate for batches of AUTO_RATE_BATCH_SIZE
# rows, and the fan-in above which a weight trains at a share of it (see
# BaseAutoencoder._learning_rate).
AUTO_LEARNING_RATE = 3e-3
AUTO_RATE_BATCH_SIZE = 256
RATE_REFERENCE_FAN_IN = 128
# Gradients are scaled to those of data whose spread is 1 (see
# BaseAutoencoder._in_units_of): a loss in the data's units scales with this
# power of them (binary cross-entropy compares values in [0, 1]: none).
LOSS_DEGREE = {"mse": 2, "l1": 1, "bce": 0}
SMALLEST_SCALED_UNIT = 1e-12
# verbose="auto": a fit still running after this many seconds reports progress.
REPORT_AFTER_SECONDS = 20.0
# A fit whose final training loss is this many times the loss of predicting
# every column's mean has learnt worse than a constant: it diverged.
FAR_WORSE_THAN_MEAN = 10.0
# Values used to estimate the losses of constant predictions: a scale for judging
# divergence by orders of magnitude, so a sample of this size is plenty.
REFERENCE_ENTRIES = 100_000
# Rows PCA's starting point is computed from, for larger data.
PCA_START_ROWS = 20_000
# Held-out rows the explained-variance curve of ordered codes is measured on.
CURVE_ROWS = 2_000


def epochs_making(steps, n_training_rows, batch_size):
    """The fewest epochs of ``batch_size``-row steps over ``n_training_rows`` rows
    that make at least ``steps`` gradient steps."""
    return math.ceil(steps / steps_per_epoch(n_training_rows, batch_size))


def principal_components(X, n_components, seed):
    """PCA's components, mean and variances of dense ``X``, the data's spread, and its rows.

    ``(k, n_features)`` components, the ``(n_features,)`` mean and the ``(k,)``
    variances along the components, as float32 tensors, for at most
    ``n_components`` and at most the rank PCA can find, the root mean
    square deviation of an entry from its column's mean (a float; 1.0 for
    data without spread), and the number of rows they come from: an evenly
    spaced sample of about ``PCA_START_ROWS`` rows when ``X`` is larger (a
    memmap is read for those rows only).
    """
    sample = evenly_spaced_rows(X, PCA_START_ROWS)
    if len(sample) < 2:
        # One row has no spread to find directions in: the mean alone.
        mean = torch.as_tensor(sample.mean(axis=0), dtype=torch.float32)
        return torch.zeros(0, X.shape[1]), mean, torch.zeros(0), 1.0, len(sample)
    spread = float(np.sqrt(np.mean(np.var(sample, axis=0, dtype=np.float64))))
    k = min(n_components, *sample.shape)
    # Without spread, PCA's explained-variance ratios are 0 / 0, and numpy
    # warns; only its components, mean and variances are used here.
    with np.errstate(invalid="ignore", divide="ignore"):
        pca = PCA(n_components=k, random_state=int(seed)).fit(sample)
    return (
        torch.as_tensor(pca.components_, dtype=torch.float32),
        torch.as_tensor(pca.mean_, dtype=torch.float32),
        torch.as_tensor(pca.explained_variance_, dtype=torch.float32),
        spread if np.isfinite(spread) and spread > 0 else 1.0,
        len(sample),
    )


class BaseAutoencoder(
    PlainNetStateMixin,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    BaseEstimator,
    metaclass=ABCMeta,
):
    """Base class of the autoencoder estimators. Not for direct use.

    Subclasses define ``__init__`` with the parameters they support,
    :meth:`_make_module` and :meth:`_make_criterion` (what to train), and may
    override :meth:`_training_rows` (what to learn from, for example clean
    targets of noisy inputs).
    """

    _parameter_constraints: dict = {
        "code_size": [Interval(Integral, 1, None, closed="left")],
        "hidden_layer_sizes": [
            StrOptions({"auto"}),
            "array-like",
            Interval(Integral, 1, None, closed="left"),
        ],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "output_activation": [StrOptions({"auto", "identity", "sigmoid"})],
        "loss": [StrOptions(set(LOSSES))],
        "sparsity": [Interval(Real, 0, None, closed="left")],
        "contractive": [Interval(Real, 0, None, closed="left")],
        "image_shape": ["array-like", None],
        "conv_channels": ["array-like"],
        "encoder": [nn.Module, None],
        "decoder": [nn.Module, None],
        "max_iter": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions({"cosine", "constant"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "max_grad_norm": [Interval(Real, 0, None, closed="neither"), None],
        "early_stopping": ["boolean", StrOptions({"auto"})],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "tol": [Interval(Real, 0, None, closed="left")],
        "warm_start": ["boolean"],
        "random_state": ["random_state"],
        "verbose": ["verbose", StrOptions({"auto"})],
        "device": [StrOptions({"cpu", "cuda", "auto"})],
        "callbacks": [list, None],
        "init": [StrOptions({"auto", "pca", "random"})],
        "freeze": [StrOptions({"encoder", "decoder"}), None],
    }

    # Parameters that shape the network: a warm start cannot change them.
    _architecture_parameters = (
        "code_size",
        "hidden_layer_sizes",
        "activation",
        "image_shape",
        "conv_channels",
        "encoder",
        "decoder",
        "init",
    )
    # Parameters of the training objective: a warm start applies their new values.
    _objective_parameters = ("loss", "output_activation", "sparsity", "contractive")
    # The skorch net class a new fit trains (sklae.distributed sets a
    # data-parallel subclass on the estimator it fits).
    _net_class = AutoencoderNet
    # Epochs of the moving average of the weights that early stopping scores and
    # keeps (the engine's WeightAverage); None scores the last step's weights.
    _averaged_epochs = None

    @abstractmethod
    def __init__(self):
        """Subclasses store their parameters, as scikit-learn requires."""

    @abstractmethod
    def _make_module(self, n_features, pca_start=False):
        """The untrained torch module for ``n_features`` input columns.

        ``pca_start`` (where :meth:`_starts_at_pca` says so) asks for a
        :class:`~sklae._networks.LinearPathAutoencoder`.
        """

    def _pca_start_possible(self):
        """Why the network cannot start at PCA's solution, or None when it can."""
        if self.encoder is not None:
            return "a custom encoder and decoder keep the weights they come with"
        if self._resolved_output_activation() != "identity":
            return "a sigmoid output cannot reproduce PCA's linear reconstruction"
        return None

    def _starts_at_pca(self, X=None):
        """Whether the network gets a linear path started at PCA's solution (``init``)."""
        if self.init == "random":
            return False
        reason = self._pca_start_possible()
        if reason is None and X is not None and sparse.issparse(X):
            reason = "PCA of sparse input would need it densified"
        if self.init == "pca" and reason is not None:
            raise ValueError(
                f"init='pca' starts the network at PCA's solution, but {reason}. Use "
                "init='auto' (PCA where possible) or init='random'."
            )
        return reason is None

    @abstractmethod
    def _make_criterion(self):
        """The training objective, called as ``criterion(outputs, target, inputs, module)``."""

    # ------------------------------------------------------------------ checking

    def _hidden_widths(self):
        """The hidden widths of the network to build: ``hidden_layer_sizes_`` for "auto"."""
        if isinstance(self.hidden_layer_sizes, str):
            return self.hidden_layer_sizes_
        if not isinstance(self.hidden_layer_sizes, Integral) and not len(self.hidden_layer_sizes):
            return ()
        return positive_ints(self.hidden_layer_sizes, "hidden_layer_sizes")

    def _resolve_hidden_widths(self, n_features, n_rows):
        """``hidden_layer_sizes="auto"``: as wide as the input, never narrower than the code.

        The first layer has as many units as there are features, between
        ``AUTO_HIDDEN_WIDTHS[0]`` and ``MAX_AUTO_FIRST_WIDTH``, and no more
        than there are rows (``n`` rows span at most ``n`` directions, so on
        them the pre-activations of more units are combinations of each
        other's; ``n_rows=None``, for the first chunk of a stream, sets no
        bound); the second has a quarter of the first, at least
        ``AUTO_HIDDEN_WIDTHS[1]``. So tables of up to 128 features get
        (128, 64), and 784 pixels (512, 128): a first layer of 128 units
        squeezed them six-fold before the code did. The encoder's widths are
        also at least twice and once the code's width, so a wide code (say 389
        of 1555 features) is not squeezed through fewer units than it has,
        which caps what it can carry below what PCA's linear path alone gives
        it. With ``image_shape`` the widths follow the convolutions, whose
        output is already compact: (128, 64), widened for wide codes.
        """
        if not isinstance(self.hidden_layer_sizes, str):
            return self._hidden_widths()
        code_size = self._code_size_to_train(n_features)
        first, second = AUTO_HIDDEN_WIDTHS
        if self.image_shape is None:
            spanned = n_features if n_rows is None else min(n_features, n_rows)
            first = min(MAX_AUTO_FIRST_WIDTH, max(first, spanned))
            second = max(second, first // AUTO_WIDTH_RATIO)
        return (max(first, 2 * code_size), max(second, code_size))

    def _code_size_to_train(self, n_features=None):
        """Width of the code the network is built with (resolved by ``fit``).

        None for a code size resolved from the data that a custom ``encoder``
        left unresolved: the encoder fixes the width then.
        """
        trained = getattr(self, "_trained_code_size", None)
        if trained or isinstance(self.code_size, str):
            return trained
        return int(self.code_size)

    def _resolved_output_activation(self):
        if self.output_activation == "auto":
            return "sigmoid" if self.loss == "bce" else "identity"
        if self.loss == "bce" and self.output_activation != "sigmoid":
            raise ValueError(
                "loss='bce' compares outputs with values in [0, 1], so it needs "
                f"output_activation='sigmoid' or 'auto', got {self.output_activation!r}."
            )
        return self.output_activation

    def _check_parameters(self, X):
        """Errors for parameter values and combinations that cannot work, named and explained."""
        n_features = X.shape[1]
        if isinstance(self.code_size, (bool, np.bool_)):
            raise InvalidParameterError(
                f"The 'code_size' parameter of {type(self).__name__} must be an int in the "
                f"range [1, inf), got {self.code_size!r}: a boolean is not a width."
            )
        self._resolved_output_activation()
        self._starts_at_pca(X)
        if not isinstance(self.hidden_layer_sizes, str):
            self._hidden_widths()
        if (self.encoder is None) != (self.decoder is None):
            raise ValueError("encoder and decoder must be given together, or neither.")
        if self.encoder is not None and self.image_shape is not None:
            raise ValueError(
                "image_shape builds a convolutional network; it cannot be combined with a "
                "custom encoder and decoder."
            )
        if self.image_shape is not None:
            shape = positive_ints(self.image_shape, "image_shape", lengths=(2, 3))
            if int(np.prod(shape)) != n_features:
                raise ValueError(
                    f"image_shape={shape} describes {int(np.prod(shape))} values per row, but "
                    f"X has {n_features} features."
                )
            positive_ints(self.conv_channels, "conv_channels")
        for position, entry in enumerate(self.callbacks or []):
            callback = entry[1] if isinstance(entry, tuple) and len(entry) == 2 else entry
            name_ok = not isinstance(entry, tuple) or isinstance(entry[0], str)
            if not (isinstance(callback, Callback) and name_ok):
                raise TypeError(
                    f"callbacks[{position}] is {entry!r}, which is not a skorch callback: "
                    "pass instances of skorch.callbacks.Callback subclasses, or "
                    "(name, callback) pairs."
                )

    def _parameter_key(self, names):
        params = self.get_params(deep=False)
        # Modules compare by identity: two fits from the same object share weights.
        return tuple(
            (name, id(params[name]) if isinstance(params[name], nn.Module) else repr(params[name]))
            for name in names
            if name in params
        )

    def _check_warm_start(self):
        """Raise if the network's shape changed since the fit a warm start continues."""
        fitted = dict(self._fitted_architecture)
        changed = [
            f"{name}={value} (fitted with {fitted.get(name)})"
            for name, value in self._parameter_key(self._architecture_parameters)
            if fitted.get(name) != value
        ]
        if changed:
            raise ValueError(
                "warm_start=True and partial_fit continue training the fitted network, whose "
                f"shape cannot change; these parameters changed: {', '.join(changed)}. Set "
                "them back, or set warm_start=False (or clone the estimator) to train a new "
                "network."
            )

    # ------------------------------------------------------------------ describing

    def _encoder_decoder(self, n_features, encoder_outputs, code_activation="identity"):
        """Untrained encoder and decoder, the encoder with ``encoder_outputs`` outputs."""
        if self.encoder is not None:
            # Copies: the parameter keeps the user's (possibly pretrained) weights
            # untouched, so clone and grid search start every fit from them.
            return copy.deepcopy(self.encoder), copy.deepcopy(self.decoder)
        if self.image_shape is not None:
            return conv_encoder_decoder(
                positive_ints(self.image_shape, "image_shape"),
                self._code_size_to_train(n_features),
                positive_ints(self.conv_channels, "conv_channels"),
                self._hidden_widths(),
                self.activation,
                code_activation,
                encoder_outputs,
            )
        return mlp_encoder_decoder(
            n_features,
            self._code_size_to_train(n_features),
            self._hidden_widths(),
            self.activation,
            code_activation,
            encoder_outputs,
        )

    def _initial_module(self, X, seed):
        """The module to train, with initial weights drawn from ``seed`` alone.

        A module with a linear path (:class:`~sklae._networks.LinearPathAutoencoder`)
        starts at PCA's solution for ``X``, validation rows included. The
        stopper then judges the start on rows it was fitted to, and that
        in-sample edge is a margin the trained epochs must beat. Measured
        without it (PCA of the training rows only, and of every row when the
        start is kept): the ADBench tables of ``benchmarks/bench_defaults.py``
        gained in half A (0.661x to 0.624x PCA's test error) but lost in half
        B (0.313x to 0.328x), and two or three tables per seed ended worse
        than PCA (up to 1.28x): the best of many epochs judged on a dozen
        validation rows is chosen partly for its luck.
        """
        pca_start = self._starts_at_pca(X)
        module = self._untrained_module(X.shape[1], pca_start, seed)
        if pca_start:
            self._start_at_pca(module, *principal_components(X, self._code_size_to_train(), seed))
        return module

    def _untrained_module(self, n_features, pca_start, seed):
        """The module of ``_make_module``, its initial weights drawn from ``seed`` alone.

        Drawing touches no global random state; the user's own layers keep the
        weights they came with.
        """
        if self.encoder is not None:
            return self._make_module(n_features)
        return build_initialized(lambda: self._make_module(n_features, pca_start), seed)

    def _start_at_pca(self, module, components, mean, variances, spread, n_rows):
        """Set ``module``'s linear path to PCA's solution (of ``n_rows`` rows), its branches
        to the data's units."""
        module.start_at_pca(components, mean, spread)

    @staticmethod
    def _code_width(module, n_features):
        """Width of ``module``'s codes, checking that it round-trips a row."""
        probe = torch.zeros(2, n_features)
        was_training = module.training
        module.eval()
        try:
            with torch.no_grad():
                code = module.encode(probe)
                if not isinstance(code, torch.Tensor):
                    raise ValueError(
                        f"The encoder must return one tensor of codes, got a "
                        f"{type(code).__name__}. Wrap it in a module whose forward returns "
                        "only the codes."
                    )
                reconstruction = module.decode(code)
                if not isinstance(reconstruction, torch.Tensor):
                    raise ValueError(
                        f"The decoder must return one tensor of rows, got a "
                        f"{type(reconstruction).__name__}. Wrap it in a module whose forward "
                        "returns only the reconstruction."
                    )
        except ValueError:
            raise
        except Exception as error:
            raise ValueError(
                f"The network cannot encode and decode rows of {n_features} features: {error}"
            ) from error
        finally:
            module.train(was_training)
        if code.ndim != 2:
            raise ValueError(f"The encoder must output 2-D codes, got shape {tuple(code.shape)}.")
        if tuple(reconstruction.shape) != (2, n_features):
            raise ValueError(
                f"The decoder must output rows of {n_features} features, got shape "
                f"{tuple(reconstruction.shape)} for 2 rows."
            )
        return int(code.shape[1])

    def _training_rows(self, X, X_targets, device, continuing):
        """What the network learns from, and the validated target rows.

        By default, to reproduce ``X``. Subclasses that learn other targets
        (clean rows of noisy inputs, corrupted inputs) override this hook;
        ``X_targets`` is what their ``fit`` received for them.
        """
        check_unit_interval(X, self.loss)
        return TrainingRows(rows_on(X, device)), X

    def _reference_losses(self, targets):
        """Losses of two constant predictions of the targets: every column's mean, and zeros.

        From an evenly spaced sample of at most ``REFERENCE_ENTRIES`` values
        (memmaps read those rows only, sparse rows are densified a sample at a
        time). The larger is the scale against which divergence is judged (a
        network that starts at PCA's solution can start near zero loss, which
        no growth can be measured from); the mean's loss is what a diverged fit
        ends far above. ``(None, None)`` for empty targets.
        """
        n_rows, n_features = targets.shape
        if not n_rows:
            return None, None
        step = max(1, n_rows // max(1, REFERENCE_ENTRIES // max(1, n_features)))
        sample = targets[::step]
        sample = np.asarray(
            sample.toarray() if sparse.issparse(sample) else sample, dtype=np.float64
        )
        mean = sample.mean(axis=0)
        if self.loss == "mse":
            return float(np.mean((sample - mean) ** 2)), float(np.mean(sample**2))
        if self.loss == "l1":
            median = np.median(sample, axis=0)
            return float(np.mean(np.abs(sample - median))), float(np.mean(np.abs(sample)))
        rate = np.clip(mean, 1e-6, 1 - 1e-6)
        mean_loss = np.mean(-(sample * np.log(rate) + (1 - sample) * np.log(1 - rate)))
        # Predicting zeros before the sigmoid is predicting 0.5 after it.
        return float(mean_loss), float(np.log(2.0))

    def _uses_validation(self, n_rows, incremental):
        """Whether training holds out validation rows to stop on and restore the best epoch.

        ``early_stopping="auto"`` holds them out whenever there are two rows or
        more: the held-out rows are what lets a fit end no worse than where it
        started (PCA's solution), and on few rows the one-standard-error rule
        of the engine's stopper keeps the start rather than trust noise.
        """
        if incremental:
            return False
        if self.early_stopping == "auto":
            return n_rows >= 2
        return self.early_stopping

    def _batch_size(self, n_rows):
        """Rows per step: ``"auto"`` takes about ``n_rows / STEPS_PER_EPOCH`` rows.

        So that small data sets get enough gradient steps per epoch and large
        ones no more than ``AUTO_BATCH_SIZE`` rows per step; never below
        ``MIN_AUTO_BATCH_SIZE`` (or ``n_rows``), where gradients get too noisy.
        """
        if self.batch_size != "auto":
            return self.batch_size
        target = math.ceil(n_rows / STEPS_PER_EPOCH)
        return min(n_rows, max(MIN_AUTO_BATCH_SIZE, min(AUTO_BATCH_SIZE, target)))

    def _max_epochs(self, n_training_rows, batch_size):
        """Epochs of a fit: ``max_iter``, or for ``"auto"`` a budget of gradient steps.

        ``"auto"`` trains for about ``AUTO_TRAINING_STEPS`` steps, at least
        ``MIN_AUTO_EPOCHS`` and at most ``MAX_AUTO_EPOCHS`` epochs. What a
        network needs to learn is counted in steps, not passes: with
        ``batch_size="auto"`` a thousand rows make some 32 steps per epoch and
        get up to 138 epochs, while 20000 rows make 71 steps per epoch and get
        57 epochs instead of 200 passes over data that already gave every step
        a fresh batch. Early stopping may end a fit sooner. The budget was
        chosen on the ADBench tables: 2000 steps cost accuracy on the larger
        ones (geometric mean 0.532x PCA's error against 0.512x, in both
        halves), while 4000 steps leave every table's error as 200 epochs
        left it (early stopping ends those fits first).
        """
        if self.max_iter != "auto":
            return self.max_iter
        epochs = epochs_making(AUTO_TRAINING_STEPS, n_training_rows, batch_size)
        return min(MAX_AUTO_EPOCHS, max(MIN_AUTO_EPOCHS, epochs))

    def _patience(self, n_training_rows, batch_size):
        """Epochs without improvement before stopping: ``n_iter_no_change``, or for
        ``"auto"`` ``AUTO_PATIENCE_EPOCHS`` epochs that make at least
        ``AUTO_PATIENCE_STEPS`` gradient steps.

        Like the budget (:meth:`_max_epochs`), patience is counted in steps:
        ten epochs of a data set of 512 rows or more make 320 steps with
        ``batch_size="auto"``, but ten epochs of 56 rows make 40, too few for a
        network started at PCA's solution, whose validation loss first rises as
        it leaves that solution, to show what it learns. Measured on the
        ADBench tables (the halves of ``benchmarks/bench_defaults.py``): 0.679x
        and 0.315x PCA's test error at ten epochs, 0.661x and 0.313x at 320
        steps; the tables of 512 rows or more stop where they did.
        """
        if self.n_iter_no_change != "auto":
            return self.n_iter_no_change
        epochs = epochs_making(AUTO_PATIENCE_STEPS, n_training_rows, batch_size)
        return max(AUTO_PATIENCE_EPOCHS, epochs)

    def _learning_rate(self, batch_size):
        """Adam's rate for steps of ``batch_size`` rows: ``learning_rate_init``, or for "auto"
        ``AUTO_LEARNING_RATE`` scaled by the square root of the batch's share of
        ``AUTO_RATE_BATCH_SIZE`` (never above it).

        The square-root rule keeps the noise of Adam's steps the same as batches
        shrink (Malladi, Lyu, Panigrahi and Arora, "On the SDEs and scaling
        rules for adaptive gradient algorithms", NeurIPS 2022): small data sets,
        whose batches are small, train at about ``1e-3``, large ones at
        ``3e-3``. ``"auto"`` also trains each weight with more than
        ``RATE_REFERENCE_FAN_IN`` inputs per unit at a share of the rate that
        falls as one over its fan-in (:func:`sklae._engine.rate_factors`).
        """
        if self.learning_rate_init == "auto":
            return AUTO_LEARNING_RATE * min(1.0, math.sqrt(batch_size / AUTO_RATE_BATCH_SIZE))
        return self.learning_rate_init

    def _rate_reference_fan_in(self):
        """The fan-in above which weights train at a share of the rate (``None``: none do)."""
        return RATE_REFERENCE_FAN_IN if self.learning_rate_init == "auto" else None

    def _training_plan(self, n_rows, incremental, device, seed, split_seed, reference, score_start):
        use_validation = self._uses_validation(n_rows, incremental)
        batch_size = self._batch_size(n_rows)
        n_held_out = held_out_count(n_rows, self.validation_fraction) if use_validation else 0
        n_training_rows = n_rows - n_held_out
        verbose = 0 if self.verbose == "auto" else int(self.verbose)
        return TrainingPlan(
            learning_rate=self._learning_rate(batch_size),
            rate_reference_fan_in=self._rate_reference_fan_in(),
            # partial_fit has no horizon to anneal over: its rate stays constant.
            learning_rate_schedule="constant" if incremental else self.learning_rate,
            report_after=REPORT_AFTER_SECONDS if self.verbose == "auto" else None,
            weight_decay=self.alpha,
            max_epochs=1 if incremental else self._max_epochs(n_training_rows, batch_size),
            batch_size=batch_size,
            validation_fraction=self.validation_fraction if use_validation else None,
            patience=self._patience(n_training_rows, batch_size),
            tol=self.tol,
            max_grad_norm=self.max_grad_norm,
            callbacks=list(self.callbacks or []),
            verbose=verbose,
            device=device,
            seed=seed,
            split_seed=split_seed,
            reference_loss=reference,
            score_start=score_start,
            # The engine averages only runs that hold out validation rows.
            average_epochs=self._averaged_epochs,
        )

    def _in_units_of(self, module, plan):
        """``plan`` with the gradients scaled to ``module``'s units of data.

        A network that works in the data's units (a ``unit`` buffer, see
        :class:`~sklae._networks.LinearPathAutoencoder`) has a loss in those
        units (squared for ``"mse"``), and gradients and Adam moments in
        powers of them, which float32 holds only for data near unit spread
        (the second moments of data of spread ``1e-6`` fell below the engine's
        flush of subnormal values and the fit diverged; of spread ``1e12``
        they overflowed and nothing was learnt). Scaling the gradients by the
        loss's units (loss scaling) keeps them those of data of spread one,
        so the same rows in other units train alike. Not below a spread of
        ``SMALLEST_SCALED_UNIT``, where the squared errors themselves are at
        the edge of float32's range.
        """
        unit = max(float(getattr(module, "unit", 1.0)), SMALLEST_SCALED_UNIT)
        return dataclasses.replace(plan, gradient_scale=unit ** -LOSS_DEGREE[self.loss])

    # ------------------------------------------------------------------ fitting

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Train the autoencoder to reconstruct ``X``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data. Sparse input is densified one mini-batch at a time;
            a 2-D ``numpy.memmap`` is read from disk one mini-batch at a time
            (for data larger than memory).
        y : None
            Ignored; present for API consistency.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        return self._fit(X, incremental=False)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
        """Train for one more pass over ``X``, keeping what was learnt before.

        The first call initialises the network. No validation split is made and
        ``early_stopping`` does not apply. Calls stream data in chunks.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The chunk of training data.
        y : None
            Ignored; present for API consistency.

        Returns
        -------
        self : object
            The updated estimator.
        """
        return self._fit(X, incremental=True)

    def _fit(self, X, incremental, X_targets=None):
        state_before = dict(self.__dict__)
        try:
            return self._fit_unguarded(X, incremental, X_targets)
        except BaseException:
            # A failed fit leaves the estimator exactly as it was: validation may
            # already have reset n_features_in_, and training ran on a copy.
            self.__dict__.clear()
            self.__dict__.update(state_before)
            raise

    def _fit_unguarded(self, X, incremental, X_targets):
        continuing = hasattr(self, "net_") and (incremental or self.warm_start)
        if is_out_of_core(X):
            validate_out_of_core(self, X, reset=not continuing)
        else:
            X = validate_data(
                self, X, reset=not continuing, accept_sparse=ACCEPTED_SPARSE, dtype=FLOAT_DTYPES
            )
        self._check_parameters(X)
        if continuing:
            self._check_warm_start()
        if self.early_stopping is True and not incremental and X.shape[0] < 2:
            raise ValueError(
                "early_stopping=True holds out a validation set, which needs at least "
                f"2 samples; got n_samples = {X.shape[0]}."
            )

        device = str(self.net_.device) if continuing else resolve_device(self.device)
        rows, targets = self._training_rows(X, X_targets, device, continuing)
        if continuing:
            net = copy.deepcopy(self.net_)
            seed, split_seed = int(net.random_seed), self._split_seed
        else:
            rng = check_random_state(self.random_state)
            init_seed, split_seed, seed = rng.randint(np.iinfo(np.int32).max, size=3)
        mean_loss, zero_loss = self._reference_losses(targets)
        scale = None if mean_loss is None else max(mean_loss, zero_loss)
        # Weights worth keeping unless beaten: PCA's solution, or the fitted model.
        score_start = continuing or self._starts_at_pca(X)
        plan = self._training_plan(
            X.shape[0], incremental, device, seed, split_seed, scale, score_start
        )
        objective = self._parameter_key(self._objective_parameters)
        if continuing:
            plan = self._in_units_of(net.module_, plan)
            configure_net(
                net,
                plan,
                criterion=self._make_criterion() if objective != self._fitted_objective else None,
            )
        else:
            self._trained_code_size = self._resolve_code_size(X, init_seed)
            # partial_fit sees one chunk of a stream: its rows do not bound the widths.
            self.hidden_layer_sizes_ = self._resolve_hidden_widths(
                n_features=X.shape[1], n_rows=None if incremental else X.shape[0]
            )
            module = self._initial_module(X, init_seed)
            self.code_size_ = self._code_width(module, X.shape[1])
            plan = self._in_units_of(module, plan)
            net = build_net(module, self._make_criterion(), plan, net_class=self._net_class)
        self._freeze(net.module_)
        epochs = plan.max_epochs
        try:
            outcome = train(net, rows, epochs)
        except TrainingDivergedError as error:
            raise TrainingDivergedError(
                f"{error} Lower learning_rate_init (now {plan.learning_rate}), scale the "
                "input (for example with StandardScaler or MinMaxScaler), or clip gradients "
                "with max_grad_norm (for example max_grad_norm=1.0)."
            ) from error

        self.net_ = net
        self._split_seed = int(split_seed)
        self._fitted_architecture = self._parameter_key(self._architecture_parameters)
        self._fitted_objective = objective
        self._set_fitted_attributes(plan.validation_fraction is not None, outcome)
        self._after_training(X, targets, plan)
        self._warn_about_outcome(outcome, epochs, plan, mean_loss)
        return self

    # Parameters of the encoding side of a network: the encoder, and the linear
    # path into the code of a network started at PCA's solution.
    _ENCODING_SIDE = ("encoder.", "linear_encoder.", "linear_mean.", "linear_log_variance")

    def _freeze(self, module):
        """Fix the side of ``module`` that ``freeze`` names; train every other parameter."""
        for name, parameter in module.named_parameters():
            encoding = name.startswith(self._ENCODING_SIDE)
            frozen = self.freeze == ("encoder" if encoding else "decoder")
            parameter.requires_grad_(not frozen)

    def _resolve_code_size(self, X, seed):
        """Width of the code to train for ``X`` (``code_size``, for an int)."""
        return int(self.code_size)

    def _after_training(self, X, targets, plan):
        """Fitted attributes that need the trained network and the held-out rows."""

    def _warn_about_outcome(self, outcome, epochs, plan, mean_loss):
        if outcome.interrupted:
            restored = ""
            if outcome.kept_start:
                restored = " (the weights it started from scored best on the validation rows)"
            elif plan.validation_fraction is not None:
                restored = " (the weights of the best validation epoch were restored)"
            warnings.warn(
                f"Training was interrupted after {outcome.epochs_run} of {epochs} epochs; the "
                f"model trained so far is kept{restored}.",
                UserWarning,
                stacklevel=6,
            )
            return
        if outcome.diverged:
            warnings.warn(
                f"{outcome.diverged} The weights training started from scored best on the "
                "validation rows and were kept. Lower learning_rate_init (now "
                f"{plan.learning_rate}), scale the input (for example with StandardScaler), "
                "or clip gradients with max_grad_norm (for example max_grad_norm=1.0).",
                DivergenceWarning,
                stacklevel=6,
            )
            return
        final_loss, reference = self.loss_curve_[-1], mean_loss
        kept = (
            "; the weights training started from scored best on the validation rows and were kept"
            if outcome.kept_start
            else ""
        )
        # Far worse than a constant once training has settled (stopped on a
        # plateau, or kept its start): a network still learning un-centred data
        # also starts far above the mean's loss, but it is still falling.
        settled = outcome.stopped_early or outcome.kept_start
        if reference and final_loss > FAR_WORSE_THAN_MEAN * reference and settled:
            warnings.warn(
                f"Training settled at a loss of {final_loss:.4g}, {final_loss / reference:.3g} "
                f"times the loss of predicting every column's mean ({reference:.4g}): the "
                f"optimisation diverged{kept}. Lower learning_rate_init (now "
                f"{plan.learning_rate}), scale the input (for example with StandardScaler), "
                "or clip gradients with max_grad_norm (for example max_grad_norm=1.0).",
                DivergenceWarning,
                stacklevel=6,
            )
        elif (
            epochs > 1
            and outcome.epochs_run == epochs
            and not outcome.stopped_early
            # A cosine schedule ends at a rate of zero: the run converged by
            # construction, at the end of the budget it was planned for.
            and "learning_rate_schedule" not in dict(self.net_.callbacks_)
        ):
            # Advice that fits the run: early stopping was on when rows were held
            # out, and then the validation loss had not stalled for long enough.
            if plan.validation_fraction is None:
                watched = "training"
                advice = "Increase max_iter or tol, enable early_stopping, or use"
            else:
                watched = "validation"
                advice = "Increase max_iter or tol, or use"
            warnings.warn(
                f"Maximum iterations ({epochs}) reached and the optimization hasn't "
                f"converged yet (the {watched} loss had not stalled for {plan.patience} "
                f"epochs). {advice} learning_rate='cosine' (a rate annealed to zero "
                "over max_iter epochs, which ends by plan).",
                ConvergenceWarning,
                stacklevel=6,
            )

    def _set_fitted_attributes(self, used_validation, outcome):
        history = self.net_.history
        self.loss_curve_ = [float(record["train_loss"]) for record in history]
        self.n_iter_ = len(self.loss_curve_)
        if used_validation:
            self.validation_scores_ = [
                -float(record["valid_loss"]) for record in history if "valid_loss" in record
            ]
            # The score of the weights returned: the start's, when no epoch beat it.
            self.best_validation_score_ = (
                -outcome.start_score if outcome.kept_start else max(self.validation_scores_)
            )
            self.best_epoch_ = outcome.best_epoch
            self.best_loss_ = None
        else:
            self.validation_scores_ = None
            self.best_validation_score_ = None
            self.best_epoch_ = None
            self.best_loss_ = min(self.loss_curve_)

    def __setstate__(self, state):
        super().__setstate__(state)
        if "n_iter_" in self.__dict__ and "best_epoch_" not in self.__dict__:
            # Saved by a release before the attribute: the epoch whose score is
            # the best validation score, or 0 (the start) when none has it.
            scores, best = self.validation_scores_, self.best_validation_score_
            self.best_epoch_ = (
                None if scores is None else (scores.index(best) + 1 if best in scores else 0)
            )

    # ------------------------------------------------------------------ saving
    # The fitted state is plain data (PlainNetStateMixin): the trained net is
    # saved as numpy arrays and rebuilt from the parameters on load.

    def _plain_state_refusal(self):
        if self.encoder is None and self.decoder is None:
            return None
        return (
            f"This {type(self).__name__} is built from your own torch modules "
            f"(encoder={type(self.encoder).__name__}, "
            f"decoder={type(self.decoder).__name__}), which a format of plain data "
            "such as skops cannot store without their code. Save it with pickle or "
            "joblib (loading runs the modules' code: load only files you trust), or "
            "serve the network alone with sklae.export.export_program or export_onnx."
        )

    def _describe_module(self, module):
        # With or without the linear path of a PCA start, truncated codes or not.
        return {
            "linear_path": hasattr(module, "start_at_pca"),
            "kept_units": getattr(module, "kept_units", None),
            "code_width": getattr(module, "code_width", None),
        }

    def _rebuilt_module(self, net_state):
        # Initial weights are drawn, then replaced by the saved ones.
        module = self._untrained_module(self.n_features_in_, net_state["linear_path"], 0)
        if net_state.get("code_width") is not None:
            width = net_state["code_width"]
            module.keep_units(net_state["kept_units"] or width, width)
        return module

    # ------------------------------------------------------------------ inference

    @property
    def module_(self):
        """The trained :class:`torch.nn.Module` (the same object as ``net_.module_``)."""
        return self.net_.module_

    @property
    def _n_features_out(self):
        check_is_fitted(self)
        return self.code_size_

    def _validate_input(self, X):
        check_is_fitted(self)
        return validate_data(
            self, X, reset=False, accept_sparse=ACCEPTED_SPARSE, dtype=FLOAT_DTYPES
        )

    def _map_rows(self, X, function, n_outputs, module=None):
        """Apply ``function(module, rows)`` to the rows of ``X`` in batches.

        Returns an array of ``X``'s dtype, computed in that precision (float32
        or float64).
        """
        module = self.net_.module_ if module is None else module
        return map_module(module, X, function, n_outputs, X.dtype, self.net_.device)

    def _encode(self, X):
        return self._map_rows(X, lambda module, rows: module.encode(rows), self._n_features_out)

    def _reconstruct(self, X, module=None):
        rows = self._map_rows(
            X, lambda module, rows: module.decode(module.encode(rows)), X.shape[1], module
        )
        return self._clipped_to_output_bounds(rows)

    def _reconstruction_errors(self, X):
        """Mean squared reconstruction error of each row of validated ``X`` (float64)."""
        errors = np.empty(X.shape[0])
        # Chunk by chunk, so that scoring a memmap never holds all of it in memory.
        for start in range(0, X.shape[0], EVALUATION_BATCH_SIZE):
            chunk = X[start : start + EVALUATION_BATCH_SIZE]
            reconstruction = self._reconstruct(chunk)
            dense = chunk.toarray() if sparse.issparse(chunk) else chunk
            difference = np.asarray(dense, dtype=np.float64) - reconstruction
            errors[start : start + EVALUATION_BATCH_SIZE] = np.mean(difference * difference, axis=1)
        return errors

    def get_layer_outputs(self, X, layers=None):
        """Each layer's representation of ``X``, not only the code.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data to pass through the network (encoder, then decoder).
        layers : list of str or None, default=None
            Names of layers, as in ``module_.named_modules()`` (for example
            ``"encoder.0"``); None means every layer of the encoder and decoder,
            and of the linear path (``"linear_encoder"``, ``"linear_decoder"``)
            when the network has one (``init``): the code is then the sum of
            ``"linear_encoder"`` and the encoder's last layer.
            A name given twice is returned once.

        Returns
        -------
        outputs : dict of str to ndarray
            For each layer, its output for every row, in network order, of
            ``X``'s precision (as :meth:`transform`).
            Convolutional layers keep their ``(n_samples, channels, height,
            width)`` shape. Calls from other threads at the same time do not
            mix into the result.
        """
        X = self._validate_input(X)
        # A copy per call: the hooks below then see this call's passes alone,
        # whatever other threads do with the fitted module meanwhile.
        module = copy.deepcopy(self.net_.module_)
        available = {
            name: layer
            for name, layer in module.named_modules()
            if name.startswith(("encoder.", "decoder.", "linear_")) and not list(layer.children())
        }
        layers = list(available) if layers is None else list(dict.fromkeys(layers))
        unknown = [name for name in layers if name not in available]
        if unknown:
            raise ValueError(f"Unknown layers {unknown}; the network has {list(available)}.")
        collected = {name: [] for name in layers}
        for name in layers:
            available[name].register_forward_hook(
                lambda _layer, _inputs, output, name=name: collected[name].append(
                    output.detach().cpu().numpy()
                )
            )
        self._reconstruct(X, module)
        return {name: np.concatenate(parts) for name, parts in collected.items()}

    def transform(self, X):
        """Encode ``X``: the code of each row.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data to encode.

        Returns
        -------
        codes : ndarray of shape (n_samples, code_size)
            The codes, of ``X``'s dtype when it is float32 or float64 (float64
            otherwise), computed in that precision.
        """
        X = self._validate_input(X)
        return self._encode(X)

    def inverse_transform(self, X):
        """Decode codes back to the input space.

        Parameters
        ----------
        X : array-like of shape (n_samples, code_size)
            Codes, as returned by :meth:`transform`.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features_in_)
            The reconstructions, of the codes' dtype (float32 or float64).
        """
        check_is_fitted(self)
        codes = check_array(X, dtype=FLOAT_DTYPES, input_name="X")
        if getattr(self, "explained_variance_curve_", None) is not None:
            # Ordered codes: a code's first units decode on their own, the rest
            # taken as zero, as they were trained to.
            missing = self._n_features_out - codes.shape[1]
            if 0 < missing < self._n_features_out:
                codes = np.pad(codes, ((0, 0), (0, missing)))
        if codes.shape[1] != self._n_features_out:
            raise ValueError(
                f"X has {codes.shape[1]} features, but inverse_transform expects codes of "
                f"code_size = {self._n_features_out} features."
            )
        rows = self._map_rows(codes, lambda module, rows: module.decode(rows), self.n_features_in_)
        return self._clipped_to_output_bounds(rows)

    def _output_bounds(self):
        """Per-feature least and largest values of output rows, or None (no bounds)."""
        return None

    def _clipped_to_output_bounds(self, rows):
        """Decoded ``rows`` within :meth:`_output_bounds` (reconstructions and decoded codes)."""
        bounds = self._output_bounds()
        if bounds is None:
            return rows
        low, high = bounds
        return np.clip(rows, low.astype(rows.dtype), high.astype(rows.dtype))

    def score_samples(self, X):
        """Negative mean squared reconstruction error of each sample.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data to reconstruct.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            ``-mean((x - reconstruction(x)) ** 2)`` per row; higher is better.
        """
        X = self._validate_input(X)
        return -self._reconstruction_errors(X)

    def score(self, X, y=None):
        """Negative mean squared reconstruction error over all of ``X``.

        Higher is better, so :class:`~sklearn.model_selection.GridSearchCV` with
        no scorer picks the model that reconstructs held-out data best.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data to reconstruct.
        y : None
            Ignored; present for API consistency.

        Returns
        -------
        score : float
            ``-mean((X - reconstruction(X)) ** 2)`` over every entry.
        """
        return float(np.mean(self.score_samples(X)))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


class DeterministicAutoencoder(BaseAutoencoder):
    """Base of the autoencoders whose code is a function of the input. Not for direct use.

    They add what a deterministic code supports: its activation, and a sparsity
    penalty with a target activation rate.
    """

    _parameter_constraints: dict = {
        **BaseAutoencoder._parameter_constraints,
        "code_size": [
            Interval(Integral, 1, None, closed="left"),
            Interval(Real, 0, 1, closed="neither"),
        ],
        "code_activation": [StrOptions(set(ACTIVATIONS))],
        "sparsity_target": [Interval(Real, 0, 1, closed="neither"), None],
        "ordered_codes": ["boolean", StrOptions({"auto"})],
    }
    _architecture_parameters = (
        *BaseAutoencoder._architecture_parameters,
        "code_activation",
        "ordered_codes",
    )
    # Measured for these (reconstruction and denoising objectives); the
    # variational autoencoder, whose constant rate the average would let run
    # its whole budget, keeps the last step's weights.
    _averaged_epochs = AVERAGED_EPOCHS
    _objective_parameters = (*BaseAutoencoder._objective_parameters, "sparsity_target")

    def _training_rows(self, X, X_targets, device, continuing):
        rows, targets = super()._training_rows(X, X_targets, device, continuing)
        self._update_data_range(targets, continuing)
        return rows, targets

    def _update_data_range(self, X, continuing):
        """Each feature's range in the training targets, and how many entries take its ends."""
        # Outputs are clipped from this release on; saved models keep their outputs.
        self._clips_outputs = True
        low, high = column_extremes(X)
        if continuing and hasattr(self, "data_min_"):
            # Models saved before the counts were kept count each end as taken once.
            earlier_low = (self.data_min_, getattr(self, "_data_min_count", 1))
            earlier_high = (self.data_max_, getattr(self, "_data_max_count", 1))
            low = merged_extreme(low, earlier_low, np.less)
            high = merged_extreme(high, earlier_high, np.greater)
            # Models saved before the rows were counted count from these rows.
            n_rows = getattr(self, "_data_rows", 0) + X.shape[0]
        else:
            n_rows = X.shape[0]
        (self.data_min_, self._data_min_count), (self.data_max_, self._data_max_count) = low, high
        self._data_rows = n_rows

    def _output_bounds(self):
        """The bounds that the training targets pile up against, or None where there are none.

        A feature's least value bounds its outputs from below when enough
        entries take it (:func:`~sklae._bounds.entries_needed`: ``max(2,
        sqrt(n))`` of ``n`` rows; pixels at 0, counts at 0, a saturated
        sensor), else the least value of every feature when that many take
        it (pixels share [0, 1]); the same for the largest values. Clipping
        to a bound that new values respect can only bring an output nearer
        to them, and removes the overshoot of a linear decoder. The least and
        largest of a sample of continuous values are no such bound: a new
        row exceeds the largest of ``n`` with probability ``1 / (n + 1)``,
        and clipping it there moved a table of 150 training rows' denoised
        test rows eight times further from the clean ones than PCA's
        projection, from 1% of the values. Those ends are not clipped, nor
        are ends that rounding ties (see ``entries_needed``).
        """
        # getattr: saved models of earlier releases clipped nothing.
        if not getattr(self, "_clips_outputs", False) or not hasattr(self, "data_min_"):
            return None
        if not hasattr(self, "_data_min_count"):
            # Saved before the ends were counted: clipped to the whole range, as then.
            return self.data_min_, self.data_max_
        # Models saved before the rows were counted needed two entries at a bound.
        needed = entries_needed(getattr(self, "_data_rows", 0))
        low = piled_up_bound(self.data_min_, self._data_min_count, np.min, -np.inf, needed)
        high = piled_up_bound(self.data_max_, self._data_max_count, np.max, np.inf, needed)
        if np.all(np.isinf(low)) and np.all(np.isinf(high)):
            return None
        return low, high

    def _check_parameters(self, X):
        super()._check_parameters(X)
        if self.sparsity_target is not None and self.code_activation != "logistic":
            raise ValueError(
                "sparsity_target is a target activation rate in (0, 1), so it needs codes in "
                "(0, 1): set code_activation='logistic', or sparsity_target=None for an L1 "
                "penalty."
            )

    def _pca_start_possible(self):
        """Why the network cannot start at PCA's solution, or None when it can."""
        reason = super()._pca_start_possible()
        if reason is None and self.code_activation != "identity":
            return f"code_activation={self.code_activation!r} bends PCA's linear codes"
        return reason

    def _orders_codes(self):
        """Whether training orders the code units (``ordered_codes``)."""
        if self.ordered_codes == "auto":
            # A custom encoder fixes its own code width: code_size is unused.
            return self._code_size_is_fraction() and self.encoder is None
        return bool(self.ordered_codes)

    def _code_size_is_fraction(self):
        return isinstance(self.code_size, Real) and not isinstance(self.code_size, Integral)

    def _resolve_code_size(self, X, seed):
        """The code width to train: for a fraction, PCA's number of components for it.

        The network contains PCA's solution (``init``), so a code as wide as the
        number of principal components that explain ``code_size`` of the
        variance explains at least as much; after training, the ordered code
        is cut to the fewest units that explain it on held-out rows.
        """
        if not self._code_size_is_fraction() or self.encoder is not None:
            return None if self.encoder is not None else int(self.code_size)
        sample = evenly_spaced_rows(X, PCA_START_ROWS)
        # Rows without spread have no variance to explain: one unit, and no
        # 0 / 0 warning from PCA's ratios.
        if min(sample.shape) < 2 or not np.any(np.ptp(sample, axis=0)):
            return 1
        pca = PCA(n_components=float(self.code_size), svd_solver="full").fit(sample)
        return int(pca.n_components_)

    def _make_module(self, n_features, pca_start=False):
        code_size = self._code_size_to_train(n_features)
        ordered = self._orders_codes()
        if pca_start:
            encoder, decoder = self._encoder_decoder(n_features, code_size)
            return LinearPathAutoencoder(
                encoder,
                decoder,
                n_features,
                code_size,
                self._resolved_output_activation(),
                ordered_codes=ordered,
            )
        encoder, decoder = self._encoder_decoder(n_features, code_size, self.code_activation)
        return Autoencoder(
            encoder, decoder, self._resolved_output_activation(), ordered_codes=ordered
        )

    def _after_training(self, X, targets, plan):
        """The explained-variance curve of ordered codes, and a fraction's code width."""
        module = self.net_.module_
        if not (self._orders_codes() and isinstance(module, Autoencoder)):
            self.explained_variance_curve_ = None
            self.explained_variance_ratio_ = None
            return
        width = self.code_size_
        module.keep_units(width, width)
        if plan.validation_fraction is not None:
            rows = RandomRowSplit(plan.validation_fraction, plan.split_seed).indices(X.shape[0])[1]
        else:
            rows = np.arange(X.shape[0])
        # An evenly spaced sample is plenty for a curve of fractions.
        rows = rows[:: max(1, len(rows) // CURVE_ROWS)]
        curve = self._prefix_explained_variance(X[rows], targets[rows], width)
        self.explained_variance_curve_ = curve
        kept = width
        if self._code_size_is_fraction():
            reaching = np.flatnonzero(curve >= self.code_size)
            kept = int(reaching[0]) + 1 if len(reaching) else width
        module.keep_units(kept, width)
        self.code_size_ = kept
        self.explained_variance_ratio_ = np.diff(curve[:kept], prepend=0.0)

    def _prefix_explained_variance(self, inputs, targets, width):
        """Share of the targets' variance that the first ``k`` code units explain, each ``k``."""
        targets = np.asarray(
            targets.toarray() if sparse.issparse(targets) else targets, dtype=np.float64
        )
        total = float(np.sum((targets - targets.mean(axis=0)) ** 2))
        codes = self._map_rows(inputs, lambda module, rows: module.encode(rows), width)
        curve = np.empty(width)
        for units in range(1, width + 1):
            # float32, as the network computes: no float64 copy of it per prefix.
            prefix = np.ascontiguousarray(codes[:, :units], dtype=np.float32)
            reconstruction = self._map_rows(
                prefix, lambda module, rows: module.decode(rows), targets.shape[1]
            )
            error = float(np.sum((targets - reconstruction) ** 2))
            curve[units - 1] = 1.0 - error / total if total > 0 else 1.0
        return curve

    def _make_criterion(self):
        return AutoencoderObjective(
            ReconstructionLoss(self.loss, self._resolved_output_activation()),
            sparsity=self.sparsity,
            sparsity_target=self.sparsity_target,
            contractive=self.contractive,
        )
