"""Tests of the torch networks and losses (sklae._networks)."""

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from sklae._networks import (
    ACTIVATIONS,
    Autoencoder,
    AutoencoderObjective,
    EnsembleAutoencoder,
    LinearPathAutoencoder,
    MLPAutoencoder,
    ReconstructionLoss,
    VariationalAutoencoderNetwork,
    build_initialized,
    grouped_product,
    make_mlp,
    mlp_encoder_decoder,
)

N_ROWS = 16
N_FEATURES = 12
CODE_SIZE = 3
SEED = 0


def random_rows(n_rows=N_ROWS, n_features=N_FEATURES, seed=SEED):
    return torch.randn(n_rows, n_features, generator=torch.Generator().manual_seed(seed))


def unit_rows(n_rows=N_ROWS, n_features=N_FEATURES, seed=SEED):
    return torch.rand(n_rows, n_features, generator=torch.Generator().manual_seed(seed))


def seeded_autoencoder(*args, **kwargs):
    """An MLPAutoencoder with reproducible weights, leaving the global torch seed alone."""
    with torch.random.fork_rng():
        torch.manual_seed(SEED)
        return MLPAutoencoder(*args, **kwargs)


def reconstruction_before_activation(module, rows):
    """What ``forward`` reconstructs: its output, or the first item of a tuple of outputs."""
    output = module(rows)
    return output[0] if isinstance(output, tuple) else output


def linear_widths(sequential):
    return [
        (layer.in_features, layer.out_features)
        for layer in sequential
        if isinstance(layer, nn.Linear)
    ]


# ---------------------------------------------------------------------- make_mlp


def test_make_mlp_layers_and_activations_between_them():
    mlp = make_mlp((64, 32, 8), "tanh")

    assert linear_widths(mlp) == [(64, 32), (32, 8)]
    assert [type(layer) for layer in mlp] == [nn.Linear, nn.Tanh, nn.Linear]


def test_make_mlp_last_layer_is_linear():
    mlp = make_mlp((5, 4, 3, 2), "relu")

    assert isinstance(mlp[-1], nn.Linear)
    assert sum(isinstance(layer, nn.ReLU) for layer in mlp) == 2
    # No activation after the last layer: outputs can be negative despite ReLU.
    with torch.no_grad():
        mlp[-1].bias.fill_(-100.0)
        assert (mlp(random_rows(n_features=5)) < 0).all()


def test_make_mlp_two_widths_is_one_linear_layer():
    mlp = make_mlp((7, 3), "relu")

    assert linear_widths(mlp) == [(7, 3)]
    assert len(mlp) == 1


@pytest.mark.parametrize("widths", [(), (5,)])
def test_make_mlp_needs_two_widths(widths):
    with pytest.raises(ValueError, match="at least two widths"):
        make_mlp(widths, "relu")


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_make_mlp_every_activation_runs(activation):
    mlp = make_mlp((N_FEATURES, 6, CODE_SIZE), activation)

    output = mlp(random_rows())

    assert output.shape == (N_ROWS, CODE_SIZE)
    assert torch.isfinite(output).all()
    assert isinstance(mlp[1], ACTIVATIONS[activation])


# ---------------------------------------------------------------------- MLPAutoencoder


def test_autoencoder_decoder_mirrors_encoder():
    module = seeded_autoencoder(N_FEATURES, CODE_SIZE, hidden_layer_sizes=(10, 6))

    assert linear_widths(module.encoder) == [(N_FEATURES, 10), (10, 6), (6, CODE_SIZE)]
    assert linear_widths(module.decoder) == [(CODE_SIZE, 6), (6, 10), (10, N_FEATURES)]


def test_autoencoder_without_hidden_layers_is_linear_both_ways():
    module = seeded_autoencoder(N_FEATURES, CODE_SIZE, hidden_layer_sizes=(), activation="relu")

    assert linear_widths(module.encoder) == [(N_FEATURES, CODE_SIZE)]
    assert linear_widths(module.decoder) == [(CODE_SIZE, N_FEATURES)]
    assert not any(isinstance(layer, nn.ReLU) for layer in module.modules())


def test_autoencoder_shapes():
    module = seeded_autoencoder(N_FEATURES, CODE_SIZE, hidden_layer_sizes=(8,))
    rows = random_rows()

    code = module.encode(rows)

    assert code.shape == (N_ROWS, CODE_SIZE)
    assert module.decode(code).shape == (N_ROWS, N_FEATURES)
    assert reconstruction_before_activation(module, rows).shape == (N_ROWS, N_FEATURES)


def test_autoencoder_code_is_linear():
    # ReLU between hidden layers, but the code itself takes negative values.
    module = seeded_autoencoder(N_FEATURES, CODE_SIZE, hidden_layer_sizes=(8,), activation="relu")

    code = module.encode(random_rows(n_rows=200))

    assert (code < 0).any()
    assert (code > 0).any()


def test_autoencoder_identity_output_forward_equals_decode_of_encode():
    module = seeded_autoencoder(N_FEATURES, CODE_SIZE, hidden_layer_sizes=(8,))
    rows = random_rows()

    torch.testing.assert_close(
        reconstruction_before_activation(module, rows), module.decode(module.encode(rows))
    )


def test_autoencoder_sigmoid_output_forward_is_pre_activation():
    module = seeded_autoencoder(N_FEATURES, CODE_SIZE, (8,), output_activation="sigmoid")
    rows = random_rows()

    pre_activation = reconstruction_before_activation(module, rows)
    reconstruction = module.decode(module.encode(rows))

    torch.testing.assert_close(reconstruction, torch.sigmoid(pre_activation))
    assert ((reconstruction >= 0) & (reconstruction <= 1)).all()
    assert (pre_activation < 0).any()


# ---------------------------------------------------------------------- ReconstructionLoss


def test_mse_loss_matches_torch():
    prediction, target = random_rows(seed=1), random_rows(seed=2)

    loss = ReconstructionLoss("mse")(prediction, target)

    torch.testing.assert_close(loss, ((prediction - target) ** 2).mean())


def test_l1_loss_matches_torch():
    prediction, target = random_rows(seed=1), random_rows(seed=2)

    loss = ReconstructionLoss("l1")(prediction, target)

    torch.testing.assert_close(loss, (prediction - target).abs().mean())


@pytest.mark.parametrize("loss", ["mse", "l1"])
def test_sigmoid_output_is_applied_before_mse_and_l1(loss):
    pre_activation, target = random_rows(seed=1), unit_rows(seed=2)
    plain = ReconstructionLoss(loss, "identity")

    squashed = ReconstructionLoss(loss, "sigmoid")(pre_activation, target)

    torch.testing.assert_close(squashed, plain(torch.sigmoid(pre_activation), target))


def test_bce_loss_on_logits_matches_cross_entropy_of_sigmoid():
    pre_activation, target = random_rows(seed=1), unit_rows(seed=2)

    loss = ReconstructionLoss("bce", "sigmoid")(pre_activation, target)

    expected = F.binary_cross_entropy(torch.sigmoid(pre_activation), target)
    torch.testing.assert_close(loss, expected)


def test_bce_loss_is_stable_for_large_logits():
    # sigmoid(-200) is 0 in float32, so log(sigmoid) would be -inf; the fused loss is exact.
    pre_activation = torch.full((2, 3), -200.0, requires_grad=True)
    target = torch.ones(2, 3)

    loss = ReconstructionLoss("bce", "sigmoid")(pre_activation, target)
    loss.backward()

    torch.testing.assert_close(loss, torch.tensor(200.0))
    assert torch.isfinite(pre_activation.grad).all()


@pytest.mark.parametrize(
    ("loss", "output_activation"), [("mse", "identity"), ("l1", "identity"), ("bce", "sigmoid")]
)
def test_loss_does_not_depend_on_batch_size(loss, output_activation):
    criterion = ReconstructionLoss(loss, output_activation)
    pre_activation, target = random_rows(seed=1), unit_rows(seed=2)

    single = criterion(pre_activation, target)
    repeated = criterion(pre_activation.repeat(3, 1), target.repeat(3, 1))

    torch.testing.assert_close(single, repeated)


def test_perfect_reconstruction_has_zero_mse_and_l1():
    rows = random_rows()

    assert ReconstructionLoss("mse")(rows, rows).item() == 0
    assert ReconstructionLoss("l1")(rows, rows).item() == 0


def test_unknown_loss_is_rejected():
    with pytest.raises(ValueError, match="loss must be one of .* got 'foo'"):
        ReconstructionLoss("foo")


def test_bce_needs_sigmoid_output():
    with pytest.raises(ValueError, match="loss='bce' needs output_activation='sigmoid'"):
        ReconstructionLoss("bce", "identity")


def test_loss_gradients_reach_every_parameter():
    module = seeded_autoencoder(N_FEATURES, CODE_SIZE, hidden_layer_sizes=(8,))
    rows = random_rows()

    ReconstructionLoss("mse")(reconstruction_before_activation(module, rows), rows).backward()

    for name, parameter in module.named_parameters():
        assert parameter.grad is not None, name
        assert parameter.grad.abs().sum() > 0, name


def test_a_few_optimiser_steps_lower_the_loss():
    module = seeded_autoencoder(N_FEATURES, CODE_SIZE, hidden_layer_sizes=(8,))
    criterion = ReconstructionLoss("mse")
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-2)
    rows = random_rows(n_rows=64)

    initial = criterion(reconstruction_before_activation(module, rows), rows).item()
    for _ in range(50):
        optimizer.zero_grad()
        criterion(reconstruction_before_activation(module, rows), rows).backward()
        optimizer.step()

    assert criterion(reconstruction_before_activation(module, rows), rows).item() < 0.8 * initial


# ---------------------------------------------------------------------- gradients by hand

N_MEMBERS = 3


def ensemble(activation, hidden_layer_sizes=(8, 5)):
    module = build_initialized(
        lambda: EnsembleAutoencoder(
            N_MEMBERS, N_FEATURES, hidden_layer_sizes, CODE_SIZE, activation
        ),
        SEED,
    )
    return module.double()


@pytest.mark.parametrize(
    ("n_rows", "inner", "columns", "transposed"),
    [(40, 6, 3, True), (40, 6, 15, True), (40, 6, 16, False), (3, 6, 5, False)],
)
@pytest.mark.parametrize("with_bias", [False, True])
def test_grouped_product_of_few_columns_is_the_product(
    n_rows, inner, columns, transposed, with_bias
):
    generator = torch.Generator().manual_seed(SEED)
    left = torch.randn(4, n_rows, inner, generator=generator, dtype=torch.float64)
    right = torch.randn(4, inner, columns, generator=generator, dtype=torch.float64)
    bias = torch.randn(4, columns, generator=generator, dtype=torch.float64) if with_bias else None
    expected = left @ right + (0 if bias is None else bias.unsqueeze(1))

    product = grouped_product(left, right, bias)
    held = torch.full((4, n_rows, columns), 7.0, dtype=torch.float64)
    written = grouped_product(left, right, bias, out=held)

    torch.testing.assert_close(product, expected)
    # Few columns and more rows: computed as (right.T @ left.T).T, a transposed view.
    assert product.is_contiguous() is not transposed
    assert written is held
    torch.testing.assert_close(held, expected)


def plain_objective(**regularisers):
    return AutoencoderObjective(ReconstructionLoss("mse"), **regularisers)


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "tanh", "logistic", "identity"])
@pytest.mark.parametrize("hidden_layer_sizes", [(), (8, 5)])
def test_gradients_by_hand_are_autogradients(activation, hidden_layer_sizes):
    module = ensemble(activation, hidden_layer_sizes)
    inputs = random_rows(n_features=N_MEMBERS * N_FEATURES).double()
    targets = random_rows(n_features=N_MEMBERS * N_FEATURES, seed=SEED + 1).double()
    criterion = plain_objective()

    expected_loss = criterion(module(inputs), targets)
    expected_loss.backward()
    expected = {name: parameter.grad.clone() for name, parameter in module.named_parameters()}
    # Stale gradients: the trainer does not zero them, so they must be replaced, not added to.
    for parameter in module.parameters():
        parameter.grad = torch.full_like(parameter, 7.0)
    loss = criterion.gradients_by_hand(module, inputs, targets)

    assert not loss.requires_grad
    assert loss.item() == pytest.approx(expected_loss.item(), rel=1e-12)
    for name, parameter in module.named_parameters():
        assert parameter.grad.shape == parameter.shape, name
        torch.testing.assert_close(parameter.grad, expected[name], rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize(
    ("activation", "regularisers", "reconstruction"),
    [
        ("elu", {}, ReconstructionLoss("mse")),
        ("gelu", {}, ReconstructionLoss("mse")),
        ("relu", {"sparsity": 0.1}, ReconstructionLoss("mse")),
        ("relu", {}, ReconstructionLoss("l1")),
        ("relu", {}, ReconstructionLoss("mse", "sigmoid")),
    ],
)
def test_gradients_by_hand_decline_what_they_do_not_write_out(
    activation, regularisers, reconstruction
):
    module = ensemble(activation)
    rows = random_rows(n_features=N_MEMBERS * N_FEATURES).double()
    criterion = AutoencoderObjective(reconstruction, **regularisers)

    assert criterion.gradients_by_hand(module, rows, rows) is None
    # Nothing computed: the trainer differentiates forward instead.
    assert all(parameter.grad is None for parameter in module.parameters())


def linear_path(
    activation="relu", hidden_layer_sizes=(8, 5), linear=True, code_size=CODE_SIZE, **options
):
    """A LinearPathAutoencoder started at PCA's solution of ``random_rows``, in their units.

    With ``linear=False``, the plain ``Autoencoder`` of the same layers (``init="random"``).
    """
    layers = mlp_encoder_decoder(N_FEATURES, code_size, hidden_layer_sizes, activation)
    if not linear:
        return build_initialized(lambda: Autoencoder(*layers, **options), SEED).train()
    module = build_initialized(
        lambda: LinearPathAutoencoder(*layers, N_FEATURES, code_size, **options), SEED
    )
    rows = 3.0 * random_rows(n_rows=64) + 1.5
    _, _, components = torch.linalg.svd(rows - rows.mean(dim=0), full_matrices=False)
    module.start_at_pca(components[:code_size], rows.mean(dim=0), unit=3.0)
    # A step away from the start, where the non-linear branches' last layers are zero.
    for parameter in module.parameters():
        parameter.data.add_(0.1 * torch.randn(parameter.shape, generator=torch.Generator()))
    return module.train()


def gradients_in_a_flat_tensor(module):
    """Gradients held as views of one flat tensor, at unaligned offsets, as flat_adam lays them."""
    parameters = list(module.parameters())
    flat = torch.full((1 + sum(parameter.numel() for parameter in parameters),), 7.0)
    offset = 1
    for parameter in parameters:
        parameter.grad = flat[offset : offset + parameter.numel()].view_as(parameter)
        offset += parameter.numel()


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "identity"])
@pytest.mark.parametrize("hidden_layer_sizes", [(), (8, 5)])
# One row of a one-unit code is a 1 x 1 input, which autograd differentiates
# with another product (input_gradient): the last batch of an epoch can be one row.
@pytest.mark.parametrize(
    ("n_rows", "code_size"), [(1, CODE_SIZE), (1, 1), (16, 1), (37, CODE_SIZE)]
)
# The noise correction of Recorrupted-to-Recorrupted targets moves the loss only.
@pytest.mark.parametrize("target_noise_variance", [0.0, 0.3])
@pytest.mark.parametrize("linear", [True, False])
def test_gradients_by_hand_are_autogradients_bit_for_bit(
    activation, hidden_layer_sizes, n_rows, code_size, target_noise_variance, linear
):
    # float32, as the trainer runs: the loss, gradients and outputs are
    # autograd's exactly, so that a fit is the same with either.
    module = linear_path(activation, hidden_layer_sizes, linear, code_size)
    inputs = 3.0 * random_rows(n_rows=n_rows, seed=SEED + 2) + 1.5
    criterion = plain_objective(target_noise_variance=target_noise_variance)

    expected_outputs = module(inputs)
    expected_loss = criterion(expected_outputs, inputs, inputs, module)
    expected_loss.backward()
    expected = {name: parameter.grad.clone() for name, parameter in module.named_parameters()}
    # Stale values in the held gradients must be replaced, not added to.
    gradients_in_a_flat_tensor(module)
    loss, outputs = criterion.gradients_by_hand(module, inputs, inputs, with_outputs=True)

    assert not loss.requires_grad
    assert torch.equal(loss, expected_loss.detach())
    for name, parameter in module.named_parameters():
        assert torch.equal(parameter.grad, expected[name]), name
    for output, expected_output in zip(outputs, expected_outputs, strict=True):
        assert torch.equal(output, expected_output.detach())


@pytest.mark.parametrize(
    ("activation", "options"),
    [
        # Derivatives evaluated in another order than autograd's kernels.
        ("tanh", {}),
        ("logistic", {}),
        ("gelu", {}),
        # Nested dropout draws a code width per row in training.
        ("relu", {"ordered_codes": True}),
    ],
)
@pytest.mark.parametrize("linear", [True, False])
def test_gradients_by_hand_decline_what_is_not_autograd_bit_for_bit(activation, options, linear):
    module = linear_path(activation, linear=linear, **options)
    rows = random_rows()

    assert plain_objective().gradients_by_hand(module, rows, rows) is None
    assert all(parameter.grad is None for parameter in module.parameters())


def test_linear_path_gradients_by_hand_decline_layers_autograd_would_see_otherwise():
    hooked = linear_path()
    hooked.encoder[0].register_forward_hook(lambda layer, inputs, output: output * 2)
    parametrised = linear_path()
    torch.nn.utils.parametrizations.weight_norm(parametrised.decoder[0])
    rows = random_rows()

    for module in (hooked, parametrised):
        assert plain_objective().gradients_by_hand(module, rows, rows) is None


def test_linear_path_gradients_by_hand_leave_frozen_parameters_alone():
    # freeze="encoder": autograd neither computes nor writes their gradients.
    module = linear_path()
    frozen = [*module.encoder.parameters(), *module.linear_encoder.parameters()]
    for parameter in frozen:
        parameter.requires_grad_(False)
    rows = random_rows()

    assert plain_objective().gradients_by_hand(module, rows, rows) is not None
    assert all(parameter.grad is None for parameter in frozen)
    assert all(parameter.grad is not None for parameter in module.decoder.parameters())


def test_gradients_by_hand_need_a_module_that_writes_them_out():
    # A variational network samples its code: it inherits nothing to write out.
    encoder, decoder = mlp_encoder_decoder(N_FEATURES, CODE_SIZE, (8,), encoder_outputs=4)
    module = VariationalAutoencoderNetwork(encoder, decoder)

    assert plain_objective().gradients_by_hand(module, random_rows(), random_rows()) is None
