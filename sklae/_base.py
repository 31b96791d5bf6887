"""Shared scikit-learn machinery of the autoencoder estimators.

The estimators here are thin: they validate parameters and data, build a torch
module (from :mod:`sklae._networks`) and a skorch net (from :mod:`sklae._training`)
inside ``fit``, and translate the net's history into scikit-learn's fitted
attributes. Imports go one way: estimators -> training engine -> networks.
"""

import contextlib
import copy
import re
import warnings
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
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import assert_all_finite, check_random_state
from sklearn.utils import validation as sklearn_validation
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted
from skorch.callbacks import GradientNormClipping, ProgressBar
from torch import nn

from ._networks import (
    ACTIVATIONS,
    LOSSES,
    Autoencoder,
    AutoencoderObjective,
    ReconstructionLoss,
    conv_encoder_decoder,
    mlp_encoder_decoder,
)
from ._persistence import VersionedPickleMixin
from ._training import (
    EVALUATION_BATCH_SIZE,
    AutoencoderNet,
    DivergenceGuard,
    ImprovementStopper,
    RandomRowSplit,
    RowData,
)

AUTO_BATCH_SIZE = 256
ACCEPTED_SPARSE = ("csr", "csc")
FLOAT_DTYPES = (np.float64, np.float32)
# Out-of-core input is checked for NaN and infinity this many bytes at a time.
CHECK_CHUNK_BYTES = 64 * 2**20


def is_out_of_core(X):
    """Whether ``X`` is a 2-D memmap, trained on one mini-batch at a time from disk."""
    return isinstance(X, np.memmap) and X.ndim == 2


def resolve_device(device):
    """Concrete torch device name for the ``device`` parameter."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            "device='cuda' was requested but torch.cuda.is_available() is False: "
            "no usable GPU was found. Use device='cpu', or device='auto' to take a GPU "
            "only when there is one."
        )
    return device


def as_float32_tensor(array):
    """Dense float32 torch tensor sharing memory with ``array`` where possible."""
    source = np.asarray(array)
    with np.errstate(over="ignore"):
        array = np.asarray(source, dtype=np.float32)
    if (
        source.dtype != np.float32
        and array.size
        and not np.isfinite([array.min(), array.max()]).all()
    ):
        # Finite float64 values beyond float32's range would silently become
        # infinite in the network, and so would every output.
        raise ValueError(
            f"X holds values of magnitude up to {np.abs(source).max():.3g}, beyond the range "
            "of float32 (about 3.4e38) in which the network computes. Scale X first, for "
            "example with sklearn.preprocessing.StandardScaler."
        )
    if not (array.flags.c_contiguous and array.flags.writeable):
        # torch refuses to share read-only memory (memmaps, broadcast views).
        array = np.array(array, dtype=np.float32, order="C")
    return torch.from_numpy(array)


def check_unit_interval(X, loss):
    """Raise if ``loss='bce'`` is asked of data outside [0, 1]."""
    if loss != "bce":
        return
    values = X.data if sparse.issparse(X) else X
    if values.size == 0:
        return
    low, high = values.min(), values.max()
    if low < 0 or high > 1:
        raise ValueError(
            f"loss='bce' needs every value of X in [0, 1], but X ranges from {low:.6g} to "
            f"{high:.6g}. Scale X first (for example with sklearn.preprocessing.MinMaxScaler) "
            "or use loss='mse'."
        )


# Remedies appended to scikit-learn's input errors that name a problem but not a
# fix: (pattern of the message, what to do). The original message is kept, so
# the errors still match what scikit-learn's estimator checks expect.
INPUT_ERROR_REMEDIES = (
    (
        r"could not convert|Unable to convert array of bytes/strings",
        "X must be numeric: encode text and categorical columns as numbers first, for "
        "example with sklearn.preprocessing.OneHotEncoder or OrdinalEncoder in a "
        "sklearn.compose.ColumnTransformer.",
    ),
    (
        r"^Complex data not supported",
        "The networks compute with real numbers: pass the real and imaginary parts as "
        "separate features, for example np.hstack([X.real, X.imag]).",
    ),
    (
        r"contains infinity",
        "Replace or drop the infinite values first, for example with "
        "np.nan_to_num(X, posinf=..., neginf=...) or by clipping X.",
    ),
    (
        r"Found array with dim [3-9]",
        "Pass a 2-D array of shape (n_samples, n_features): flatten each sample, for "
        "example X.reshape(len(X), -1) (for images, set image_shape to the original "
        "shape of one sample).",
    ),
    (
        r"^X has \d+ features, but",
        "Pass the same columns, in the same order, as in fit.",
    ),
)


@contextlib.contextmanager
def explained_input_errors():
    """Re-raise scikit-learn's input ValueErrors with a remedy where they lack one."""
    try:
        yield
    except ValueError as error:
        message = str(error)
        for pattern, remedy in INPUT_ERROR_REMEDIES:
            if re.search(pattern, message):
                if message.startswith("Complex data not supported"):
                    # scikit-learn appends the whole array; the problem is its dtype.
                    message = "Complex data not supported."
                message = message.rstrip()
                raise ValueError(
                    f"{message}{'' if message.endswith('.') else '.'} {remedy}"
                ) from error
        raise


def validate_data(estimator, X, **kwargs):
    """:func:`sklearn.utils.validation.validate_data`, with remedies in its errors."""
    with explained_input_errors():
        return sklearn_validation.validate_data(estimator, X, **kwargs)


def check_array(array, **kwargs):
    """:func:`sklearn.utils.validation.check_array`, with remedies in its errors."""
    with explained_input_errors():
        return sklearn_validation.check_array(array, **kwargs)


class BaseAutoencoder(
    VersionedPickleMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator
):
    """Base class of the autoencoder estimators. Not for direct use.

    Subclasses may override :meth:`_make_module` and :meth:`_make_criterion`,
    and set ``_net_class`` to a subclass of :class:`AutoencoderNet`.
    """

    _net_class = AutoencoderNet

    _parameter_constraints: dict = {
        "code_size": [Interval(Integral, 1, None, closed="left")],
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "code_activation": [StrOptions(set(ACTIVATIONS))],
        "output_activation": [StrOptions({"auto", "identity", "sigmoid"})],
        "loss": [StrOptions(set(LOSSES))],
        "sparsity": [Interval(Real, 0, None, closed="left")],
        "sparsity_target": [Interval(Real, 0, 1, closed="neither"), None],
        "contractive": [Interval(Real, 0, None, closed="left")],
        "image_shape": ["array-like", None],
        "conv_channels": ["array-like"],
        "encoder": [nn.Module, None],
        "decoder": [nn.Module, None],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "max_grad_norm": [Interval(Real, 0, None, closed="neither"), None],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "warm_start": ["boolean"],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "device": [StrOptions({"cpu", "cuda", "auto"})],
        "callbacks": [list, None],
    }

    def __init__(
        self,
        code_size=2,
        *,
        hidden_layer_sizes=(128, 64),
        activation="relu",
        code_activation="identity",
        output_activation="auto",
        loss="mse",
        sparsity=0.0,
        sparsity_target=None,
        contractive=0.0,
        image_shape=None,
        conv_channels=(32, 64),
        encoder=None,
        decoder=None,
        max_iter=200,
        batch_size="auto",
        learning_rate_init=1e-3,
        alpha=0.0,
        max_grad_norm=None,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-4,
        warm_start=False,
        random_state=None,
        verbose=0,
        device="cpu",
        callbacks=None,
    ):
        self.code_size = code_size
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.code_activation = code_activation
        self.output_activation = output_activation
        self.loss = loss
        self.sparsity = sparsity
        self.sparsity_target = sparsity_target
        self.contractive = contractive
        self.image_shape = image_shape
        self.conv_channels = conv_channels
        self.encoder = encoder
        self.decoder = decoder
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.alpha = alpha
        self.max_grad_norm = max_grad_norm
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.warm_start = warm_start
        self.random_state = random_state
        self.verbose = verbose
        self.device = device
        self.callbacks = callbacks

    # ------------------------------------------------------------------ building

    def _hidden_widths(self):
        if not isinstance(self.hidden_layer_sizes, Integral) and not len(self.hidden_layer_sizes):
            return ()
        return self._positive_ints(self.hidden_layer_sizes, "hidden_layer_sizes")

    def _resolved_output_activation(self):
        if self.output_activation == "auto":
            return "sigmoid" if self.loss == "bce" else "identity"
        if self.loss == "bce" and self.output_activation != "sigmoid":
            raise ValueError(
                "loss='bce' compares outputs with values in [0, 1], so it needs "
                f"output_activation='sigmoid' or 'auto', got {self.output_activation!r}."
            )
        return self.output_activation

    @staticmethod
    def _positive_ints(value, name, lengths=None):
        values = (value,) if isinstance(value, Integral) else tuple(value)
        if any(not isinstance(v, Integral) or v < 1 for v in values) or (
            lengths is not None and len(values) not in lengths
        ):
            count = f"{' or '.join(map(str, lengths))} " if lengths else ""
            raise ValueError(f"{name} must hold {count}positive integers, got {value!r}")
        return tuple(int(v) for v in values)

    def _check_variant_parameters(self, n_features):
        """Errors for parameter combinations that cannot work, named and explained."""
        if self.sparsity_target is not None and self.code_activation != "logistic":
            raise ValueError(
                "sparsity_target is a target activation rate in (0, 1), so it needs codes in "
                "(0, 1): set code_activation='logistic', or sparsity_target=None for an L1 "
                "penalty."
            )
        if (self.encoder is None) != (self.decoder is None):
            raise ValueError("encoder and decoder must be given together, or neither.")
        if self.encoder is not None and self.image_shape is not None:
            raise ValueError(
                "image_shape builds a convolutional network; it cannot be combined with a "
                "custom encoder and decoder."
            )
        if self.image_shape is not None:
            shape = self._positive_ints(self.image_shape, "image_shape", lengths=(2, 3))
            if int(np.prod(shape)) != n_features:
                raise ValueError(
                    f"image_shape={shape} describes {int(np.prod(shape))} values per row, but "
                    f"X has {n_features} features."
                )
            self._positive_ints(self.conv_channels, "conv_channels")

    def _encoder_decoder(self, n_features, encoder_outputs):
        """Untrained encoder and decoder, the encoder with ``encoder_outputs`` outputs."""
        if self.encoder is not None:
            # Copies: the parameter keeps the user's (possibly pretrained) weights
            # untouched, so clone and grid search start every fit from them.
            return copy.deepcopy(self.encoder), copy.deepcopy(self.decoder)
        if self.image_shape is not None:
            return conv_encoder_decoder(
                self._positive_ints(self.image_shape, "image_shape"),
                self.code_size,
                self._positive_ints(self.conv_channels, "conv_channels"),
                self._hidden_widths(),
                self.activation,
                self.code_activation,
                encoder_outputs,
            )
        return mlp_encoder_decoder(
            n_features,
            self.code_size,
            self._hidden_widths(),
            self.activation,
            self.code_activation,
            encoder_outputs,
        )

    def _make_module(self, n_features):
        """The untrained torch module for ``n_features`` input columns."""
        encoder, decoder = self._encoder_decoder(n_features, self.code_size)
        return Autoencoder(encoder, decoder, self._resolved_output_activation())

    def _make_criterion(self):
        """The training objective, called as ``criterion(outputs, target, inputs, module)``."""
        return AutoencoderObjective(
            ReconstructionLoss(self.loss, self._resolved_output_activation()),
            sparsity=self.sparsity,
            sparsity_target=self.sparsity_target,
            contractive=self.contractive,
        )

    @staticmethod
    def _code_width(module, n_features):
        """Width of ``module``'s codes, checking that it round-trips a row."""
        probe = torch.zeros(2, n_features)
        was_training = module.training
        module.eval()
        try:
            with torch.no_grad():
                code = module.encode(probe)
                reconstruction = module.decode(code)
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

    def _make_net(self, n_features, device, seeds):
        init_seed, split_seed, shuffle_seed = seeds
        # Seeding inside fork_rng makes initialisation reproducible without
        # touching the caller's global torch random state.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(init_seed)
            module = self._make_module(n_features)
        code_width = self._code_width(module, n_features)
        callbacks = [
            ("divergence_guard", DivergenceGuard(self.learning_rate_init)),
            ("gradient_clipping", GradientNormClipping(self.max_grad_norm)),
            (
                "stopper",
                ImprovementStopper(
                    monitor="valid_loss" if self.early_stopping else "train_loss",
                    patience=self.n_iter_no_change,
                    threshold=self.tol,
                    threshold_mode="rel",
                    load_best=self.early_stopping,
                ),
            ),
            *copy.deepcopy(self.callbacks or []),
        ]
        if self.verbose >= 2:
            # Within-epoch progress for long epochs; the per-epoch table prints too.
            callbacks.append(("progress_bar", ProgressBar()))
        net = self._net_class(
            module=module,
            criterion=self._make_criterion(),
            optimizer=torch.optim.Adam,
            lr=self.learning_rate_init,
            optimizer__weight_decay=self.alpha,
            # One fused kernel per step instead of a loop over parameters: the
            # same Adam update, and a third less time per step on small networks.
            optimizer__fused=True,
            # The L2 penalty applies to weights, not to biases, as in MLPRegressor.
            optimizer__param_groups=[("*.bias", {"weight_decay": 0.0})],
            max_epochs=self.max_iter,
            batch_size=AUTO_BATCH_SIZE,
            train_split=RandomRowSplit(self.validation_fraction, split_seed),
            callbacks=callbacks,
            verbose=self.verbose,
            device=device,
            random_seed=shuffle_seed,
        )
        return net.initialize(), code_width

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

    def _fit(self, X, incremental):
        state_before = dict(self.__dict__)
        try:
            return self._fit_unguarded(X, incremental)
        except BaseException:
            # A failed fit leaves the estimator exactly as it was: validation may
            # already have reset n_features_in_, and training ran on a copy.
            self.__dict__.clear()
            self.__dict__.update(state_before)
            raise

    def _fit_unguarded(self, X, incremental):
        continuing = hasattr(self, "net_") and (incremental or self.warm_start)
        if is_out_of_core(X):
            self._validate_out_of_core(X, reset=not continuing)
        else:
            X = validate_data(
                self,
                X,
                reset=not continuing,
                accept_sparse=ACCEPTED_SPARSE,
                dtype=FLOAT_DTYPES,
            )
        self._resolved_output_activation()
        self._hidden_widths()
        self._check_variant_parameters(X.shape[1])
        self._check_training_targets(X)
        if self.early_stopping and not incremental and X.shape[0] < 2:
            raise ValueError(
                "early_stopping=True holds out a validation set, which needs at least "
                f"2 samples; got n_samples = {X.shape[0]}."
            )

        if continuing:
            net = copy.deepcopy(self.net_)
        else:
            device = resolve_device(self.device)
            rng = check_random_state(self.random_state)
            seeds = rng.randint(np.iinfo(np.int32).max, size=3)
            net, self.code_size_ = self._make_net(X.shape[1], device, seeds)

        data = self._row_data(X, net.device)
        net.batch_size = (
            min(AUTO_BATCH_SIZE, X.shape[0]) if self.batch_size == "auto" else self.batch_size
        )
        net.verbose = self.verbose
        use_validation = self.early_stopping and not incremental
        if not use_validation:
            net.train_split = None
        elif not isinstance(net.train_split, RandomRowSplit):
            net.train_split = RandomRowSplit(self.validation_fraction, int(net.random_seed))
        stopper = dict(net.callbacks_)["stopper"]
        # Without a validation split (partial_fit, or early_stopping switched off
        # for a warm start) there is no validation loss to watch.
        stopper.monitor = "valid_loss" if use_validation else "train_loss"
        stopper.load_best = use_validation
        clipping = dict(net.callbacks_).get("gradient_clipping")
        if clipping is not None:
            # Every fit and partial_fit clips with the current max_grad_norm.
            clipping.gradient_clip_value = self.max_grad_norm
        if continuing and not incremental:
            # A warm start keeps the weights but, as in MLPRegressor, trains with
            # the current learning rate and stopping rule.
            net.lr = self.learning_rate_init
            for group in net.optimizer_.param_groups:
                group["lr"] = self.learning_rate_init
            dict(net.callbacks_)["divergence_guard"].learning_rate = self.learning_rate_init
            stopper.patience = self.n_iter_no_change
            stopper.threshold = self.tol
        epochs = 1 if incremental else self.max_iter

        epochs_before = len(net.history)
        net.partial_fit(data, epochs=epochs)
        if net.history and "train_loss" not in net.history[-1]:
            # An interrupted epoch left a record without a loss.
            net.history.pop()
        if not net.history:
            # Interrupted before one epoch was complete: there is no model to keep,
            # so the interrupt goes on to the caller (and _fit restores the estimator).
            raise KeyboardInterrupt
        epochs_run = len(net.history) - epochs_before

        self.net_ = net
        self._set_fitted_attributes(use_validation)
        if epochs_run < epochs and not stopper.stopped_:
            restored = " (the weights of the best validation epoch were restored)"
            warnings.warn(
                f"Training was interrupted after {epochs_run} of {epochs} epochs; the model "
                f"trained so far is kept{restored if use_validation else ''}.",
                UserWarning,
                stacklevel=3,
            )
        elif not incremental and epochs_run == epochs and not stopper.stopped_:
            warnings.warn(
                f"Maximum iterations ({self.max_iter}) reached and the optimization hasn't "
                "converged yet. Increase max_iter or tol, or enable early_stopping.",
                ConvergenceWarning,
                stacklevel=3,
            )
        return self

    def _validate_out_of_core(self, X, reset):
        """validate_data for a memmap, without reading it into memory at once.

        The first row goes through validate_data (dimensions, dtype, feature
        count, n_features_in_); NaN and infinity are then looked for chunk by chunk.
        """
        validate_data(self, X[:1], reset=reset, dtype=FLOAT_DTYPES)
        chunk_rows = max(1, CHECK_CHUNK_BYTES // max(1, X.shape[1] * X.itemsize))
        for start in range(0, X.shape[0], chunk_rows):
            assert_all_finite(
                X[start : start + chunk_rows],
                input_name="X",
                estimator_name=type(self).__name__,
            )

    def _check_training_targets(self, X):
        """Raise if the rows the network learns to output do not suit the loss."""
        check_unit_interval(X, self.loss)

    def _row_data(self, X, device):
        if is_out_of_core(X):
            return RowData(X)
        if sparse.issparse(X):
            return RowData(X.astype(np.float32).tocsr())
        return RowData(as_float32_tensor(X).to(device))

    def _set_fitted_attributes(self, used_validation):
        history = self.net_.history
        self.loss_curve_ = [float(record["train_loss"]) for record in history]
        self.n_iter_ = len(self.loss_curve_)
        if used_validation:
            self.validation_scores_ = [
                -float(record["valid_loss"]) for record in history if "valid_loss" in record
            ]
            self.best_validation_score_ = max(self.validation_scores_)
            self.best_loss_ = None
        else:
            self.validation_scores_ = None
            self.best_validation_score_ = None
            self.best_loss_ = min(self.loss_curve_)

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

    def _map_rows(self, X, function, n_outputs):
        """Apply ``function`` (tensor -> tensor) to the rows of ``X`` in batches.

        Returns an array of ``X``'s dtype; computation is in float32.
        """
        module = self.net_.module_
        device = self.net_.device
        module.eval()
        output = np.empty((X.shape[0], n_outputs), dtype=X.dtype)
        with torch.no_grad():
            for start in range(0, X.shape[0], EVALUATION_BATCH_SIZE):
                chunk = X[start : start + EVALUATION_BATCH_SIZE]
                if sparse.issparse(chunk):
                    chunk = chunk.toarray()
                result = function(as_float32_tensor(chunk).to(device))
                output[start : start + EVALUATION_BATCH_SIZE] = result.cpu().numpy()
        return output

    def _encode(self, X):
        return self._map_rows(X, self.net_.module_.encode, self._n_features_out)

    def _reconstruct(self, X):
        module = self.net_.module_
        return self._map_rows(X, lambda rows: module.decode(module.encode(rows)), X.shape[1])

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
            ``"encoder.0"``); None means every layer of the encoder and decoder.

        Returns
        -------
        outputs : dict of str to ndarray
            For each layer, its float32 output for every row, in network order.
            Convolutional layers keep their ``(n_samples, channels, height,
            width)`` shape.
        """
        X = self._validate_input(X)
        module = self.net_.module_
        available = {
            name: layer
            for name, layer in module.named_modules()
            if name.startswith(("encoder.", "decoder.")) and not list(layer.children())
        }
        if layers is None:
            layers = list(available)
        unknown = [name for name in layers if name not in available]
        if unknown:
            raise ValueError(f"Unknown layers {unknown}; the network has {list(available)}.")
        collected = {name: [] for name in layers}
        hooks = [
            available[name].register_forward_hook(
                lambda _layer, _inputs, output, name=name: collected[name].append(
                    output.detach().cpu().numpy()
                )
            )
            for name in layers
        ]
        try:
            self._reconstruct(X)
        finally:
            for hook in hooks:
                hook.remove()
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
            otherwise); the network itself computes in float32.
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
        if codes.shape[1] != self._n_features_out:
            raise ValueError(
                f"X has {codes.shape[1]} features, but inverse_transform expects codes of "
                f"code_size = {self._n_features_out} features."
            )
        return self._map_rows(codes, self.net_.module_.decode, self.n_features_in_)

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
