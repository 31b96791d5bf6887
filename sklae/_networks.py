"""Torch networks for autoencoders.

This module depends on torch only: nothing here knows about scikit-learn, so the
networks can be trained, exported or served without it.
"""

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


class MLPAutoencoder(nn.Module):
    """Fully connected autoencoder whose decoder mirrors its encoder.

    Parameters
    ----------
    n_features : int
        Width of the input (and of the reconstruction).
    code_size : int
        Width of the code layer. The code is linear (no activation), like the
        scores of PCA.
    hidden_layer_sizes : sequence of int
        Encoder widths between the input and the code; the decoder uses them in
        reverse order.
    activation : str
        Name of the activation between hidden layers, a key of ``ACTIVATIONS``.
    output_activation : {"identity", "sigmoid"}
        Squashing applied by :meth:`decode`. :meth:`forward` returns the
        reconstruction *before* it, so that a loss can fuse the two (binary
        cross-entropy on logits is stable where ``log(sigmoid(x))`` is not).
    """

    def __init__(
        self,
        n_features: int,
        code_size: int,
        hidden_layer_sizes: Sequence[int] = (),
        activation: str = "relu",
        output_activation: str = "identity",
    ):
        super().__init__()
        widths = [int(n_features), *map(int, hidden_layer_sizes), int(code_size)]
        self.encoder = make_mlp(widths, activation)
        self.decoder = make_mlp(widths[::-1], activation)
        self.output_activation = OUTPUT_ACTIVATIONS[output_activation]()

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Map input rows to codes."""
        return self.encoder(x)

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        """Map codes to reconstructions in the input space."""
        return self.output_activation(self.decoder(code))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction of ``x`` before the output activation."""
        return self.decoder(self.encoder(x))


class ReconstructionLoss(nn.Module):
    """Loss between a decoder's pre-activation output and the target rows.

    Parameters
    ----------
    loss : {"mse", "l1", "bce"}
        Mean squared error, mean absolute error, or binary cross-entropy. Each is
        averaged over every entry of the batch, so values do not depend on the
        batch size or on the number of features.
    output_activation : {"identity", "sigmoid"}
        The squashing the decoder applies at prediction time; it is applied here
        to the pre-activation before ``mse`` and ``l1``, and fused into ``bce``.
    """

    def __init__(self, loss: str = "mse", output_activation: str = "identity"):
        super().__init__()
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
        if loss == "bce" and output_activation != "sigmoid":
            raise ValueError("loss='bce' needs output_activation='sigmoid'")
        self.loss = loss
        self.output_activation = output_activation

    def forward(self, pre_activation: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.loss == "bce":
            return F.binary_cross_entropy_with_logits(pre_activation, target)
        output = pre_activation
        if self.output_activation == "sigmoid":
            output = torch.sigmoid(pre_activation)
        if self.loss == "mse":
            return F.mse_loss(output, target)
        return F.l1_loss(output, target)
