"""AutoencoderTransformer: a non-linear drop-in for PCA."""

from ._base import DeterministicAutoencoder


class AutoencoderTransformer(DeterministicAutoencoder):
    """Autoencoder dimensionality reduction, with the API of :class:`~sklearn.decomposition.PCA`.

    A fully connected encoder maps each row to a ``code_size``-dimensional code
    and a mirrored decoder maps the code back; both are trained together to
    reconstruct the input. :meth:`transform` returns codes, :meth:`inverse_transform`
    decodes them. With ``activation="identity"``, no hidden layers and the MSE
    loss it learns the same subspace as PCA; with non-linear layers it can follow
    curved structure that PCA cannot.

    Training runs on a :class:`skorch.NeuralNet` (fitted as ``net_``) with a fast
    data path: mini-batches are contiguous tensor slices, shuffled every epoch.

    Parameters
    ----------
    code_size : int or float, default=0.95
        Width of the code (the number of output features of :meth:`transform`).
        It may exceed the number of input features. A float in (0, 1), as
        ``PCA(n_components=0.95)``, asks for the fewest code units that
        explain that fraction of the variance of held-out rows: the network is
        trained with ordered codes (``ordered_codes``) as wide as the number
        of PCA components that explain the fraction, and its code is then cut
        to the first units that do; ``code_size_`` is the width kept. The
        default keeps 95% of the variance, as the common
        ``PCA(n_components=0.95)`` does, with no more units than PCA needs.

    hidden_layer_sizes : int, tuple of int or "auto", default="auto"
        Widths of the encoder's hidden layers, from input to code (with
        ``image_shape``, from the last convolution to the code). The decoder
        uses them in reverse order. ``()`` makes a single linear map each way.
        ``"auto"`` makes the first hidden layer as wide as the input (at least
        128 and at most 512 units, and no more than there are rows) and the
        second a quarter of that (at least 64): ``(128, 64)`` for up to 128
        features, ``(512, 128)`` for 784 pixels; ``(128, 64)`` after the
        convolutions of ``image_shape``. Each is widened to ``(2 * c, c)`` for
        a code of ``c`` units where that is wider, so that no hidden layer is
        narrower than the code (the fitted widths are ``hidden_layer_sizes_``).

    activation : {"relu", "tanh", "logistic", "identity", "leaky_relu", "elu", "gelu"}, \
            default="relu"
        Activation between hidden layers (and convolutions).

    code_activation : {"identity", "logistic", "tanh", "relu", "leaky_relu", "elu", "gelu"}, \
            default="identity"
        Activation of the code. ``"identity"`` keeps codes linear, like PCA's
        scores; ``"logistic"`` bounds them to (0, 1), as the classic sparse (KL)
        and contractive autoencoders do.

    output_activation : {"auto", "identity", "sigmoid"}, default="auto"
        Applied to the decoder's output. ``"auto"`` means ``"sigmoid"`` for
        ``loss="bce"`` and ``"identity"`` otherwise. ``"sigmoid"`` suits data
        scaled to [0, 1], such as images.

    loss : {"mse", "l1", "bce"}, default="mse"
        Reconstruction loss minimised in training: mean squared error, mean
        absolute error, or binary cross-entropy (for data in [0, 1]; other data
        raises a ``ValueError``).

    sparsity : float, default=0.0
        Weight of an activity penalty on the codes (sparse autoencoder): their
        mean absolute value, or with ``sparsity_target`` a KL divergence. With it
        the code may be wider than the input (overcomplete) and still learn
        structure instead of the identity.

    sparsity_target : float or None, default=None
        Target mean activation in (0, 1) of each code unit: the penalty becomes
        the KL divergence between Bernoulli(``sparsity_target``) and each unit's
        mean activation over a batch. Needs ``code_activation="logistic"``.

    contractive : float, default=0.0
        Weight of the squared Frobenius norm of the encoder's Jacobian
        (contractive autoencoder): codes then change little under small input
        perturbations. Closed form for a single linear layer (with or without a
        logistic code); otherwise Hutchinson's unbiased estimate, one backward
        pass with random sign projections drawn from the seeded training
        generator. It is part of the training loss only; validation losses
        leave it out.

    image_shape : tuple of int or None, default=None
        ``(height, width)`` or ``(channels, height, width)`` of images given as
        flat rows (C order). When set, the encoder is convolutional (3x3
        convolutions of stride 2, then fully connected layers of
        ``hidden_layer_sizes`` to the code) and the decoder mirrors it back up
        (3x3 transposed convolutions of stride 2, a learned upsampling); input
        and output stay flat rows, so the estimator still fits a Pipeline.

    conv_channels : tuple of int, default=(32, 64)
        Channels of the encoder's convolutions when ``image_shape`` is set (the
        decoder mirrors them). Each one halves the height and width.

    encoder : torch.nn.Module or None, default=None
        A custom encoder mapping ``(n, n_features)`` batches to ``(n, k)`` codes,
        for example pretrained layers for transfer learning. Give ``decoder``
        too. Each fit trains a copy, so the module passed stays as it is and
        ``clone`` and grid searches start from its weights. The architecture
        parameters above are then unused.

    decoder : torch.nn.Module or None, default=None
        The matching custom decoder, mapping codes back to rows (before
        ``output_activation``).

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
        step (Loshchilov and Hutter, 2017): the budget ends with small steps,
        and reaching ``max_iter`` is the planned end, not a failure to
        converge, so it raises no ``ConvergenceWarning``. ``"constant"``
        keeps ``learning_rate_init``, as ``MLPRegressor`` does (and then
        warns when ``max_iter`` ends the fit). A skorch ``LRScheduler`` in
        ``callbacks`` takes over the schedule. :meth:`partial_fit` always
        uses a constant rate.

    learning_rate_init : float or "auto", default="auto"
        Learning rate of the Adam optimiser. ``"auto"`` is ``3e-3`` for
        batches of 256 rows, times the square root of the batch's share of
        256 rows for smaller ones (``7.5e-4`` for 16 rows): Adam's square-root
        scaling rule, which keeps the noise of the steps the same as batches
        shrink (Malladi et al., 2022). Each weight with more than 128 inputs
        per unit (the input layer of 784 pixels, say) trains at
        ``128 / fan_in`` of that rate: Adam moves every weight by about the
        rate whatever its gradient, so a unit's pre-activation moves with its
        number of inputs, and the share keeps that step at what it is for 128
        inputs (the per-layer rate of maximal-update parametrisation, Yang et
        al., 2021). Measured against a constant ``1e-3`` over the same budget
        (tables: three seeds, digits: two, MNIST: one): ADBench tables 0.664x
        and 0.321x PCA's error on the two halves against 0.656x and 0.344x,
        scikit-learn's tables 0.936x against 0.934x, digits 0.499x against
        0.502x; 20000 MNIST images, code 8: 0.565x against 0.579x (``3e-3`` on
        every weight: 0.636x in half the budget). A float trains every weight
        at that rate.

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
        below ``best * (1 - tol)``. Relative, so it does not depend on the scale
        of the data.

    warm_start : bool, default=False
        When True, a new call to :meth:`fit` continues from the fitted weights
        instead of starting afresh.

    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, the validation split and the shuffling of
        mini-batches. An int gives identical results on CPU from one fit to the
        next. The global torch random state is left untouched.

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
        Extra :mod:`skorch.callbacks` (learning-rate schedules, checkpoints,
        gradient clipping...) added to the training net. Each fit uses copies.

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
    net_ : AutoencoderNet
        The trained skorch net; ``net_.history`` holds per-epoch records.

    module_ : torch.nn.Module
        The trained network, with ``encode`` and ``decode`` methods.

    loss_curve_ : list of float
        Training loss after each epoch (all epochs, across warm starts).

    n_iter_ : int
        Number of epochs trained.

    code_size_ : int
        Width of the codes: ``code_size``, or the custom encoder's output width.

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
        were kept: a network started at PCA's solution (``init``) is then
        ``PCA(code_size)``, no epoch having beaten it by more than the noise
        (on a warm start, ``n_iter_`` before it: the model it continued from).
        None without validation rows.

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

    data_min_ : ndarray of shape (n_features_in_,)
        Per-feature minimum of the training rows (across all calls of
        :meth:`partial_fit` and warm starts). Where ``max(2, sqrt(n))``
        entries or more of ``n`` rows take it (the rows pile up against it:
        pixels at 0, counts at 0), the least value that reconstructions and
        :meth:`inverse_transform` output, which brings them nearer to new
        rows (they respect the bound) and removes a linear decoder's
        overshoot; for the other features, the least value of all features
        where that many entries take that (pixels share [0, 1]), else none:
        the least of a sample of continuous values, or a tie of a few rounded
        ones, is no bound on new rows.

    data_max_ : ndarray of shape (n_features_in_,)
        Per-feature maximum of the training rows: the largest value
        reconstructions output under the same rule.

    n_features_in_ : int
        Number of features seen during :term:`fit`.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :term:`fit`. Defined only when `X`
        has feature names that are all strings.

    See Also
    --------
    sklearn.decomposition.PCA : Linear dimensionality reduction.
    sklearn.neural_network.MLPRegressor : Multi-layer perceptron, no code layer.

    Notes
    -----
    The network computes in float32. :meth:`transform` and
    :meth:`inverse_transform` return float32 for float32 input and float64
    otherwise.

    :meth:`score` is the negative mean squared reconstruction error whatever the
    training ``loss``, so scores of different models compare.

    A ``KeyboardInterrupt`` during :meth:`fit` ends training early and keeps the
    model trained so far, with a warning. Training whose loss stops being finite
    raises :class:`~sklae.exceptions.TrainingDivergedError`. A fit that raises
    leaves a fitted estimator as it was.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklae import AutoencoderTransformer
    >>> X, _ = load_digits(return_X_y=True)
    >>> X = X / 16.0
    >>> autoencoder = AutoencoderTransformer(code_size=8, max_iter=5, random_state=0)
    >>> codes = autoencoder.fit_transform(X)
    >>> codes.shape
    (1797, 8)
    >>> autoencoder.inverse_transform(codes).shape
    (1797, 64)
    """

    def __init__(
        self,
        code_size=0.95,
        *,
        hidden_layer_sizes="auto",
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
        init="auto",
        ordered_codes="auto",
        max_iter="auto",
        batch_size="auto",
        learning_rate="cosine",
        learning_rate_init="auto",
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
