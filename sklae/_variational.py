"""VariationalAutoencoder: Gaussian codes, the evidence lower bound, and sampling."""

from numbers import Integral, Real

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted

from ._base import BaseAutoencoder
from ._networks import (
    AutoencoderObjective,
    LinearPathVariationalNetwork,
    ReconstructionLoss,
    VariationalAutoencoderNetwork,
    gaussian_kl,
)
from ._validation import check_unit_interval


class VariationalAutoencoder(BaseAutoencoder):
    """Variational autoencoder: codes with a Gaussian posterior, and generation by sampling.

    The encoder outputs, for each row, the mean and log-variance of a Gaussian
    distribution over codes; training maximises the evidence lower bound (ELBO):
    the reconstruction log-likelihood of a code sampled from that distribution,
    minus ``beta`` times its KL divergence from the standard normal prior
    (Kingma & Welling, 2014; ``beta > 1`` as in Higgins et al., 2017). The prior
    then fills the code space, so :meth:`sample` decodes draws from it into new
    rows. :meth:`transform` returns posterior means and :meth:`inverse_transform`
    decodes, as for :class:`AutoencoderTransformer`.

    Parameters
    ----------
    code_size : int, default=2
        Dimension of the latent code.

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

    output_activation : {"auto", "identity", "sigmoid"}, default="auto"
        Applied to the decoder's output; ``"auto"`` means ``"sigmoid"`` for
        ``loss="bce"`` and ``"identity"`` otherwise.

    loss : {"mse", "l1", "bce"}, default="mse"
        Reconstruction term, summed over the features of a row (a Gaussian,
        Laplace or Bernoulli log-likelihood up to constants). ``"bce"`` suits
        data in [0, 1] such as images.

    beta : float, default=1.0
        Weight of the KL term. 1 is the ELBO; larger values trade reconstruction
        for a smoother, more disentangled code space.

    sparsity : float, default=0.0
        Weight of an L1 penalty on the posterior means.

    contractive : float, default=0.0
        Weight of the squared Jacobian norm of the posterior mean (Hutchinson's
        one-pass estimate).

    image_shape : tuple of int or None, default=None
        ``(height, width)`` or ``(channels, height, width)``: use a convolutional
        encoder and decoder for images given as flat rows.

    conv_channels : tuple of int, default=(32, 64)
        Channels of the convolutions when ``image_shape`` is set.

    encoder : torch.nn.Module or None, default=None
        A custom encoder mapping rows to ``2 * code_size`` values (means, then
        log-variances). Give ``decoder`` too.

    decoder : torch.nn.Module or None, default=None
        The matching custom decoder, mapping ``code_size`` codes back to rows.

    init : {"auto", "pca", "random"}, default="random"
        Where training starts. ``"pca"`` adds a linear path beside the
        non-linear layers (to the posterior means, a learnt offset of the
        log-variances, and from code to output), set to the optimum of the
        linear Gaussian VAE: probabilistic PCA (Tipping and Bishop, 1999) with
        the noise variance ``beta / 2`` that the summed squared error and
        ``beta`` imply, fitted on ``X`` (at most 20000 evenly spaced rows);
        the last non-linear layers start at zero. The network starts at that
        solution and learns only what improves the validation ELBO on it by
        more than its noise (``early_stopping``). ``"random"`` builds the plain
        network. ``"auto"`` means ``"pca"`` where it applies (``loss="mse"``,
        no sigmoid output, no custom ``encoder``, dense ``X``) and
        ``"random"`` elsewhere; ``"pca"`` where it does not apply raises a
        ``ValueError``. Not the default: on the ADBench tables it raised the
        held-out ELBO on one half (median +0.31 nats, 7 of 10 tables) but not
        on the other (median 0.00, 5 of 10; on a 103-row table the start was
        kept and ended 3.2 nats below a random start's fit).

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

    learning_rate : {"constant", "cosine"}, default="constant"
        Learning-rate schedule. ``"constant"`` keeps ``learning_rate_init``,
        as ``MLPRegressor`` does. ``"cosine"`` anneals the rate from
        ``learning_rate_init`` to zero over the ``max_iter`` epochs, step by
        step (Loshchilov and Hutter, 2017); reaching ``max_iter`` is then the
        planned end, not a failure to converge, and raises no
        ``ConvergenceWarning``. It is not the default here: on this
        objective (``loss="bce"``, defaults otherwise) it changed the held-out
        ELBO by -0.11 nats on digits (code 2, ten seeds), +0.28 on 5000 MNIST
        images and -0.83 on 5000 Fashion-MNIST images (code 8, three seeds),
        in more epochs. With the constant rate, a fit can end its budget while
        the validation ELBO still improves and then says so with a
        ``ConvergenceWarning`` (2 of 52 seeds on the 1797 digits). A skorch
        ``LRScheduler`` in ``callbacks`` takes over the schedule.
        :meth:`partial_fit` always uses a constant rate.

    learning_rate_init : float or "auto", default=1e-3
        Learning rate of the Adam optimiser. ``"auto"`` scales ``3e-3`` by the
        square root of the batch's share of 256 rows and trains the weights of
        more than 128 inputs per unit at ``128 / fan_in`` of it, as in
        :class:`AutoencoderTransformer` (not the default here: not measured
        with this estimator's objective).

    alpha : float, default=0.0
        L2 penalty on the weights (weight decay). Weights it shrinks towards
        zero are set to zero before they reach float32's slow subnormal range
        (user guide, "Weight decay on a CPU").

    max_grad_norm : float or None, default=None
        Clip the L2 norm of all gradients together to this value before each
        optimiser step (:func:`torch.nn.utils.clip_grad_norm_`), which keeps a
        few extreme rows or a large learning rate from blowing the weights up.
        None does not clip.

    early_stopping : bool or "auto", default="auto"
        Hold out ``validation_fraction`` of the rows and stop when the
        validation loss has not improved for ``n_iter_no_change`` epochs; the
        weights of the best epoch are restored, and the weights training
        started from count as an epoch (see ``init``). ``"auto"`` does so
        whenever there are two rows or more (``partial_fit`` never holds rows
        out). ``False`` trains on every row and stops when the training loss
        stops improving in the same way.

    validation_fraction : float, default=0.1
        Share of rows held out for early stopping.

    n_iter_no_change : int or "auto", default="auto"
        Epochs without improvement by more than ``tol`` before stopping.
        ``"auto"`` waits 10 epochs, and on small data sets, whose epochs make
        few gradient steps, as many epochs as make 320 steps (10 epochs of
        the 32 steps a data set of 512 rows makes with ``batch_size="auto"``):
        a network leaving its start often first does worse on held-out rows,
        and 10 epochs of 56 rows (40 steps) stop it before it improves.

    tol : float, default=1e-4
        Relative improvement that counts.

    warm_start : bool, default=False
        Continue from the fitted weights on the next :meth:`fit`.

    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, shuffling and the sampling of codes in training.

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
        Where to train and predict.

    callbacks : list of skorch callbacks or None, default=None
        Extra :mod:`skorch.callbacks` for training.

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
        The trained skorch net.

    module_ : torch.nn.Module
        The trained network (``encode``, ``decode`` and ``posterior`` methods).

    loss_curve_ : list of float
        Training loss (negative ELBO per row) after each epoch.

    n_iter_ : int
        Number of epochs trained.

    code_size_ : int
        Dimension of the latent code.

    best_loss_ : float or None
        Lowest training loss, when ``early_stopping`` is False.

    validation_scores_ : list of float or None
        Negative validation loss after each epoch, with ``early_stopping``.

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

    n_features_in_ : int
        Number of features seen during :term:`fit`.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :term:`fit`, when they are all strings.

    See Also
    --------
    AutoencoderTransformer : The deterministic autoencoder.
    sklearn.mixture.GaussianMixture : Another generative model with ``sample``.

    Notes
    -----
    :meth:`score_samples` evaluates the ELBO at the posterior mean (no sampling),
    so scores are deterministic: ``-(reconstruction term + beta * KL)`` per row.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklae import VariationalAutoencoder
    >>> X = load_digits().data / 16.0
    >>> vae = VariationalAutoencoder(code_size=2, loss="bce", max_iter=5, random_state=0)
    >>> vae.fit(X).transform(X).shape
    (1797, 2)
    >>> vae.sample(3, random_state=0).shape
    (3, 64)
    """

    _parameter_constraints: dict = {
        **BaseAutoencoder._parameter_constraints,
        "beta": [Interval(Real, 0, None, closed="left")],
    }
    _objective_parameters = (*BaseAutoencoder._objective_parameters, "beta")

    def __init__(
        self,
        code_size=2,
        *,
        hidden_layer_sizes="auto",
        activation="relu",
        output_activation="auto",
        loss="mse",
        beta=1.0,
        sparsity=0.0,
        contractive=0.0,
        image_shape=None,
        conv_channels=(32, 64),
        encoder=None,
        decoder=None,
        init="random",
        max_iter="auto",
        batch_size="auto",
        learning_rate="constant",
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
        self.output_activation = output_activation
        self.loss = loss
        self.beta = beta
        self.sparsity = sparsity
        self.contractive = contractive
        self.image_shape = image_shape
        self.conv_channels = conv_channels
        self.encoder = encoder
        self.decoder = decoder
        self.init = init
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

    def _make_module(self, n_features, pca_start=False):
        encoder, decoder = self._encoder_decoder(n_features, 2 * self.code_size)
        if pca_start:
            return LinearPathVariationalNetwork(
                encoder, decoder, n_features, self.code_size, self._resolved_output_activation()
            )
        return VariationalAutoencoderNetwork(encoder, decoder, self._resolved_output_activation())

    def _pca_start_possible(self):
        reason = super()._pca_start_possible()
        if reason is None and self.loss != "mse":
            return (
                f"loss={self.loss!r} has no closed-form linear solution (the start is "
                "probabilistic PCA, the optimum of the Gaussian VAE with loss='mse')"
            )
        return reason

    def _start_at_pca(self, module, components, mean, variances, spread, n_rows):
        # The loss sums squared errors and adds beta * KL: a Gaussian likelihood
        # of variance beta / 2. (Kept above zero: log-variances must be finite.)
        module.start_at_pca(components, mean, variances, max(self.beta / 2.0, 1e-6))

    def _make_criterion(self):
        return AutoencoderObjective(
            ReconstructionLoss(self.loss, self._resolved_output_activation(), reduction="row_sum"),
            sparsity=self.sparsity,
            contractive=self.contractive,
            kl_weight=self.beta,
        )

    def _reference_losses(self, targets):
        # The reconstruction term sums over a row's features instead of averaging.
        return tuple(
            None if loss is None else loss * targets.shape[1]
            for loss in super()._reference_losses(targets)
        )

    def score_samples(self, X):
        """Evidence lower bound (ELBO) of each sample, at the posterior mean.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data to score.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            ``-(reconstruction term + beta * KL)`` per row: the negative of the
            training loss of that row. Higher is better.
        """
        X = self._validate_input(X)
        check_unit_interval(X, self.loss)
        objective = self.net_.criterion_

        def elbo(module, rows):
            mean, log_variance = module.posterior(rows)
            logits = module.decode_before_activation(mean)
            reconstruction = objective.reconstruction.per_entry(logits, rows)
            # Sums in float64: a float32 sum's rounding depends on the batch's
            # size, and a row's score must not.
            penalty = self.beta * gaussian_kl(mean.double(), log_variance.double())
            return -(reconstruction.double().sum(dim=1) + penalty)[:, None]

        return self._map_rows(X, elbo, 1)[:, 0]

    def score(self, X, y=None):
        """Mean evidence lower bound (ELBO) per sample; higher is better.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data to score.
        y : None
            Ignored; present for API consistency.

        Returns
        -------
        score : float
            The mean of :meth:`score_samples`.
        """
        return float(np.mean(self.score_samples(X)))

    def sample(self, n_samples=1, random_state=None):
        """Generate new rows by decoding codes drawn from the standard normal prior.

        Parameters
        ----------
        n_samples : int, default=1
            Number of rows to generate.
        random_state : int, RandomState instance or None, default=None
            Seeds the draw of codes.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features_in_)
            Generated rows, float64.
        """
        check_is_fitted(self)
        if not isinstance(n_samples, Integral) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}")
        codes = check_random_state(random_state).standard_normal((n_samples, self.code_size_))
        return self.inverse_transform(codes)
