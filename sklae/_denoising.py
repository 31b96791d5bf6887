"""DenoisingAutoencoder: learn to remove noise from rows."""

from numbers import Real

import numpy as np
import torch
from scipy import sparse
from sklearn.base import _fit_context
from sklearn.utils._param_validation import Interval, StrOptions

from ._base import DeterministicAutoencoder
from ._engine import CORRUPTIONS, Corruption, Recorruption, TrainingRows, rows_on
from ._noise import components_above_noise, estimate_noise_level, prediction_weights
from ._validation import ACCEPTED_SPARSE, FLOAT_DTYPES, check_array, check_unit_interval

NOISE_KINDS = CORRUPTIONS
# Noise kinds whose level is a probability.
PROBABILITY_NOISES = ("masking", "salt_and_pepper")
# noise_level="auto" for clean training rows, which have no noise to measure:
# a tenth of the range of data scaled to [0, 1] (or of a standardised
# feature's standard deviation), or a tenth of the entries masked or salted.
CLEAN_ROWS_NOISE_LEVEL = 0.1
# alpha of Recorrupted-to-Recorrupted for noisy rows: 1 makes the input and
# the target two independent noisy copies of the clean row with the same noise
# variance, twice the data's (the setting of Noise2Noise). Smaller values make
# the input nearer the rows predict sees and the target noisier; 1 did best
# on MNIST among 0.5, 0.7, 1, 1.5 and 2 (user guide, "Noisy rows alone").
RECORRUPTION_SCALE = 1.0


class DenoisingAutoencoder(DeterministicAutoencoder):
    """Autoencoder that learns to remove noise from rows, from noisy rows alone if need be.

    Three ways to learn, by what the training data are:

    - **Noisy rows only** (the default, ``noise_level="auto"``): ``X`` holds
      measurements with additive Gaussian noise of unknown level and no
      clean versions. The level is estimated from ``X``
      (:func:`~sklae.estimate_noise_level`, fitted as ``noise_level_``) and
      the network learns from pairs of independent noisy copies drawn from
      each row (Recorrupted-to-Recorrupted, see ``noisy_data``), an
      objective whose expectation is the error against the unseen clean rows.
    - **Clean rows** (``noise_level`` given, or another ``noise``): every
      epoch the rows are corrupted afresh (Gaussian noise, masking or
      salt-and-pepper, seeded by ``random_state``) and the network learns to
      output the clean rows (Vincent et al., 2008).
    - **Noisy rows with clean twins**: pass the clean rows as ``X_clean`` to
      :meth:`fit` and the network learns that mapping.

    :meth:`predict` then denoises new rows, its outputs kept within the range
    of the training targets (pixels of images scaled to [0, 1] stay in it),
    :meth:`transform` returns their codes and :meth:`inverse_transform`
    decodes codes. :func:`~sklae.denoise_image` denoises a whole image with a
    denoiser trained on rows of its patches.

    Training runs on a :class:`skorch.NeuralNet` (fitted as ``net_``) with a fast
    data path: mini-batches are contiguous tensor slices, shuffled and corrupted
    every epoch without a per-sample Python loop.

    Parameters
    ----------
    code_size : int, float in (0, 1) or "auto", default="auto"
        Width of the code (the number of output features of :meth:`transform`).
        A denoiser needs a code wide enough for the clean signal; the noise
        keeps it from learning the identity, so it may exceed the number of
        input features. ``"auto"`` takes every principal direction of noisy
        ``X`` that shows signal: those whose eigenvalue exceeds the largest
        that noise alone reaches, the Marchenko-Pastur edge ``(1 +
        sqrt(g))**2`` noise variances (``noise_level_`` squared; ``g`` the
        columns per row; see :func:`sklae._noise.detection_threshold`): one
        noise variance with many more rows than columns, four for as many.
        The network starts (``init``) at the best linear denoiser of new rows
        on that code: each component's score weighted by
        :func:`sklae._noise.prediction_weights`, near zero for directions
        barely above the noise, one half where keeping the whole projection
        starts to pay (``prediction_threshold``: twice the noise variance
        with many rows), towards one for strong directions. The code taken
        before, only those directions, projected whole, started the network
        where weak directions were lost, and it learnt them back only from
        many rows; the wider, weighted start gained 0.2 to 0.7 dB on images
        and photographs and kept tables of few rows ahead of PCA at its best
        (see the user guide). For clean ``X``, every direction whose variance
        exceeds the noise's. A float is the fraction of variance to explain,
        as in :class:`AutoencoderTransformer`.

    hidden_layer_sizes : int, tuple of int or "auto", default=(256, 128)
        Widths of the encoder's hidden layers, from input to code (with
        ``image_shape``, from the last convolution to the code). The decoder
        uses them in reverse order. ``()`` makes a single linear map each way.
        ``"auto"`` applies :class:`AutoencoderTransformer`'s rule (as wide as
        the input, 128 to 512 units); not the default here: learning from
        noisy rows alone it lost 0.14 dB on digits, 0.12 on MNIST, 0.04 on
        Fashion-MNIST and 0.10 on photographs at noise 0.1, and gained 0.06
        at noise 0.2.

    activation : {"relu", "tanh", "logistic", "identity", "leaky_relu", "elu", "gelu"}, \
            default="relu"
        Activation between hidden layers.

    code_activation : {"identity", "relu", "tanh", "logistic", "leaky_relu", "elu", "gelu"}, \
            default="identity"
        Activation of the code layer; ``"identity"`` keeps codes linear, like
        the scores of PCA.

    output_activation : {"auto", "identity", "sigmoid"}, default="auto"
        Applied to the decoder's output. ``"auto"`` means ``"sigmoid"`` for
        ``loss="bce"`` and ``"identity"`` otherwise. ``"sigmoid"`` suits data
        scaled to [0, 1], such as images: denoised pixels stay in range.

    loss : {"mse", "l1", "bce"}, default="mse"
        Loss between the network's output and the clean rows: mean squared
        error, mean absolute error, or binary cross-entropy (for data in
        [0, 1]; other data raises a ``ValueError``).

    noise : {"gaussian", "masking", "salt_and_pepper"}, default="gaussian"
        How training rows are corrupted. ``"gaussian"`` adds normal noise;
        ``"masking"`` sets entries to zero; ``"salt_and_pepper"`` sets entries
        to their feature's minimum or maximum in the training data (each half
        of the time).

    noise_level : float or "auto", default="auto"
        Standard deviation of the Gaussian noise, in units of ``X``, or the
        probability that an entry is masked or salted/peppered (then at most
        1). With noisy rows (``noisy_data``) it is the level of the noise in
        ``X``, and ``"auto"`` estimates it from ``X``
        (:func:`~sklae.estimate_noise_level`); with clean rows it is the
        level of the noise added to them in training, and ``"auto"`` means
        0.1. Zero trains a plain autoencoder. The level used is fitted as
        ``noise_level_``.

    noisy_data : bool or "auto", default="auto"
        Whether ``X`` holds noisy measurements without clean versions. The
        network then learns from pairs drawn afresh every epoch from each
        noisy row ``y``: the input ``y + sigma * z`` and the target ``y -
        sigma * z``, for standard normal ``z`` and ``sigma`` the noise level
        (``noise_level``). For Gaussian noise the two are independent noisy
        copies of the clean row, so the expected squared error against the
        target is the error against the clean row plus a constant, whatever
        the network (Recorrupted-to-Recorrupted, Pang et al., 2021; with
        ``alpha = 1`` it is the setting of Noise2Noise, Lehtinen et al.,
        2018, whose two copies need not be given). :meth:`predict` applies
        the network to the noisy rows as they are. Chosen over Stein's
        unbiased risk estimate (SURE), which trains on the noisy rows
        themselves and so rewards a network that reproduces their noise
        (measured: its training estimate fell below the true error from the
        first epoch, and held-out error rose), and over adding noise without
        a correction (Noisier2Noise), see the user guide. Validation rows
        (``early_stopping``) are scored by the same pairs, drawn once. It
        needs ``noise="gaussian"`` and ``loss="mse"``. ``"auto"`` means True
        when ``noise="gaussian"``, ``noise_level="auto"`` (the level is then
        estimated) and ``loss="mse"``, False otherwise (clean rows, corrupted in training,
        as with a given ``noise_level``). Ignored when :meth:`fit` gets
        ``X_clean``.

    sparsity : float, default=0.0
        Weight of a sparsity penalty on the codes, as in
        :class:`AutoencoderTransformer`; 0 turns it off.

    sparsity_target : float in (0, 1) or None, default=None
        Target mean activation of each code unit (a KL penalty, needs
        ``code_activation="logistic"``); None means an L1 penalty on the codes.

    contractive : float, default=0.0
        Weight of the contractive penalty (the squared Frobenius norm of the
        encoder's Jacobian at the corrupted input); 0 turns it off.

    image_shape : tuple of int or None, default=None
        ``(height, width)`` or ``(channels, height, width)`` of the images that
        the rows of ``X`` flatten; when given, the encoder and decoder are
        convolutional, which suits image denoising.

    conv_channels : tuple of int, default=(32, 64)
        Channels of the convolutional encoder's layers (each halves the image
        size); the decoder mirrors them. Used with ``image_shape``.

    encoder, decoder : torch.nn.Module or None, default=None
        A custom encoder and decoder, given together; copies are trained.

    init : {"auto", "pca", "random"}, default="auto"
        Where training starts. ``"pca"`` adds a linear path from input to code
        and from code to output beside the non-linear layers, sets it to PCA's
        projection and reconstruction (computed on ``X``, at most 20000 evenly
        spaced rows) and starts the last non-linear layers at zero: the network
        starts at PCA's solution exactly and learns only what improves on it.
        With validation rows (``early_stopping``), a fit that cannot beat that
        start by more than the noise of the validation rows ends with it, so
        held-out error is no worse than PCA's but by chance. ``"random"``
        builds the plain network with PyTorch's initialisation. ``"auto"``
        means ``"pca"`` where it applies (identity ``code_activation``, no
        sigmoid output, no custom ``encoder``, dense ``X``) and ``"random"``
        elsewhere; ``"pca"`` where it does not apply raises a ``ValueError``.

    ordered_codes : bool or "auto", default="auto"
        Train the code units in order of importance with nested dropout
        (Rippel et al., 2014): the first ``k`` units then make a good
        ``k``-unit code for every ``k``, as PCA's first ``k`` components do,
        so one fit gives the error at every code size
        (``explained_variance_curve_``) and :meth:`inverse_transform` decodes
        a code's first units alone. It costs some accuracy at the full code
        size (measured on digits, code 8: 0.0141 against 0.0128 test error).
        ``"auto"`` orders codes when ``code_size`` is a fraction.

    max_iter : int or "auto", default="auto"
        Maximum number of epochs (passes over the training data). ``"auto"``
        budgets about 4000 gradient steps, at least 10 and at most 200 epochs:
        what a network needs is counted in steps, so a few hundred rows (some
        32 steps per epoch with ``batch_size="auto"``) get up to 200 epochs,
        and 20000 rows (71 steps per epoch) get 57 instead of 200 passes over
        data that already gave every step a fresh batch. Early stopping may end
        a fit sooner.

    batch_size : int or "auto", default="auto"
        Rows per mini-batch. ``"auto"`` takes about ``n_samples / 32`` rows, so
        that an epoch is some 32 gradient steps: at least 16 rows (or all of
        them, when fewer), at most 256. A last, shorter batch is trained too.

    learning_rate : {"constant", "cosine"}, default="cosine"
        Learning-rate schedule. ``"cosine"`` anneals the rate from
        ``learning_rate_init`` to zero over the ``max_iter`` epochs, step by
        step (Loshchilov and Hutter, 2017); reaching ``max_iter`` is then the
        planned end, not a failure to converge, and raises no
        ``ConvergenceWarning``. ``"constant"`` keeps ``learning_rate_init``,
        as ``MLPRegressor`` does. A denoiser's inputs or targets are drawn
        afresh every epoch, so its gradients are noisier than a plain
        autoencoder's, and a rate annealed to zero removes the noise floor
        that a constant rate leaves (chosen on MNIST, +0.23 dB; confirmed on
        Fashion-MNIST, photographs at noise 0.1 and 0.2 and digits: +0.27,
        +0.13, +0.17, +0.06 dB, learning from noisy rows alone). A skorch
        ``LRScheduler`` in ``callbacks`` takes over the schedule.
        :meth:`partial_fit` always uses a constant rate.

    learning_rate_init : float or "auto", default=1e-3
        Learning rate of the Adam optimiser. ``"auto"`` scales ``3e-3`` by the
        square root of the batch's share of 256 rows and trains the weights of
        more than 128 inputs per unit at ``128 / fan_in`` of it, as in
        :class:`AutoencoderTransformer`. Not the default here: learning from
        noisy rows alone (``benchmarks/bench_denoising.py``'s sets, defaults
        otherwise) it lost 0.16 dB on MNIST, 0.26 on Fashion-MNIST and 0.11 on
        photographs at noise 0.1, and gained 0.05 at noise 0.2 (digits: 0.00).

    alpha : float, default=0.0
        Strength of the L2 penalty on the weights (not the biases), applied as
        the optimiser's weight decay. Weights it shrinks towards zero are set
        to zero before they reach float32's slow subnormal range (user guide,
        "Weight decay on a CPU"). With PCA's start (``init``), it weighs
        against the loss of the data scaled to a spread of one: the same in
        any units.

    max_grad_norm : float or None, default=None
        Clip the L2 norm of all gradients together to this value before each
        optimiser step (:func:`torch.nn.utils.clip_grad_norm_`), which keeps a
        few extreme rows or a large learning rate from blowing the weights up.
        With PCA's start (``init``), the gradients are those of the data
        scaled to a spread of one, so a norm means the same in any units.
        None does not clip.

    early_stopping : bool or "auto", default="auto"
        Hold out ``validation_fraction`` of the rows and stop when the
        validation loss has not improved for ``n_iter_no_change`` epochs; the
        weights of the best epoch are restored, and the weights training
        started from count as an epoch (see ``init``). ``"auto"`` does so
        whenever there are two rows or more (``partial_fit`` never holds rows
        out). The weights an epoch is scored (and kept) with are a moving
        average of the steps' weights over about three epochs (Polyak
        averaging; training goes on from the last step's), each step counted
        by the inverse of its learning rate: a fit that early stopping ends at
        a high rate keeps a model without the noise of its last steps, and one
        annealed to its end keeps its last steps. ``False`` trains on every
        row and stops when the training loss stops improving in the same way.

    validation_fraction : float, default=0.1
        Share of the rows held out for early stopping, in (0, 1).

    n_iter_no_change : int or "auto", default="auto"
        Epochs without improvement by more than ``tol`` before stopping.
        ``"auto"`` waits 10 epochs, and on small data sets, whose epochs make
        few gradient steps, as many epochs as make 320 steps (10 epochs of
        the 32 steps a data set of 512 rows makes with ``batch_size="auto"``):
        a network leaving PCA's solution first does worse on held-out rows,
        and 10 epochs of 56 rows (40 steps) stop it before it improves.

    tol : float, default=1e-4
        Relative improvement that counts: a loss counts as better when it is
        below ``best * (1 - tol)``.

    warm_start : bool, default=False
        When True, a new call to :meth:`fit` continues from the fitted weights
        instead of starting afresh.

    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, the validation split, the shuffling of
        mini-batches and the corruption. An int gives identical results on CPU
        from one fit to the next. The global torch random state is left
        untouched.

    verbose : int or "auto", default="auto"
        ``"auto"`` keeps short fits silent and has a fit still running after
        20 seconds print a line on standard error every few seconds (epoch,
        losses, seconds per epoch, at most how long is left), in a terminal
        and in a notebook. 0 prints nothing. With 1 or more, print a table of
        epoch, training loss, validation loss and seconds per epoch, as skorch
        does; with 2 or more, also a progress bar through each epoch's batches
        (skorch's ``ProgressBar``, via tqdm, which renders as a widget in
        notebooks).

    device : {"cpu", "cuda", "auto"}, default="cpu"
        Where to train and predict. ``"auto"`` picks a GPU when torch sees one.
        Asking for ``"cuda"`` without one raises a ``ValueError``.

    callbacks : list of skorch callbacks or None, default=None
        Extra :mod:`skorch.callbacks` added to the training net. Each fit uses
        copies.

    freeze : {"encoder", "decoder"} or None, default=None
        Keep one side of the network fixed while the other trains, for
        transfer learning: with a pretrained ``encoder`` (and ``decoder``),
        ``freeze="encoder"`` trains only the decoder to reconstruct the new
        data from the pretrained codes. The encoding side is the encoder with
        the linear path into the code (``init``); the decoding side the
        decoder with the linear path out of it. A parameter, so ``clone`` and
        grid searches carry it; a warm start applies its new value.

    Attributes
    ----------
    net_ : DenoisingNet
        The trained skorch net; ``net_.history`` holds per-epoch records.

    module_ : torch.nn.Module
        The trained network, with ``encode`` and ``decode`` methods.

    data_min_ : ndarray of shape (n_features_in_,)
        Per-feature minimum of the training targets (``X_clean`` when given,
        else ``X``; across all calls of :meth:`partial_fit` and warm starts):
        the value of "pepper". Where ``max(2, sqrt(n))`` entries or more of
        ``n`` rows take it (the data pile up against it: pixels at 0, counts
        at 0), the least value :meth:`predict` outputs; for the other
        features, the least value of all features where that many entries
        take that (pixels share [0, 1]), else none: the least of a sample of
        continuous values, or a tie of a few rounded ones, is no bound on new
        rows.

    data_max_ : ndarray of shape (n_features_in_,)
        Per-feature maximum of the training targets: the value of "salt", and
        the largest value :meth:`predict` outputs under the same rule.

    noise_level_ : float
        The noise level training used: estimated from noisy rows
        (``noise_level="auto"``), as given, or the root mean square of ``X -
        X_clean`` when clean rows were given.

    loss_curve_ : list of float
        Training loss after each epoch (all epochs, across warm starts).

    n_iter_ : int
        Number of epochs trained.

    best_loss_ : float or None
        Lowest training loss, when ``early_stopping`` is False.

    validation_scores_ : list of float or None
        Negative validation loss after each epoch, when validation rows were held
        out (see ``early_stopping``).

    best_validation_score_ : float or None
        Validation score (negative validation loss) of the weights returned,
        when validation rows were held out: the best epoch's, or the starting
        weights' when no epoch beat them by more than the noise.

    best_epoch_ : int or None
        The epoch whose weights were returned (counted as ``n_iter_`` counts
        them), when validation rows were held out; 0 when the starting weights
        were kept (on a warm start, ``n_iter_`` before it). None without
        validation rows.

    hidden_layer_sizes_ : tuple of int
        The hidden widths of the network (``hidden_layer_sizes`` resolved).

    explained_variance_curve_ : ndarray of shape (n_units,) or None
        With ordered codes: for each ``k``, the share of the variance of the
        held-out rows (the validation rows, or the training rows without
        them) that the first ``k`` units of the trained code explain, ``1 -
        SSE_k / SST``; as ``np.cumsum(PCA().explained_variance_ratio_)``.
        None without ordered codes.

    explained_variance_ratio_ : ndarray of shape (code_size_,) or None
        With ordered codes: the share each kept code unit adds to the
        explained variance (the increments of ``explained_variance_curve_``),
        as PCA's ``explained_variance_ratio_``. None without ordered codes.

    n_features_in_ : int
        Number of features seen during :term:`fit`.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :term:`fit`. Defined only when `X`
        has feature names that are all strings.

    See Also
    --------
    AutoencoderTransformer : The same network trained to reconstruct clean input.
    sklearn.decomposition.KernelPCA : Denoising by kernel PCA's inverse transform.
    sklearn.decomposition.PCA : Denoising by projection onto principal components.

    Notes
    -----
    The network computes in float32. :meth:`predict`, :meth:`transform` and
    :meth:`inverse_transform` return float32 for float32 input and float64
    otherwise; sparse input gives dense output.

    Estimating the noise level needs a signal that leaves some directions of
    the rows' space to the noise: pixels of images and tables whose columns
    share information do. On a table of a few unrelated columns the estimate
    is an upper bound (see :func:`~sklae.estimate_noise_level`): give
    ``noise_level`` if it is known.

    The noise is in the units of ``X``: scale ``X`` first (for example
    with :class:`~sklearn.preprocessing.MinMaxScaler` in a pipeline) so that
    one ``noise_level`` suits every feature.

    With ``X_clean``, the given ``X`` is the network's input as it is: no
    further noise is added, and ``noise`` and ``noise_level`` do not apply.
    ``y`` is always ignored, so that class labels passed along by a
    :class:`~sklearn.pipeline.Pipeline` cannot be mistaken for clean rows. With
    metadata routing enabled, ``set_fit_request(X_clean=True)`` and
    ``set_score_request(X_clean=True)`` let :class:`~sklearn.model_selection.GridSearchCV`
    pass clean rows to both.

    References
    ----------
    P. Vincent, H. Larochelle, Y. Bengio and P.-A. Manzagol, "Extracting and
    composing robust features with denoising autoencoders", ICML 2008.

    T. Pang, H. Zheng, Y. Quan and H. Ji, "Recorrupted-to-Recorrupted:
    unsupervised deep learning for image denoising", CVPR 2021.

    J. Lehtinen et al., "Noise2Noise: learning image restoration without
    clean data", ICML 2018.

    G. Chen, F. Zhu and P. A. Heng, "An efficient statistical method for
    image noise level estimation", ICCV 2015.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from sklae import DenoisingAutoencoder
    >>> X, _ = load_digits(return_X_y=True)
    >>> X = X / 16.0
    >>> X_noisy = X + np.random.default_rng(0).normal(scale=0.25, size=X.shape)

    Noisy rows only, noise level unknown (the defaults):

    >>> denoiser = DenoisingAutoencoder(random_state=0).fit(X_noisy)
    >>> bool(abs(denoiser.noise_level_ - 0.25) < 0.025)
    True
    >>> X_denoised = denoiser.predict(X_noisy)
    >>> X_denoised.shape
    (1797, 64)
    >>> bool(np.mean((X_denoised - X) ** 2) < 0.5 * np.mean((X_noisy - X) ** 2))
    True

    Clean rows, corrupted with noise of a given level in training:

    >>> denoiser = DenoisingAutoencoder(noise_level=0.25, max_iter=20, random_state=0)
    >>> denoiser = denoiser.fit(X)
    >>> bool(np.mean((denoiser.predict(X_noisy) - X) ** 2) < np.mean((X_noisy - X) ** 2))
    True
    """

    _parameter_constraints: dict = {
        **DeterministicAutoencoder._parameter_constraints,
        "noise": [StrOptions(set(NOISE_KINDS))],
        "code_size": [
            *DeterministicAutoencoder._parameter_constraints["code_size"],
            StrOptions({"auto"}),
        ],
        "noise_level": [StrOptions({"auto"}), Interval(Real, 0, None, closed="left")],
        "noisy_data": ["boolean", StrOptions({"auto"})],
    }
    # Models saved before noisy rows could be learnt from took X as clean.
    _parameters_since_earlier_releases = {"noisy_data": False}
    # What the targets are, and how noisy, shapes the objective: a warm start
    # with new values rebuilds it.
    _objective_parameters = (
        *DeterministicAutoencoder._objective_parameters,
        "noise",
        "noise_level",
        "noisy_data",
    )

    def __init__(
        self,
        code_size="auto",
        *,
        hidden_layer_sizes=(256, 128),
        activation="relu",
        code_activation="identity",
        output_activation="auto",
        loss="mse",
        noise="gaussian",
        noise_level="auto",
        noisy_data="auto",
        sparsity=0.0,
        sparsity_target=None,
        contractive=0.0,
        image_shape=None,
        conv_channels=(32, 64),
        encoder=None,
        decoder=None,
        init="auto",
        ordered_codes="auto",
        max_iter="auto",
        batch_size="auto",
        learning_rate="cosine",
        learning_rate_init=1e-3,
        alpha=0.0,
        max_grad_norm=None,
        early_stopping="auto",
        validation_fraction=0.1,
        n_iter_no_change="auto",
        tol=1e-4,
        warm_start=False,
        random_state=None,
        verbose="auto",
        device="cpu",
        callbacks=None,
        freeze=None,
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
        self.init = init
        self.ordered_codes = ordered_codes
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.learning_rate = learning_rate
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
        self.freeze = freeze
        self.noise = noise
        self.noise_level = noise_level
        self.noisy_data = noisy_data

    # ------------------------------------------------------------------ fitting

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, X_clean=None):
        """Train the network to denoise ``X``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training rows. Without ``X_clean`` they are taken as clean and
            corrupted afresh in every epoch; with it, they are the noisy inputs.

        y : None
            Ignored; present for API consistency (a Pipeline passes labels here).

        X_clean : {array-like, sparse matrix} of shape (n_samples, n_features), \
                default=None
            Clean versions of the rows of ``X``. When given, the network learns
            to map each row of ``X`` to its clean row, and no noise is added.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        return self._fit(X, incremental=False, X_targets=X_clean)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None, X_clean=None):
        """Train for one more pass over ``X``, keeping what was learnt before.

        The first call initialises the network. No validation split is made and
        ``early_stopping`` does not apply.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The chunk of training rows (noisy inputs when ``X_clean`` is given).

        y : None
            Ignored; present for API consistency.

        X_clean : {array-like, sparse matrix} of shape (n_samples, n_features), \
                default=None
            Clean versions of the rows of ``X``, as in :meth:`fit`.

        Returns
        -------
        self : object
            The updated estimator.
        """
        return self._fit(X, incremental=True, X_targets=X_clean)

    def _check_parameters(self, X):
        super()._check_parameters(X)
        if self.noise in PROBABILITY_NOISES and self.noise_level != "auto" and self.noise_level > 1:
            raise ValueError(
                f"noise_level is the probability of corrupting an entry for "
                f"noise={self.noise!r}, so it must be in [0, 1]; got {self.noise_level!r}."
            )

    def _learns_from_noisy_rows(self):
        """Whether ``X`` alone is noisy data to learn from (``noisy_data``)."""
        if self.noisy_data == "auto":
            return self.noise == "gaussian" and self.noise_level == "auto" and self.loss == "mse"
        if self.noisy_data and self.noise != "gaussian":
            raise ValueError(
                "noisy_data=True learns from rows with Gaussian noise (pairs of independent "
                f"noisy copies), so it needs noise='gaussian'; got noise={self.noise!r}. Give "
                "clean rows with noisy_data=False, or noisy rows with their clean versions "
                "as X_clean."
            )
        if self.noisy_data and self.loss != "mse":
            raise ValueError(
                "noisy_data=True learns from noisy targets, whose squared error is the error "
                f"against the clean rows plus a constant, so it needs loss='mse'; got "
                f"loss={self.loss!r}. Use loss='mse', or give clean rows with noisy_data=False."
            )
        return bool(self.noisy_data)

    def _training_rows(self, X, X_targets, device, continuing):
        """Targets and their inputs: clean twins, noisy rows alone, or corruption per batch."""
        if X_targets is not None:
            # X holds the noisy inputs, which may leave [0, 1] under loss="bce";
            # the clean targets are what the network learns to output.
            X_clean = self._check_clean_rows(X_targets, X, "fit")
            check_unit_interval(X_clean, self.loss)
            self._update_data_range(X_clean, continuing)
            self.noise_level_ = _root_mean_square_difference(X, X_clean)
            self._noisy_inputs = True
            self._recorrupted = False
            rows = TrainingRows(targets=rows_on(X_clean, device), inputs=rows_on(X, device))
            return rows, X_clean
        check_unit_interval(X, self.loss)
        self._update_data_range(X, continuing)
        if self._learns_from_noisy_rows():
            self.noise_level_ = self._noise_level_of(X, continuing)
            self._noisy_inputs = True
            self._recorrupted = True
            pairs = Recorruption(self.noise_level_, RECORRUPTION_SCALE)
            return TrainingRows(targets=rows_on(X, device), corruption=pairs), X
        self.noise_level_ = (
            CLEAN_ROWS_NOISE_LEVEL if self.noise_level == "auto" else float(self.noise_level)
        )
        self._noisy_inputs = False
        self._recorrupted = False
        corruption = Corruption(
            self.noise,
            self.noise_level_,
            low=torch.as_tensor(self.data_min_, dtype=torch.float32),
            high=torch.as_tensor(self.data_max_, dtype=torch.float32),
        )
        return TrainingRows(targets=rows_on(X, device), corruption=corruption), X

    def _noise_level_of(self, X, continuing):
        """The level of the noise in noisy ``X``: given, kept from before, or estimated."""
        if self.noise_level != "auto":
            return float(self.noise_level)
        if continuing and getattr(self, "_estimated_noise_level", False):
            # Later chunks of partial_fit (and warm starts) keep the first
            # estimate: a chunk holds fewer rows to estimate from.
            return float(self.noise_level_)
        self._estimated_noise_level = True
        return estimate_noise_level(X)

    def _make_criterion(self):
        criterion = super()._make_criterion()
        # The targets of pairs drawn from noisy rows carry noise of variance
        # sigma**2 (1 + 1 / alpha**2) that the inputs do not predict.
        # getattr: saved models of earlier releases learnt from clean targets.
        if getattr(self, "_recorrupted", False):
            criterion.target_noise_variance = self.noise_level_**2 * (1 + 1 / RECORRUPTION_SCALE**2)
        return criterion

    def _start_at_pca(self, module, components, mean, variances, spread, n_rows):
        """PCA's solution; from noisy rows, the best linear denoiser of new rows on it.

        Learning from noisy rows alone, the code holds every direction that
        shows signal (``code_size="auto"``), weak ones included, and each
        component's score adds to the reconstruction with its weight in the
        best linear denoiser of new rows (:func:`sklae._noise.prediction_weights`,
        a Wiener weight corrected for the sample's eigenvectors): a direction
        barely above the noise starts near zero and the network learns what
        it can carry, instead of starting at a projection that keeps its
        noise whole.
        """
        if not (getattr(self, "_noisy_inputs", False) and self.noise_level_ > 0):
            super()._start_at_pca(module, components, mean, variances, spread, n_rows)
            return
        eigenvalues = variances.double().numpy() / self.noise_level_**2
        weights = prediction_weights(eigenvalues, components.shape[1] / max(n_rows - 1, 1))
        module.start_at_pca(
            components, mean, spread, weights=torch.as_tensor(weights, dtype=torch.float32)
        )

    def _resolve_code_size(self, X, seed):
        """``code_size="auto"``: every principal direction whose signal outweighs the noise."""
        if self.code_size != "auto" or self.encoder is not None:
            return super()._resolve_code_size(X, seed)
        if min(X.shape) < 2:
            return 1
        return components_above_noise(X, self.noise_level_, noisy=self._noisy_inputs)

    def _check_clean_rows(self, X_clean, X, method):
        X_clean = check_array(
            X_clean, accept_sparse=ACCEPTED_SPARSE, dtype=FLOAT_DTYPES, input_name="X_clean"
        )
        if X_clean.shape != X.shape:
            raise ValueError(
                f"X_clean must have the shape of X in {method}: X has shape {X.shape}, "
                f"X_clean has shape {X_clean.shape}."
            )
        return X_clean

    # ------------------------------------------------------------------ inference

    def predict(self, X):
        """Denoise ``X``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Noisy rows.

        Returns
        -------
        X_denoised : ndarray of shape (n_samples, n_features)
            The denoised rows, in the units of ``X``; float32 for float32 input
            and float64 otherwise.
        """
        X = self._validate_input(X)
        return self._reconstruct(X)

    def score(self, X, y=None, X_clean=None):
        """Negative mean squared error of the denoised ``X``.

        Against ``X`` itself by default (how well clean rows pass through the
        denoiser), or against ``X_clean`` when the clean versions of noisy rows
        are known. Higher is better.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Rows to denoise.

        y : None
            Ignored; present for API consistency.

        X_clean : {array-like, sparse matrix} of shape (n_samples, n_features), \
                default=None
            Clean versions of the rows of ``X``.

        Returns
        -------
        score : float
            ``-mean((X_clean - predict(X)) ** 2)`` over every entry, with
            ``X_clean = X`` when not given.
        """
        X = self._validate_input(X)
        target = X if X_clean is None else self._check_clean_rows(X_clean, X, "score")
        if sparse.issparse(target):
            target = target.toarray()
        difference = np.asarray(target, dtype=np.float64) - self._reconstruct(X)
        return -float(np.mean(difference * difference))


def _root_mean_square_difference(X, X_clean):
    """Root mean square of ``X - X_clean`` over every entry (dense or sparse)."""
    difference = X - X_clean
    if sparse.issparse(difference):
        squares = difference.multiply(difference).sum()
    else:
        squares = np.sum(np.square(difference, dtype=np.float64))
    return float(np.sqrt(squares / max(1, X.shape[0] * X.shape[1])))
