"""Torch networks and training objectives for autoencoders.

This module depends on torch only: nothing here knows about scikit-learn, so the
networks can be trained, exported or served without it.

Every autoencoder module here has the same protocol:

* ``encode(x)``: input rows -> codes (for a variational one, the posterior mean);
* ``decode(code)``: codes -> reconstructions, output activation applied;
* ``forward(x)``: a tuple ``(reconstruction_before_output_activation, code, ...)``
  with whatever :class:`AutoencoderObjective` needs; a variational module adds
  the posterior mean and log-variance.

Inputs and outputs are flat rows (the scikit-learn shape) even for
convolutional networks, which reshape internally.

Random draws (a variational code's noise, a contractive penalty's projections)
come from the generator in a module's ``noise_generator`` attribute when the
trainer sets one, so that no fit reads or advances torch's global random state;
:func:`build_initialized` does the same for initial weights.
"""

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

ACTIVATIONS = {
    "identity": nn.Identity,
    "logistic": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
}

OUTPUT_ACTIVATIONS = {"identity": nn.Identity, "sigmoid": nn.Sigmoid}

# The derivative of an activation, as a function of its output, for the
# backpropagation EnsembleAutoencoder writes out (squared_error_gradients).
# ReLU's is the sign of its output (0 or 1), a float already: a boolean mask
# (output > 0) is converted to float before it multiplies, which took four
# times as long as the comparison (a fifth of a step of small members).
OUTPUT_DERIVATIVES = {
    nn.ReLU: lambda layer: torch.sign,
    nn.LeakyReLU: lambda layer: (
        lambda output: torch.where(output > 0, 1.0, output.new_tensor(layer.negative_slope))
    ),
    nn.Tanh: lambda layer: lambda output: 1 - output * output,
    nn.Sigmoid: lambda layer: lambda output: output * (1 - output),
}

LOSSES = ("mse", "l1", "bce")


def make_mlp(widths: Sequence[int], activation: str) -> nn.Sequential:
    """Stack of linear layers with ``activation`` between them, none after the last.

    ``widths`` lists the layer widths from input to output, so ``(64, 32, 8)`` makes
    two linear layers, 64 -> 32 -> 8, with one activation in between. The last layer
    stays linear: an encoder's code and a decoder's output are unconstrained here and
    any squashing is applied by the caller.
    """
    if len(widths) < 2:
        raise ValueError(f"an MLP needs at least two widths, got {tuple(widths)}")
    layers: list[nn.Module] = []
    for position, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if position < len(widths) - 2:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


def with_code_activation(encoder: nn.Sequential, code_activation: str) -> nn.Sequential:
    """``encoder`` followed by ``code_activation`` (nothing added for identity)."""
    if code_activation != "identity":
        encoder.append(ACTIVATIONS[code_activation]())
    return encoder


def initialize_parameters(module: nn.Module, generator: torch.Generator) -> nn.Module:
    """Draw the initial weights of ``module``'s layers from ``generator``, in place.

    The same distributions as PyTorch's own ``reset_parameters`` (Kaiming-uniform
    weights, uniform biases of bound ``1 / sqrt(fan_in)``) for linear,
    convolutional and transposed convolutional layers.
    """
    for layer in module.modules():
        if isinstance(layer, GroupedLinear):
            # Each group as an nn.Linear: uniform in +-1 / sqrt(fan_in), weights and biases.
            bound = 1 / math.sqrt(layer.in_features) if layer.in_features > 0 else 0.0
            layer.weight.data.uniform_(-bound, bound, generator=generator)
            layer.bias.data.uniform_(-bound, bound, generator=generator)
            continue
        if not isinstance(layer, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            if hasattr(layer, "reset_own_parameters"):
                # A module with parameters of its own that draw nothing.
                layer.reset_own_parameters()
            elif any(True for _ in layer.parameters(recurse=False)):
                raise TypeError(f"no seeded initialisation for layers of type {type(layer)}")
            continue
        nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
        if layer.bias is not None:
            fan_in, _ = nn.init._calculate_fan_in_and_fan_out(layer.weight)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            layer.bias.data.uniform_(-bound, bound, generator=generator)
    return module


def build_initialized(build, seed: int) -> nn.Module:
    """``build()``'s module with initial weights drawn from a generator seeded by ``seed``.

    The module is built on the meta device, where construction draws nothing,
    then given memory and initialised: torch's global random state is neither
    read nor advanced, so fits in threads do not disturb each other.
    """
    with torch.device("meta"):
        module = build()
    module = module.to_empty(device="cpu")
    return initialize_parameters(module, torch.Generator().manual_seed(int(seed)))


def mlp_encoder_decoder(
    n_features,
    code_size,
    hidden_layer_sizes=(),
    activation="relu",
    code_activation="identity",
    encoder_outputs=None,
):
    """Fully connected encoder and mirrored decoder.

    ``encoder_outputs`` (default ``code_size``) is the encoder's output width; a
    variational encoder outputs ``2 * code_size`` (means and log-variances).
    """
    widths = [int(n_features), *map(int, hidden_layer_sizes)]
    encoder = make_mlp([*widths, int(encoder_outputs or code_size)], activation)
    decoder = make_mlp([int(code_size), *widths[::-1]], activation)
    return with_code_activation(encoder, code_activation), decoder


def conv_encoder_decoder(
    image_shape,
    code_size,
    channels=(32, 64),
    hidden_layer_sizes=(),
    activation="relu",
    code_activation="identity",
    encoder_outputs=None,
):
    """Convolutional encoder (stride-2 convolutions) and mirrored decoder.

    ``image_shape`` is ``(height, width)`` or ``(channels, height, width)``; rows
    are images flattened in C order. Each encoder stage is a 3x3 convolution of
    stride 2 that halves the height and width (rounding up); the flattened maps
    then pass through fully connected layers of ``hidden_layer_sizes`` to the
    code. The decoder mirrors it: fully connected layers back to the last maps,
    then 3x3 transposed convolutions of stride 2 (learned upsampling), each
    restoring the exact size of the matching encoder stage, so odd sizes such as
    7 x 7 round-trip.
    """
    if len(image_shape) == 2:
        image_shape = (1, *image_shape)
    n_channels, height, width = map(int, image_shape)
    sizes = [(height, width)]
    for _ in channels:
        sizes.append((math.ceil(sizes[-1][0] / 2), math.ceil(sizes[-1][1] / 2)))
    stage_channels = [n_channels, *map(int, channels)]
    dense_widths = [stage_channels[-1] * sizes[-1][0] * sizes[-1][1], *map(int, hidden_layer_sizes)]

    encoder_layers: list[nn.Module] = [nn.Unflatten(1, (n_channels, height, width))]
    for n_in, n_out in zip(stage_channels[:-1], stage_channels[1:]):
        encoder_layers.append(nn.Conv2d(n_in, n_out, 3, stride=2, padding=1))
        encoder_layers.append(ACTIVATIONS[activation]())
    encoder_layers.append(nn.Flatten())
    encoder_layers += make_mlp([*dense_widths, int(encoder_outputs or code_size)], activation)
    encoder = with_code_activation(nn.Sequential(*encoder_layers), code_activation)

    decoder_layers: list[nn.Module] = [
        *make_mlp([int(code_size), *dense_widths[::-1]], activation),
        # make_mlp leaves its last layer linear; the feature maps need the activation.
        ACTIVATIONS[activation](),
        nn.Unflatten(1, (stage_channels[-1], *sizes[-1])),
    ]
    for stage in reversed(range(len(channels))):
        # A stride-2 transposed convolution maps n to 2n - 1 + output_padding
        # pixels: the padding picks the even or odd size of the encoder's stage.
        output_padding = tuple(
            size - (2 * smaller - 1) for size, smaller in zip(sizes[stage], sizes[stage + 1])
        )
        decoder_layers.append(
            nn.ConvTranspose2d(
                stage_channels[stage + 1],
                stage_channels[stage],
                3,
                stride=2,
                padding=1,
                output_padding=output_padding,
            )
        )
        if stage > 0:
            decoder_layers.append(ACTIVATIONS[activation]())
    decoder_layers.append(nn.Flatten())
    return encoder, nn.Sequential(*decoder_layers)


class Autoencoder(nn.Module):
    """A deterministic autoencoder made of any encoder and decoder.

    Parameters
    ----------
    encoder : torch.nn.Module
        Maps a batch of rows ``(n, n_features)`` to codes ``(n, code_size)``.
    decoder : torch.nn.Module
        Maps codes back to rows, before the output activation.
    output_activation : {"identity", "sigmoid"}
        Squashing applied by :meth:`decode`. :meth:`forward` returns the
        reconstruction *before* it, so that a loss can fuse the two (binary
        cross-entropy on logits is stable where ``log(sigmoid(x))`` is not).
    ordered_codes : bool, default=False
        Train with nested dropout (Rippel et al., 2014, "Learning ordered
        representations with nested dropout"): in training, half of the rows of
        each batch keep their whole code and the other half keep only their
        first ``b`` code units, ``b`` drawn uniformly from ``1 .. code_size - 1``
        for each row (the rest set to zero), so every prefix of the code learns
        to reconstruct on its own, as Matryoshka representations (Kusupati et
        al., 2022) train every nested size. The first ``k`` units then form a
        good ``k``-unit code for every ``k``, as PCA's first ``k`` components
        do. Half the rows keep the whole code because the whole code is what
        :meth:`encode` returns by default.

    Attributes
    ----------
    kept_units : int or None
        Code units :meth:`encode` returns (the first ones) and :meth:`decode`
        takes, the others being zero; None keeps them all. Set it on a network
        trained with ``ordered_codes`` to truncate its codes.
    """

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        output_activation="identity",
        ordered_codes=False,
    ):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.output_activation = OUTPUT_ACTIVATIONS[output_activation]()
        self.ordered_codes = ordered_codes
        self.kept_units = None
        self.code_width = None
        self.noise_generator = None

    def _full_code(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode_before_activation(self, code: torch.Tensor) -> torch.Tensor:
        """Reconstructions of whole codes before the output activation (what losses take)."""
        return self.decoder(code)

    def keep_units(self, kept_units, code_width):
        """Truncate the codes to their first ``kept_units`` of ``code_width`` units."""
        self.kept_units = None if kept_units >= code_width else int(kept_units)
        self.code_width = int(code_width)
        return self

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Map input rows to codes (their first ``kept_units`` units)."""
        code = self._full_code(x)
        # getattr: networks saved before codes could be truncated lack the attribute.
        kept = getattr(self, "kept_units", None)
        return code if kept is None else code[:, :kept]

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        """Map codes (or their first units, the rest taken as zero) to reconstructions."""
        return self.output_activation(self.decode_before_activation(self.pad_code(code)))

    def pad_code(self, code: torch.Tensor) -> torch.Tensor:
        """``code`` with zeros for the units past its width, up to the trained width."""
        width = getattr(self, "code_width", None)
        if width is None or code.shape[1] >= width:
            return code
        return F.pad(code, (0, width - code.shape[1]))

    def forward(self, x: torch.Tensor):
        """``(reconstruction before the output activation, code)``."""
        code = self._full_code(x)
        return self.decode_before_activation(self._nested_dropout(code)), code

    @torch.no_grad()
    def squared_error_gradients(
        self, inputs: torch.Tensor, targets: torch.Tensor, with_outputs: bool = False
    ):
        """The mean squared reconstruction error, each parameter's gradient written to ``.grad``.

        :meth:`forward`'s operations and autograd's backward ones written out,
        as :meth:`LinearPathAutoencoder.squared_error_gradients` does (see
        there); ``None`` for a subclass that computes its outputs otherwise
        (a variational network).
        """
        cls = type(self)
        if cls.forward is not Autoencoder.forward or cls._full_code is not Autoencoder._full_code:
            return None
        if cls.decode_before_activation is not Autoencoder.decode_before_activation:
            return None
        steps = self._written_out_steps()
        if steps is None:
            return None
        encoder, decoder = steps
        encoded = forward_steps(encoder, inputs)
        decoded = forward_steps(decoder, encoded[-1])
        reconstruction = decoded[-1]
        loss = F.mse_loss(reconstruction, targets, reduction="none").mean()
        gradient = (reconstruction - targets).mul_(2.0 / reconstruction.numel())
        code_gradient = backward_steps(decoder, decoded, gradient, to_inputs=True)
        backward_steps(encoder, encoded, code_gradient, to_inputs=False)
        return (loss, (reconstruction, encoded[-1])) if with_outputs else loss

    def _written_out_steps(self):
        """The encoder's and decoder's :func:`linear_steps` for a step by hand, or ``None``.

        ``None`` where a layer or activation is not written out, or where
        training draws nested dropout (ordered codes).
        """
        encoder, decoder = linear_steps(self.encoder), linear_steps(self.decoder)
        if encoder is None or decoder is None or (self.training and self.ordered_codes):
            return None
        return encoder, decoder

    def _nested_dropout(self, code: torch.Tensor) -> torch.Tensor:
        if not (self.training and getattr(self, "ordered_codes", False)) or code.shape[1] < 2:
            return code
        n_rows, width = code.shape
        kept = torch.randint(
            1, width, (n_rows, 1), generator=self.noise_generator, device=code.device
        )
        whole = torch.rand((n_rows, 1), generator=self.noise_generator, device=code.device) < 0.5
        kept = torch.where(whole, torch.full_like(kept, width), kept)
        units = torch.arange(width, device=code.device)
        return code * (units < kept).to(code.dtype)

    def jacobian_penalty(
        self, inputs: torch.Tensor, code: torch.Tensor, generator=None
    ) -> torch.Tensor:
        """Mean over rows of the squared Frobenius norm of d code / d input.

        Closed form when the encoder is one linear layer, optionally followed by
        a sigmoid (the contractive autoencoder of Rifai et al., 2011); otherwise
        the unbiased one-backward-pass estimate of
        :func:`projected_jacobian_penalty`.
        """
        layers = list(self.encoder) if isinstance(self.encoder, nn.Sequential) else []
        if len(layers) in (1, 2) and isinstance(layers[0], nn.Linear):
            row_norms = layers[0].weight.pow(2).sum(dim=1)
            if len(layers) == 1:
                return row_norms.sum()
            if isinstance(layers[1], nn.Sigmoid):
                slope = code * (1 - code)
                return (slope.pow(2) * row_norms).sum(dim=1).mean()
        return projected_jacobian_penalty(inputs, code, generator)


@torch.no_grad()
def zero_last_layers(*branches: nn.Module) -> None:
    """Set the weights and bias of each branch's last layer to zero.

    The zero-initialised residual branch: beside a linear path set to a known
    solution, a non-linear branch whose last layer is zero adds nothing, so
    the network starts at that solution exactly.
    """
    for branch in branches:
        last = [
            layer
            for layer in branch.modules()
            if isinstance(layer, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d))
        ][-1]
        last.weight.zero_()
        if last.bias is not None:
            last.bias.zero_()


class LinearPathAutoencoder(Autoencoder):
    """An autoencoder with a linear path beside its non-linear encoder and decoder.

    ``code = linear_encoder(x) + encoder(x)`` and
    ``reconstruction = linear_decoder(code) + decoder(code)``, both paths
    working in the data's own units (below). :meth:`start_at_pca` sets the
    linear path to PCA's projection and reconstruction and the last layers of
    the non-linear branches to zero, so that training starts from PCA's
    solution exactly and the non-linear layers learn only what improves on it
    (the zero-initialised residual branch of Goyal et al., 2017, "Accurate,
    large minibatch SGD", and of ReZero, Bachlechner et al., 2021).

    The data's units: the paths see rows centred on ``input_shift`` and
    divided by ``unit`` (the buffers :meth:`start_at_pca` sets to PCA's mean
    and the data's spread), and their codes and reconstructions are scaled
    back. Adam moves every weight by about its learning rate whatever the
    size of the data, so without this a network learns in the units of its
    input: measured on the ADBench and scikit-learn tables of
    ``benchmarks/bench_defaults.py`` (standardised: 0.657x, 0.306x and
    0.953x PCA's test error), the same rows multiplied by 0.01 gave 1.000x,
    0.847x and 1.000x, and by 100 gave 0.671x, 0.414x and 0.968x, one table
    ending worse than PCA; in the data's units, 0.657x, 0.316x and 0.960x,
    and 0.659x, 0.306x and 0.964x. With the gradients scaled by the loss's
    units (the estimators do, see ``BaseAutoencoder._in_units_of``), the
    fitted model is, like PCA's, the same for the same rows in other units,
    up to float32 rounding. A zero shift and a unit
    of one (before :meth:`start_at_pca`, and for networks saved by earlier
    releases) are the raw units.

    Parameters
    ----------
    encoder : torch.nn.Module
        Non-linear map from rows ``(n, n_features)`` to ``(n, code_size)``.
    decoder : torch.nn.Module
        Non-linear map from codes back to rows, before the output activation.
    n_features, code_size : int
        Widths of the rows and the codes.
    output_activation : {"identity", "sigmoid"}
        See :class:`Autoencoder`.
    """

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        n_features: int,
        code_size: int,
        output_activation="identity",
        ordered_codes=False,
    ):
        super().__init__(encoder, decoder, output_activation, ordered_codes)
        self.linear_encoder = nn.Linear(n_features, code_size)
        self.linear_decoder = nn.Linear(code_size, n_features)
        self.register_buffer("input_shift", torch.zeros(n_features))
        self.register_buffer("unit", torch.ones(()))

    def _full_code(self, x: torch.Tensor) -> torch.Tensor:
        standardized = (x - self.input_shift) / self.unit
        return self.unit * (self.linear_encoder(standardized) + self.encoder(standardized))

    def decode_before_activation(self, code: torch.Tensor) -> torch.Tensor:
        standardized = code / self.unit
        return self.input_shift + self.unit * (
            self.linear_decoder(standardized) + self.decoder(standardized)
        )

    def __setstate__(self, state):
        super().__setstate__(state)
        if "input_shift" not in self._buffers:
            # A network pickled whole by release 0.1.0 learnt in raw units.
            self.register_buffer("input_shift", torch.zeros(self.linear_encoder.in_features))
            self.register_buffer("unit", torch.ones(()))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Networks saved by earlier releases learnt in raw units: zero and one.
        state_dict.setdefault(prefix + "input_shift", torch.zeros_like(self.input_shift))
        state_dict.setdefault(prefix + "unit", torch.ones_like(self.unit))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def jacobian_penalty(
        self, inputs: torch.Tensor, code: torch.Tensor, generator=None
    ) -> torch.Tensor:
        return projected_jacobian_penalty(inputs, code, generator)

    @torch.no_grad()
    def squared_error_gradients(
        self, inputs: torch.Tensor, targets: torch.Tensor, with_outputs: bool = False
    ):
        """The mean squared reconstruction error, each parameter's gradient written to ``.grad``.

        Backpropagation written out, as :class:`EnsembleAutoencoder` does: a
        step of a network for a table of a few dozen columns spends more time
        recording autograd's graph and running its engine than in arithmetic
        (measured: a 7-128-64-2 network, 16 rows a batch, in 0.6 of the
        time). The operations are :meth:`forward`'s and autograd's backward
        ones, in their order, so the loss and the gradients are autograd's
        bit for bit on the CPU. ``None`` (and nothing computed) where the
        layers are not all linear with activations whose derivatives are
        written out here, or where training draws nested dropout; with
        ``with_outputs``, ``(loss, outputs)``, ``outputs`` as :meth:`forward`
        returns them.
        """
        steps = self._written_out_steps()
        if steps is None:
            return None
        encoder, decoder = steps
        unit = self.unit
        standardized = (inputs - self.input_shift) / unit
        encoded = forward_steps(encoder, standardized)
        code = unit * (self.linear_encoder(standardized) + encoded[-1])
        standardized_code = code / unit
        decoded = forward_steps(decoder, standardized_code)
        reconstruction = self.input_shift + unit * (
            self.linear_decoder(standardized_code) + decoded[-1]
        )
        difference = reconstruction - targets
        # ReconstructionLoss("mse"): the squared errors, then their mean.
        loss = F.mse_loss(reconstruction, targets, reduction="none").mean()
        # d loss / d reconstruction, then through the scaling back to the data's units.
        gradient = difference.mul_(2.0 / difference.numel()).mul_(unit)
        linear = self.linear_decoder
        set_gradient(linear.weight, torch.mm(gradient.t(), standardized_code))
        set_gradient(linear.bias, gradient.sum(dim=0))
        code_gradient = input_gradient(gradient, linear.weight, standardized_code) + (
            backward_steps(decoder, decoded, gradient, to_inputs=True)
        )
        code_gradient = code_gradient.div_(unit).mul_(unit)
        linear = self.linear_encoder
        set_gradient(linear.weight, torch.mm(code_gradient.t(), standardized))
        set_gradient(linear.bias, code_gradient.sum(dim=0))
        backward_steps(encoder, encoded, code_gradient, to_inputs=False)
        return (loss, (reconstruction, code)) if with_outputs else loss

    @torch.no_grad()
    def start_at_pca(
        self,
        components: torch.Tensor,
        mean: torch.Tensor,
        unit: float = 1.0,
        weights: torch.Tensor | None = None,
    ) -> "LinearPathAutoencoder":
        """Start from PCA's solution, in units of ``unit`` about ``mean``.

        ``components`` are PCA's ``(k, n_features)`` orthonormal rows and
        ``mean`` its ``(n_features,)`` centre; ``unit`` is the data's spread
        (the class docstring says why). Codes beyond the ``k`` components (a
        code wider than the data's rank) start at zero on the linear path.
        The codes are PCA's scores, in the data's units. ``weights`` (``k``
        of them) scale what each component's score adds to the
        reconstruction (a denoiser's shrinkage); 1 without.
        """
        k = components.shape[0]
        for layer in (self.linear_encoder, self.linear_decoder):
            layer.weight.zero_()
            layer.bias.zero_()
        self.linear_encoder.weight[:k] = components
        decoding = components if weights is None else components * weights[:, None]
        self.linear_decoder.weight[:, :k] = decoding.T
        self.input_shift.copy_(mean)
        self.unit.fill_(float(unit))
        zero_last_layers(self.encoder, self.decoder)
        return self


class MLPAutoencoder(Autoencoder):
    """Fully connected autoencoder whose decoder mirrors its encoder.

    Parameters
    ----------
    n_features : int
        Width of the input (and of the reconstruction).
    code_size : int
        Width of the code layer.
    hidden_layer_sizes : sequence of int
        Encoder widths between the input and the code; the decoder uses them in
        reverse order.
    activation : str
        Activation between hidden layers, a key of ``ACTIVATIONS``.
    output_activation : {"identity", "sigmoid"}
        See :class:`Autoencoder`.
    code_activation : str
        Activation applied to the code, a key of ``ACTIVATIONS``; ``"identity"``
        keeps codes linear, like the scores of PCA.
    """

    def __init__(
        self,
        n_features: int,
        code_size: int,
        hidden_layer_sizes: Sequence[int] = (),
        activation: str = "relu",
        output_activation: str = "identity",
        code_activation: str = "identity",
    ):
        encoder, decoder = mlp_encoder_decoder(
            n_features, code_size, hidden_layer_sizes, activation, code_activation
        )
        super().__init__(encoder, decoder, output_activation)


class VariationalAutoencoderNetwork(Autoencoder):
    """Variational autoencoder (Kingma & Welling, 2014) with a Gaussian posterior.

    Parameters
    ----------
    encoder : torch.nn.Module
        Maps rows to ``2 * code_size`` values: posterior means, then log-variances.
    decoder : torch.nn.Module
        Maps codes back to rows, before the output activation.
    output_activation : {"identity", "sigmoid"}
        See :class:`Autoencoder`.

    In training mode :meth:`forward` samples the code with the
    reparameterisation trick, drawing from ``noise_generator`` (torch's global
    random state when it is None); in evaluation mode the code is the posterior
    mean, so outputs are deterministic.
    """

    def posterior(self, x: torch.Tensor):
        """Posterior means and log-variances of the codes of ``x``."""
        mean, log_variance = self.encoder(x).chunk(2, dim=1)
        # exp(log_variance) overflows float32 beyond ~88; variances outside
        # [e^-30, e^20] carry no information a row could need.
        return mean, log_variance.clamp(-30.0, 20.0)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Posterior mean of the code of each row."""
        return self.posterior(x)[0]

    def forward(self, x: torch.Tensor):
        """``(reconstruction before the output activation, code, mean, log-variance)``."""
        mean, log_variance = self.posterior(x)
        code = mean
        if self.training:
            noise = torch.randn(
                mean.shape, generator=self.noise_generator, device=mean.device, dtype=mean.dtype
            )
            code = mean + torch.exp(0.5 * log_variance) * noise
        return self.decode_before_activation(code), code, mean, log_variance

    def jacobian_penalty(
        self, inputs: torch.Tensor, code: torch.Tensor, generator=None
    ) -> torch.Tensor:
        return projected_jacobian_penalty(inputs, code, generator)


class LinearPathVariationalNetwork(VariationalAutoencoderNetwork):
    """A variational autoencoder with a linear path beside its non-linear layers.

    Posterior means are ``linear_mean(x)`` plus the encoder's, log-variances a
    learnt per-unit offset plus the encoder's, and reconstructions
    ``linear_decoder(code)`` plus the decoder's. :meth:`start_at_pca` sets the
    linear path to the optimum of the linear Gaussian VAE, which is
    probabilistic PCA with the noise variance the loss implies (Tipping and
    Bishop, 1999; Lucas et al., 2019, "Don't blame the ELBO!"), and starts the
    last non-linear layers at zero, so training starts from that solution and
    learns only what improves on it.

    Parameters
    ----------
    encoder : torch.nn.Module
        Maps rows to ``2 * code_size`` values: posterior means, then log-variances.
    decoder : torch.nn.Module
        Maps codes back to rows, before the output activation.
    n_features, code_size : int
        Widths of the rows and the codes.
    output_activation : {"identity", "sigmoid"}
        See :class:`Autoencoder`.
    """

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        n_features: int,
        code_size: int,
        output_activation="identity",
    ):
        super().__init__(encoder, decoder, output_activation)
        self.linear_mean = nn.Linear(n_features, code_size)
        self.linear_log_variance = nn.Parameter(torch.zeros(code_size))
        self.linear_decoder = nn.Linear(code_size, n_features)

    @torch.no_grad()
    def reset_own_parameters(self):
        """The log-variance offset starts at zero (a unit variance, as the prior's)."""
        self.linear_log_variance.zero_()

    def posterior(self, x: torch.Tensor):
        mean, log_variance = self.encoder(x).chunk(2, dim=1)
        mean = mean + self.linear_mean(x)
        log_variance = log_variance + self.linear_log_variance
        return mean, log_variance.clamp(-30.0, 20.0)

    def decode_before_activation(self, code: torch.Tensor) -> torch.Tensor:
        return self.linear_decoder(code) + self.decoder(code)

    @torch.no_grad()
    def start_at_pca(
        self,
        components: torch.Tensor,
        mean: torch.Tensor,
        variances: torch.Tensor,
        noise_variance: float,
    ) -> "LinearPathVariationalNetwork":
        """Start from probabilistic PCA with noise variance ``noise_variance``.

        With PCA's orthonormal ``components`` ``u_i``, ``mean`` and
        ``variances`` ``l_i``, a unit whose variance exceeds the noise ``s``
        decodes with ``u_i * sqrt(l_i - s)``, has posterior mean
        ``sqrt(l_i - s) / l_i * u_i . (x - mean)`` and posterior variance
        ``s / l_i``; the others (and units beyond the components) are the
        prior, unused by the decoder, as the linear VAE's optimum has them.
        """
        k = components.shape[0]
        active = variances > noise_variance
        scale = torch.sqrt(torch.clamp(variances - noise_variance, min=0.0))
        for layer in (self.linear_mean, self.linear_decoder):
            layer.weight.zero_()
            layer.bias.zero_()
        self.linear_log_variance.zero_()
        mean_weights = components * (scale / torch.clamp(variances, min=1e-12))[:, None]
        self.linear_mean.weight[:k] = mean_weights * active[:, None]
        self.linear_mean.bias[:k] = -(mean_weights * active[:, None]) @ mean
        self.linear_decoder.weight[:, :k] = (components * scale[:, None]).T
        self.linear_decoder.bias[:] = mean
        self.linear_log_variance[:k] = torch.where(
            active, torch.log(noise_variance / torch.clamp(variances, min=1e-12)), 0.0
        )
        zero_last_layers(self.encoder, self.decoder)
        return self


def autograd_jacobian_penalty(inputs: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
    """Mean over rows of ``||d code / d input||_F^2`` by autograd.

    Rows are independent, so the gradient of a code unit summed over the batch
    gives every row's gradient at once: one backward pass per code unit.
    """
    total = torch.zeros(code.shape[0], device=code.device, dtype=code.dtype)
    for unit in range(code.shape[1]):
        (gradient,) = torch.autograd.grad(code[:, unit].sum(), inputs, create_graph=True)
        total = total + gradient.flatten(1).pow(2).sum(dim=1)
    return total.mean()


def projected_jacobian_penalty(
    inputs: torch.Tensor, code: torch.Tensor, generator=None
) -> torch.Tensor:
    """Unbiased estimate of the mean over rows of ``||d code / d input||_F^2``.

    Hutchinson's estimator: for a random sign vector ``u`` per row,
    ``E ||J^T u||^2 = trace(J J^T) = ||J||_F^2``, and ``J^T u`` is one
    vector-Jacobian product, so one backward pass replaces the one per code unit
    of :func:`autograd_jacobian_penalty`. Its gradient is unbiased too, which is
    all stochastic training needs; sign vectors have the lowest variance of
    such estimators (exact for a single code unit). The signs come from
    ``generator`` (torch's global random state when it is None).
    """
    signs = torch.randint(
        0, 2, code.shape, generator=generator, device=code.device, dtype=code.dtype
    )
    signs = signs.mul_(2).sub_(1)
    (projection,) = torch.autograd.grad((code * signs).sum(), inputs, create_graph=True)
    return projection.flatten(1).pow(2).sum(dim=1).mean()


def sparsity_penalty(code: torch.Tensor, target_rate=None) -> torch.Tensor:
    """Activity penalty on codes.

    With ``target_rate`` None, the mean absolute activation (an L1 penalty).
    Otherwise the KL divergence between Bernoulli distributions of rate
    ``target_rate`` and of each unit's mean activation over the batch (codes must
    lie in (0, 1), e.g. after a sigmoid), averaged over units.
    """
    if target_rate is None:
        return code.abs().mean()
    rate = code.mean(dim=0).clamp(1e-6, 1 - 1e-6)
    target = torch.as_tensor(target_rate, dtype=code.dtype, device=code.device)
    divergence = target * torch.log(target / rate) + (1 - target) * torch.log(
        (1 - target) / (1 - rate)
    )
    return divergence.mean()


def gaussian_kl(mean: torch.Tensor, log_variance: torch.Tensor) -> torch.Tensor:
    """KL divergence of N(mean, exp(log_variance)) from N(0, I), per row."""
    return 0.5 * (mean.pow(2) + log_variance.exp() - 1 - log_variance).sum(dim=1)


class GroupedLinear(nn.Module):
    """``n_groups`` independent linear layers, applied side by side in one product.

    Input ``(n_groups, batch, in_features)``, output ``(n_groups, batch,
    out_features)``: group ``g`` computes ``x[g] @ weight[g] + bias[g]``. One
    batched matrix product replaces a loop over groups. The groups lead so that
    a stack of these layers passes its activations on without a transpose:
    for networks this small, each extra operation of a training step costs
    about as much as a layer's product.
    """

    def __init__(self, n_groups: int, in_features: int, out_features: int):
        super().__init__()
        self.in_features = int(in_features)
        self.weight = nn.Parameter(torch.empty(int(n_groups), self.in_features, int(out_features)))
        self.bias = nn.Parameter(torch.empty(int(n_groups), int(out_features)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias.unsqueeze(1), x, self.weight)


def grouped_mlp(n_groups, widths, activation="relu"):
    """``n_groups`` MLPs of ``widths``, side by side; the last layer is linear."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(GroupedLinear(n_groups, n_in, n_out))
        if i < len(widths) - 2:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


# Activations whose backward pass by hand is autograd's bit for bit: a
# piecewise-linear one multiplies the gradient by 0, 1 or its slope, one
# rounding as in autograd. tanh's and the logistic's derivatives are
# polynomials of the output that autograd's kernels evaluate in another order
# (measured: the same fit differed in the last bits after a few steps).
EXACT_DERIVATIVES = (nn.ReLU, nn.LeakyReLU)


def linear_steps(layers, linear_type=nn.Linear, activations=EXACT_DERIVATIVES):
    """The linear layers of ``layers``, each with the activation after it and its derivative.

    ``layers`` is an ``nn.Sequential`` (or a list of layers) of layers of
    ``linear_type`` with activations between them. ``(layer, None, None)``
    for a layer without activation (or followed by an identity); ``None``
    where another module stands in the way (a subclass, a parametrised layer
    or one with hooks computes what autograd would see otherwise) or an
    activation is not one of ``activations`` (by default
    :data:`EXACT_DERIVATIVES`).
    """
    if isinstance(layers, nn.Module) and not isinstance(layers, nn.Sequential):
        return None
    layers = [layer for layer in layers if not isinstance(layer, nn.Identity)]
    steps = []
    for index, layer in enumerate(layers):
        if layer._forward_hooks or layer._forward_pre_hooks or layer._backward_hooks:
            return None
        if type(layer) is linear_type:
            following = layers[index + 1] if index + 1 < len(layers) else None
            if following is None or type(following) is linear_type:
                steps.append((layer, None, None))
            elif type(following) in activations:
                steps.append((layer, following, OUTPUT_DERIVATIVES[type(following)](following)))
            else:
                return None
        elif not (steps and steps[-1][1] is layer):
            return None
    return steps or None


def forward_steps(steps, inputs):
    """The input of each of ``steps`` (:func:`linear_steps`) and the last one's output."""
    values = [inputs]
    for layer, activation, _ in steps:
        output = F.linear(values[-1], layer.weight, layer.bias)
        values.append(output if activation is None else activation(output))
    return values


def input_gradient(gradient, weight, inputs):
    """The gradient of ``F.linear(inputs, weight)``'s input, the product autograd takes.

    ``gradient @ weight``; autograd's backward of ``addmm`` multiplies in the
    other order, ``(weight.T @ gradient.T).T``, when the input is laid out
    column-major, which a contiguous input is when it is a single number (one
    row of a one-unit code): the same sum through another kernel, which
    rounds differently.
    """
    if inputs.stride(0) == 1 and inputs.stride(1) == inputs.shape[0]:
        return torch.mm(weight.t(), gradient.t()).t()
    return torch.mm(gradient, weight)


def backward_steps(steps, values, gradient, to_inputs):
    """Write the gradients of ``steps``' layers; the gradient of their input if ``to_inputs``.

    ``values`` are :func:`forward_steps`' and ``gradient`` that of the last
    output.
    """
    for index in reversed(range(len(steps))):
        layer, _, derivative = steps[index]
        if derivative is not None:
            gradient = gradient * derivative(values[index + 1])
        set_gradient(layer.weight, torch.mm(gradient.t(), values[index]))
        set_gradient(layer.bias, gradient.sum(dim=0))
        if index > 0 or to_inputs:
            gradient = input_gradient(gradient, layer.weight, values[index])
    return gradient


def set_gradient(parameter, value):
    """``parameter.grad = value``, copied into the tensor ``.grad`` holds, as autograd would.

    Products are computed into fresh memory and copied, as autograd adds its
    fresh results to zeroed gradients: a product written straight into a
    gradient that lies unaligned inside the optimiser's flat tensor
    (:func:`sklae._engine.net.flat_adam`) is summed in another order (in
    float32, differences in the last bits that grow over a fit).
    """
    if not parameter.requires_grad:
        # Frozen (freeze="encoder"): autograd leaves its gradient alone.
        return
    held = parameter.grad
    if held is None or held.shape != parameter.shape:
        parameter.grad = value
    else:
        held.copy_(value)


def write_gradient(parameter, operation, *operands, **options):
    """``parameter.grad = operation(*operands, **options)``, into the tensor ``.grad`` holds.

    Writing into the held tensor (``out=``) allocates nothing and keeps it
    where it lives: the trainer may have laid every gradient out in one flat
    tensor for its optimiser (:func:`sklae._engine.net.flat_adam`).
    """
    held = parameter.grad
    if held is None or held.shape != parameter.shape:
        # Laid out as the parameter is (a product may come back as a transposed view).
        parameter.grad = operation(*operands, **options).contiguous()
    else:
        operation(*operands, **options, out=held)


# Products with fewer output columns than this are computed transposed (see
# grouped_product).
NARROW_PRODUCT = 16


def grouped_product(left, right, bias=None, out=None):
    """``left @ right`` per group (``bias`` added to each row), for a narrow result too.

    ``left`` is ``(groups, rows, inner)``, ``right`` ``(groups, inner,
    columns)``, ``bias`` ``(groups, columns)``. A result of fewer than
    ``NARROW_PRODUCT`` columns (an ensemble member's code, or a table's few
    features) and more rows is computed as ``(right.T @ left.T).T``, the same
    sums in a product whose long side is the rows: MKL's batched kernels,
    which vectorise along the columns, took 2 to 4 times as long for 4 to 10
    columns as for 16 (five members, 80 to 128 rows, measured on the AMD
    EPYC of the benchmarks), and a ninth of a step of the detector's members
    less this way. The result is then a transposed view, which the
    following products and element-wise operations read as it lies.
    """
    columns = right.shape[2]
    if columns >= NARROW_PRODUCT or columns >= left.shape[1]:
        if bias is None:
            return torch.bmm(left, right, out=out)
        return torch.baddbmm(bias.unsqueeze(1), left, right, out=out)
    if bias is None:
        product = torch.bmm(right.transpose(1, 2), left.transpose(1, 2))
    else:
        product = torch.baddbmm(bias.unsqueeze(2), right.transpose(1, 2), left.transpose(1, 2))
    product = product.transpose(1, 2)
    return product if out is None else out.copy_(product)


class EnsembleAutoencoder(nn.Module):
    """``n_members`` fully connected autoencoders of one shape, trained as one network.

    A row holds the members' inputs side by side, ``(batch, n_members *
    n_features)``: member ``i`` reads columns ``i * n_features`` to ``(i + 1) *
    n_features``; codes and reconstructions are laid out the same way. The
    members share no weights: their losses add, and Adam updates each weight
    on its own gradient, so each member trains as it would alone, while a step
    of all of them costs one batched product per layer.
    """

    def __init__(
        self,
        n_members: int,
        n_features: int,
        hidden_layer_sizes=(),
        code_size: int = 2,
        activation: str = "relu",
    ):
        super().__init__()
        self.n_members = int(n_members)
        widths = [int(n_features), *map(int, hidden_layer_sizes), int(code_size)]
        self.encoder = grouped_mlp(self.n_members, widths, activation)
        self.decoder = grouped_mlp(self.n_members, widths[::-1], activation)

    def _by_member(self, rows: torch.Tensor) -> torch.Tensor:
        """``(batch, n_members * width)`` side by side -> ``(n_members, batch, width)``."""
        return rows.reshape(rows.shape[0], self.n_members, -1).transpose(0, 1)

    @staticmethod
    def _side_by_side(grouped: torch.Tensor) -> torch.Tensor:
        """``(n_members, batch, width)`` -> ``(batch, n_members * width)``."""
        return grouped.transpose(0, 1).reshape(grouped.shape[1], -1)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Each member's code of its columns, side by side."""
        return self._side_by_side(self.encoder(self._by_member(x)))

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        """Each member's reconstruction from its code, side by side."""
        return self._side_by_side(self.decoder(self._by_member(code)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(reconstruction, code)``, as the other autoencoders return them."""
        # The code goes on to the decoder grouped by member, as the encoder left it.
        code = self.encoder(self._by_member(x))
        return self._side_by_side(self.decoder(code)), self._side_by_side(code)

    @torch.no_grad()
    def squared_error_gradients(
        self, inputs: torch.Tensor, targets: torch.Tensor, with_outputs: bool = False
    ):
        """The mean squared reconstruction error, each parameter's gradient written to ``.grad``.

        Backpropagation written out (as scikit-learn's MLP does in numpy),
        without autograd: for networks this small, recording the graph and
        starting autograd's engine cost about as much as the arithmetic of a
        step (measured: a step of five 19-38-10 members in 0.56 of the time).
        The loss is ``ReconstructionLoss("mse")``'s, the mean over every entry
        of ``(reconstruction - targets) ** 2``, and the gradients are autograd's
        to rounding. Returns ``None`` (and computes nothing) when an
        activation's derivative is not written here; with ``with_outputs``,
        ``(loss, outputs)``, ``outputs`` as :meth:`forward` returns them.
        """
        # Every grouped layer with its activation; ELU and GELU are not written out.
        layers = linear_steps(
            [*self.encoder, *self.decoder], GroupedLinear, tuple(OUTPUT_DERIVATIVES)
        )
        if layers is None:
            return None
        # Contiguous once: the products of the first layer, forward and
        # backward, would each copy the strided view.
        activations = [self._by_member(inputs).contiguous()]
        for layer, activation, _ in layers:
            output = grouped_product(activations[-1], layer.weight, layer.bias)
            activations.append(output if activation is None else activation(output))
        if with_outputs:
            code_index = len(self.encoder) // 2 + 1
            outputs = tuple(map(self._side_by_side, (activations[-1], activations[code_index])))
        difference = activations[-1] - self._by_member(targets)
        loss = difference.pow(2).mean()
        gradient = difference.mul_(2.0 / difference.numel())
        for index in reversed(range(len(layers))):
            layer, _, derivative = layers[index]
            if derivative is not None:
                gradient = gradient.mul_(derivative(activations[index + 1]))
            write_gradient(
                layer.weight, grouped_product, activations[index].transpose(1, 2), gradient
            )
            write_gradient(layer.bias, torch.sum, gradient, dim=1)
            if index > 0:
                gradient = grouped_product(gradient, layer.weight.transpose(1, 2))
        return (loss, outputs) if with_outputs else loss


class ReconstructionLoss(nn.Module):
    """Loss between a decoder's pre-activation output and the target rows.

    Parameters
    ----------
    loss : {"mse", "l1", "bce"}
        Mean squared error, mean absolute error, or binary cross-entropy.
    output_activation : {"identity", "sigmoid"}
        The squashing the decoder applies at prediction time; it is applied here
        to the pre-activation before ``mse`` and ``l1``, and fused into ``bce``.
    reduction : {"mean", "row_sum"}
        ``"mean"`` averages over every entry, so values do not depend on the batch
        size or on the number of features; ``"row_sum"`` sums over features and
        averages over rows (the per-sample log-likelihood term of a VAE).
    """

    def __init__(self, loss: str = "mse", output_activation: str = "identity", reduction="mean"):
        super().__init__()
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
        if loss == "bce" and output_activation != "sigmoid":
            raise ValueError("loss='bce' needs output_activation='sigmoid'")
        self.loss = loss
        self.output_activation = output_activation
        self.reduction = reduction

    def per_entry(self, pre_activation: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The loss of every entry, unreduced."""
        if self.loss == "bce":
            return F.binary_cross_entropy_with_logits(pre_activation, target, reduction="none")
        output = pre_activation
        if self.output_activation == "sigmoid":
            output = torch.sigmoid(pre_activation)
        if self.loss == "mse":
            return F.mse_loss(output, target, reduction="none")
        return F.l1_loss(output, target, reduction="none")

    def forward(self, pre_activation: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        entries = self.per_entry(pre_activation, target)
        if self.reduction == "row_sum":
            return entries.sum(dim=1).mean()
        return entries.mean()


class AutoencoderObjective(nn.Module):
    """Training objective: reconstruction loss plus optional regularisers.

    Parameters
    ----------
    reconstruction : ReconstructionLoss
    sparsity : float
        Weight of :func:`sparsity_penalty` on the codes (sparse autoencoder).
    sparsity_target : float or None
        Target activation rate for the KL form of the sparsity penalty.
    contractive : float
        Weight of the encoder's squared Jacobian norm (contractive autoencoder).
        Computed only where gradients are on (training), since it needs them.
    kl_weight : float
        Weight (``beta``) of the KL term of a variational module's outputs.
    target_noise_variance : float
        Variance of noise in the targets that is independent of the inputs
        (noisy targets of Recorrupted-to-Recorrupted): the squared error's
        expectation exceeds the error against the clean targets by it, so it
        is subtracted, which leaves the gradients as they are and makes the
        reported losses estimates of the error against the clean targets.

    Called as ``objective(outputs, target, inputs, module)`` where ``outputs`` is
    the module's :meth:`forward` tuple. The contractive penalty's random
    projections are drawn from ``noise_generator`` when the trainer sets one.
    """

    # The trainer passes the inputs and the module (for the contractive penalty).
    takes_inputs = True
    # Objectives pickled by releases before it was an argument subtract nothing.
    target_noise_variance = 0.0

    def __init__(
        self,
        reconstruction,
        sparsity=0.0,
        sparsity_target=None,
        contractive=0.0,
        kl_weight=1.0,
        target_noise_variance=0.0,
    ):
        super().__init__()
        self.target_noise_variance = float(target_noise_variance)
        self.reconstruction = reconstruction
        self.sparsity = float(sparsity)
        self.sparsity_target = sparsity_target
        self.contractive = float(contractive)
        self.kl_weight = float(kl_weight)
        self.noise_generator = None

    @property
    def needs_input_gradient(self):
        return self.contractive > 0

    def gradients_by_hand(self, module, inputs, targets, with_outputs=False):
        """The loss, with the parameters' gradients in ``.grad``, without autograd; or ``None``.

        Only for the plain mean squared reconstruction error (no regulariser,
        no output activation; the noise correction, a constant, moves the
        loss and not its gradients) of a module that writes out its own
        backpropagation (``squared_error_gradients``); ``None`` otherwise, and
        the trainer differentiates :meth:`forward` instead.
        Every parameter's gradient is written into ``.grad``, replacing what
        it held, so the trainer need not zero them first. With
        ``with_outputs``, ``(loss, outputs)``, ``outputs`` those of the
        module's ``forward``.
        """
        reconstruction = self.reconstruction
        plain = (
            getattr(reconstruction, "loss", None) == "mse"
            and reconstruction.output_activation == "identity"
            and reconstruction.reduction == "mean"
            and not (self.sparsity or self.contractive)
        )
        by_hand = getattr(module, "squared_error_gradients", None)
        if not plain or by_hand is None:
            return None
        step = by_hand(inputs, targets, with_outputs=with_outputs)
        if step is None or not self.target_noise_variance:
            return step
        # As forward subtracts it, after the mean.
        if with_outputs:
            return step[0] - self.target_noise_variance, step[1]
        return step - self.target_noise_variance

    def forward(self, outputs, target, inputs=None, module=None):
        reconstruction, code, *posterior = outputs
        if posterior:
            # Penalise the posterior mean, not the sampled code, whose noise
            # carries no information about the input.
            code = posterior[0]
        loss = self.reconstruction(reconstruction, target) - self.target_noise_variance
        if self.sparsity:
            loss = loss + self.sparsity * sparsity_penalty(code, self.sparsity_target)
        if self.contractive and inputs is not None and inputs.requires_grad:
            loss = loss + self.contractive * module.jacobian_penalty(
                inputs, code, self.noise_generator
            )
        if posterior:
            mean, log_variance = posterior
            loss = loss + self.kl_weight * gaussian_kl(mean, log_variance).mean()
        return loss
