"""The autoencoder family: sparse, contractive, variational, convolutional, custom."""

import pickle
import warnings

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.utils._param_validation import InvalidParameterError
from torch import nn

from sklae import AutoencoderTransformer, VariationalAutoencoder
from sklae._networks import (
    Autoencoder,
    autograd_jacobian_penalty,
    conv_encoder_decoder,
    gaussian_kl,
    projected_jacobian_penalty,
)

DIGITS = load_digits().data / 16.0
X_TRAIN, X_TEST = train_test_split(DIGITS, test_size=0.25, random_state=0)
PCA8_TEST_MSE = 0.0249
# Predicting the mean training image for every test image.
MEAN_IMAGE_TEST_MSE = float(np.mean((X_TEST - X_TRAIN.mean(axis=0)) ** 2))


@pytest.fixture(autouse=True)
def _quiet_convergence():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def near_zero_fraction(codes, relative=1e-2):
    return float(np.mean(np.abs(codes) < relative * np.abs(codes).max()))


# ---------------------------------------------------------------------- sparse


def test_overcomplete_sparse_code_is_mostly_zero_and_reconstructs_well():
    params = dict(
        code_size=96,  # wider than the 64 input features
        hidden_layer_sizes=(),
        code_activation="relu",
        max_iter=30,
        random_state=0,
    )
    sparse_model = AutoencoderTransformer(sparsity=0.1, **params).fit(X_TRAIN)
    dense_model = AutoencoderTransformer(sparsity=0.0, **params).fit(X_TRAIN)
    sparse_codes = sparse_model.transform(X_TEST)
    assert sparse_codes.shape == (len(X_TEST), 96)
    assert near_zero_fraction(sparse_codes) > 0.5
    assert near_zero_fraction(sparse_codes) > near_zero_fraction(dense_model.transform(X_TEST))
    assert -sparse_model.score(X_TEST) < PCA8_TEST_MSE


def test_kl_sparsity_pulls_mean_activation_towards_target():
    params = dict(code_size=32, hidden_layer_sizes=(), code_activation="logistic", max_iter=40)
    with_target = AutoencoderTransformer(
        sparsity=1.0, sparsity_target=0.05, random_state=0, **params
    ).fit(X_TRAIN)
    without = AutoencoderTransformer(random_state=0, **params).fit(X_TRAIN)
    rate_with = with_target.transform(X_TEST).mean()
    rate_without = without.transform(X_TEST).mean()
    assert abs(rate_with - 0.05) < abs(rate_without - 0.05)
    assert rate_with < 0.15


def test_sparsity_target_needs_logistic_codes():
    with pytest.raises(ValueError, match="code_activation='logistic'"):
        AutoencoderTransformer(sparsity=1.0, sparsity_target=0.1).fit(X_TRAIN)


# ---------------------------------------------------------------------- contractive


@pytest.mark.parametrize("code_activation", ["identity", "logistic"])
def test_closed_form_jacobian_penalty_matches_autograd(code_activation):
    torch.manual_seed(0)
    encoder = nn.Sequential(nn.Linear(6, 3))
    if code_activation == "logistic":
        encoder.append(nn.Sigmoid())
    module = Autoencoder(encoder, nn.Linear(3, 6))
    inputs = torch.randn(5, 6, requires_grad=True)
    code = module.encode(inputs)
    assert_allclose(
        module.jacobian_penalty(inputs, code).item(),
        autograd_jacobian_penalty(inputs, code).item(),
        rtol=1e-5,
    )


def test_autograd_jacobian_penalty_of_a_deep_encoder():
    torch.manual_seed(0)
    encoder = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 2))
    inputs = torch.randn(3, 4, requires_grad=True)
    expected = np.mean(
        [
            torch.autograd.functional.jacobian(encoder, row).pow(2).sum().item()
            for row in inputs.detach()
        ]
    )
    assert_allclose(autograd_jacobian_penalty(inputs, encoder(inputs)).item(), expected, rtol=1e-5)


def test_projected_jacobian_penalty_is_exact_for_one_code_unit():
    torch.manual_seed(0)
    encoder = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 1))
    inputs = torch.randn(6, 4, requires_grad=True)
    code = encoder(inputs)
    assert_allclose(
        projected_jacobian_penalty(inputs, code).item(),
        autograd_jacobian_penalty(inputs, code).item(),
        rtol=1e-5,
    )


def test_projected_jacobian_penalty_is_unbiased_for_a_deep_encoder():
    torch.manual_seed(0)
    module = Autoencoder(
        nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 4)), nn.Linear(4, 6)
    )
    inputs = torch.randn(16, 6, requires_grad=True)
    code = module.encode(inputs)
    exact = autograd_jacobian_penalty(inputs, code).item()
    # A deep encoder takes the one-pass estimate. Single draws spread by about
    # 18% of the exact value, the mean of 4000 by about 0.3%: 3% is ten of those.
    draws = [module.jacobian_penalty(inputs, code).item() for _ in range(4000)]
    assert np.std(draws) > 0.05 * exact
    assert_allclose(np.mean(draws), exact, rtol=0.03)


def test_contractive_training_with_a_deep_encoder_is_reproducible():
    # init="random": from PCA's start both seeds may keep the start, which
    # would hide the seeded projections this test is about.
    params = dict(
        code_size=3, hidden_layer_sizes=(16,), contractive=0.01, max_iter=3, init="random"
    )
    first = AutoencoderTransformer(random_state=0, **params).fit(X_TRAIN).transform(X_TEST)
    second = AutoencoderTransformer(random_state=0, **params).fit(X_TRAIN).transform(X_TEST)
    other = AutoencoderTransformer(random_state=1, **params).fit(X_TRAIN).transform(X_TEST)
    assert_array_equal(first, second)
    assert not np.allclose(first, other)


def relative_sensitivity(model, X, scale=0.01):
    noise = scale * np.random.default_rng(0).standard_normal(X.shape)
    codes = model.transform(X)
    moved = np.linalg.norm(model.transform(X + noise) - codes, axis=1).mean()
    spread = np.linalg.norm(codes - codes.mean(axis=0), axis=1).mean()
    return moved / spread


def test_contractive_codes_move_less_under_small_perturbations():
    params = dict(
        code_size=8,
        hidden_layer_sizes=(64,),
        max_iter=30,
        random_state=0,
        # Measured with the defaults before "auto": from random weights, on every
        # row, in batches of 256 rows.
        init="random",
        early_stopping=False,
        batch_size=256,
    )
    contractive = AutoencoderTransformer(contractive=0.003, **params).fit(X_TRAIN)
    plain = AutoencoderTransformer(contractive=0.0, **params).fit(X_TRAIN)
    # Relative to the spread of the codes: shrinking every code (which a free
    # decoder can undo) does not count. Measured 0.85x here, with reconstruction
    # nearly as good; weights of 0.1 and more collapse the code onto the mean image.
    assert relative_sensitivity(contractive, X_TEST) < 0.9 * relative_sensitivity(plain, X_TEST)
    assert -contractive.score(X_TEST) < 1.2 * -plain.score(X_TEST)
    # The penalty enters the training loss only: validation losses stay comparable.
    assert np.isfinite(contractive.loss_curve_).all()


# ---------------------------------------------------------------------- variational


@pytest.fixture(scope="module")
def fitted_vae():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return VariationalAutoencoder(code_size=4, loss="bce", max_iter=40, random_state=0).fit(
            X_TRAIN
        )


def test_vae_transform_is_the_posterior_mean(fitted_vae):
    codes = fitted_vae.transform(X_TEST)
    with torch.no_grad():
        mean, _ = fitted_vae.module_.posterior(torch.tensor(X_TEST, dtype=torch.float32))
    assert_allclose(codes, mean.numpy(), rtol=1e-5, atol=1e-6)
    assert_array_equal(codes, fitted_vae.transform(X_TEST))


def test_vae_samples_are_reproducible_and_look_like_the_data(fitted_vae):
    samples = fitted_vae.sample(400, random_state=0)
    assert samples.shape == (400, 64)
    assert samples.dtype == np.float64
    assert_array_equal(samples, fitted_vae.sample(400, random_state=0))
    assert not np.array_equal(samples, fitted_vae.sample(400, random_state=1))
    assert samples.min() >= 0
    assert samples.max() <= 1
    # The per-pixel means of generated digits follow those of real digits.
    correlation = np.corrcoef(samples.mean(axis=0), DIGITS.mean(axis=0))[0, 1]
    assert correlation > 0.9
    with pytest.raises(ValueError, match="n_samples"):
        fitted_vae.sample(0)


def test_vae_score_is_the_elbo_per_sample(fitted_vae):
    rows = torch.tensor(X_TEST[:10], dtype=torch.float32)
    with torch.no_grad():
        mean, log_variance = fitted_vae.module_.posterior(rows)
        logits = fitted_vae.module_.decoder(mean)
        reconstruction = nn.functional.binary_cross_entropy_with_logits(
            logits, rows, reduction="none"
        ).sum(dim=1)
        expected = -(reconstruction + gaussian_kl(mean, log_variance)).numpy()
    assert_allclose(fitted_vae.score_samples(X_TEST[:10]), expected, rtol=1e-4)
    assert fitted_vae.score(X_TEST) == pytest.approx(fitted_vae.score_samples(X_TEST).mean())
    # The fit maximised the ELBO: the training loss is the negated training score.
    assert fitted_vae.loss_curve_[-1] == pytest.approx(-fitted_vae.score(X_TRAIN), rel=0.1)


def test_vae_beta_trades_reconstruction_for_a_code_closer_to_the_prior():
    params = dict(code_size=4, loss="bce", max_iter=25, random_state=0)
    loose = VariationalAutoencoder(beta=0.1, **params).fit(X_TRAIN)
    tight = VariationalAutoencoder(beta=4.0, **params).fit(X_TRAIN)

    def kl(model):
        with torch.no_grad():
            mean, log_variance = model.module_.posterior(torch.tensor(X_TEST, dtype=torch.float32))
        return gaussian_kl(mean, log_variance).mean().item()

    def reconstruction_mse(model):
        return np.mean((model.inverse_transform(model.transform(X_TEST)) - X_TEST) ** 2)

    assert kl(tight) < kl(loose)
    assert reconstruction_mse(loose) < reconstruction_mse(tight)


def test_vae_is_reproducible_and_leaves_global_rng_alone():
    state = torch.random.get_rng_state()
    first = VariationalAutoencoder(code_size=2, max_iter=3, random_state=0).fit(X_TRAIN)
    second = VariationalAutoencoder(code_size=2, max_iter=3, random_state=0).fit(X_TRAIN)
    assert torch.equal(state, torch.random.get_rng_state())
    assert_array_equal(first.transform(X_TEST), second.transform(X_TEST))
    assert first.loss_curve_ == second.loss_curve_


@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        # Parameters its codes cannot use are not parameters of the VAE at all.
        (dict(sparsity_target=0.1), TypeError, "sparsity_target"),
        (dict(code_activation="logistic"), TypeError, "code_activation"),
        (dict(beta=-1.0), InvalidParameterError, "beta"),
    ],
)
def test_vae_rejects_parameters_it_cannot_use(params, error, match):
    with pytest.raises(error, match=match):
        VariationalAutoencoder(max_iter=1, **params).fit(X_TRAIN)
    assert "code_activation" not in VariationalAutoencoder().get_params()
    assert "sparsity_target" not in VariationalAutoencoder().get_params()


def test_vae_pickles(fitted_vae):
    restored = pickle.loads(pickle.dumps(fitted_vae))
    assert_array_equal(restored.transform(X_TEST), fitted_vae.transform(X_TEST))
    assert_array_equal(restored.sample(5, random_state=0), fitted_vae.sample(5, random_state=0))


# ---------------------------------------------------------------------- convolutional


@pytest.mark.parametrize(
    ("image_shape", "n_features"), [((8, 8), 64), ((1, 8, 8), 64), ((7, 7), 49), ((2, 5, 3), 30)]
)
@pytest.mark.parametrize("hidden_layer_sizes", [(), (10, 7)])
def test_convolutional_network_round_trips_flat_rows(image_shape, n_features, hidden_layer_sizes):
    encoder, decoder = conv_encoder_decoder(
        image_shape, 3, channels=(4, 6), hidden_layer_sizes=hidden_layer_sizes
    )
    rows = torch.rand(5, n_features)
    code = encoder(rows)
    assert code.shape == (5, 3)
    assert decoder(code).shape == (5, n_features)
    assert sum(isinstance(layer, nn.Conv2d) for layer in encoder) == 2
    assert sum(isinstance(layer, nn.ConvTranspose2d) for layer in decoder) == 2
    dense_widths = [layer.out_features for layer in encoder if isinstance(layer, nn.Linear)]
    assert dense_widths == [*hidden_layer_sizes, 3]


def test_convolutional_autoencoder_learns_digits():
    model = AutoencoderTransformer(
        code_size=8,
        image_shape=(8, 8),
        conv_channels=(16, 32),
        # Straight from the convolutions to the code: on 1347 small images,
        # dense layers in between need 100 epochs instead of 40 to match it.
        hidden_layer_sizes=(),
        output_activation="sigmoid",
        max_iter=40,
        learning_rate_init=3e-3,
        random_state=0,
    ).fit(X_TRAIN)
    assert model.transform(X_TEST).shape == (len(X_TEST), 8)
    assert -model.score(X_TEST) < 0.5 * MEAN_IMAGE_TEST_MSE
    layers = model.get_layer_outputs(X_TEST[:3])
    assert layers["encoder.1"].shape == (3, 16, 4, 4)
    assert layers["decoder.5"].shape == (3, 1, 8, 8)


def test_convolutional_variational_autoencoder_samples_images():
    vae = VariationalAutoencoder(
        code_size=2, image_shape=(8, 8), conv_channels=(8,), loss="bce", max_iter=3, random_state=0
    ).fit(X_TRAIN)
    assert vae.sample(2, random_state=0).shape == (2, 64)


def test_image_shape_must_match_the_number_of_features():
    with pytest.raises(ValueError, match=r"describes 49 values per row, but X has 64"):
        AutoencoderTransformer(image_shape=(7, 7), max_iter=1).fit(X_TRAIN)
    with pytest.raises(ValueError, match="image_shape must hold 2 or 3 positive integers"):
        AutoencoderTransformer(image_shape=(64,), max_iter=1).fit(X_TRAIN)
    with pytest.raises(ValueError, match="conv_channels must hold positive integers"):
        AutoencoderTransformer(image_shape=(8, 8), conv_channels=(0,), max_iter=1).fit(X_TRAIN)


# ---------------------------------------------------------------------- custom networks


def pretrained_pair(seed=0):
    torch.manual_seed(seed)
    encoder = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 5))
    decoder = nn.Sequential(nn.Linear(5, 32), nn.ReLU(), nn.Linear(32, 64))
    return encoder, decoder


def test_custom_encoder_and_decoder_are_trained_on_copies():
    encoder, decoder = pretrained_pair()
    weights_before = encoder[0].weight.detach().clone()
    model = AutoencoderTransformer(
        encoder=encoder, decoder=decoder, max_iter=30, learning_rate_init=3e-3, random_state=0
    ).fit(X_TRAIN)
    assert model.code_size_ == 5  # the encoder's width, whatever code_size says
    assert model.transform(X_TEST).shape == (len(X_TEST), 5)
    assert list(model.get_feature_names_out())[-1] == "autoencodertransformer4"
    assert torch.equal(encoder[0].weight, weights_before)
    assert not torch.equal(model.module_.encoder[0].weight.cpu(), weights_before)
    assert -model.score(X_TEST) < 0.6 * MEAN_IMAGE_TEST_MSE


def test_custom_networks_start_from_the_given_weights():
    encoder, decoder = pretrained_pair()
    model = AutoencoderTransformer(
        encoder=encoder, decoder=decoder, max_iter=1, learning_rate_init=1e-9, random_state=0
    ).fit(X_TRAIN)
    with torch.no_grad():
        expected = encoder(torch.tensor(X_TEST, dtype=torch.float32)).numpy()
    assert_allclose(model.transform(X_TEST), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("side", ["encoder", "decoder"])
def test_freeze_keeps_one_side_of_a_pretrained_network_fixed(side):
    encoder, decoder = pretrained_pair()
    model = AutoencoderTransformer(
        encoder=encoder,
        decoder=decoder,
        freeze=side,
        max_iter=5,
        learning_rate_init=1e-2,
        random_state=0,
    ).fit(X_TRAIN)
    given = {"encoder": encoder, "decoder": decoder}
    trained = {"encoder": model.module_.encoder, "decoder": model.module_.decoder}
    other = "decoder" if side == "encoder" else "encoder"
    for name, parameter in given[side].state_dict().items():
        assert torch.equal(trained[side].state_dict()[name], parameter), name
    assert any(
        not torch.equal(trained[other].state_dict()[name], parameter)
        for name, parameter in given[other].state_dict().items()
    )


def test_freeze_covers_the_linear_path_of_a_pca_start_and_a_warm_start_lifts_it():
    model = AutoencoderTransformer(
        code_size=4,
        hidden_layer_sizes=(16,),
        freeze="encoder",
        max_iter=3,
        early_stopping=False,
        warm_start=True,
        random_state=0,
    ).fit(X_TRAIN)
    codes = model.transform(X_TEST)
    from sklearn.decomposition import PCA

    # The frozen encoding side is still PCA's projection (up to float32).
    assert_allclose(np.abs(codes), np.abs(PCA(4).fit(X_TRAIN).transform(X_TEST)), atol=1e-4)
    model.set_params(freeze=None, learning_rate_init=1e-2).fit(X_TRAIN)
    assert not np.allclose(model.transform(X_TEST), codes, atol=1e-3)


def test_custom_networks_clone_and_grid_search():
    encoder, decoder = pretrained_pair()
    model = AutoencoderTransformer(encoder=encoder, decoder=decoder, max_iter=5, random_state=0)
    cloned = clone(model)
    assert cloned.encoder is not encoder
    assert str(cloned.encoder) == str(encoder)
    search = GridSearchCV(model, {"learning_rate_init": [1e-6, 1e-2]}, cv=2).fit(X_TRAIN)
    assert search.best_params_ == {"learning_rate_init": 1e-2}
    assert torch.equal(encoder[0].weight, pretrained_pair()[0][0].weight)


@pytest.mark.parametrize(
    ("encoder", "decoder", "match"),
    [
        (nn.Linear(64, 4), None, "encoder and decoder must be given together"),
        (nn.Linear(64, 4), nn.Linear(4, 10), "decoder must output rows of 64 features"),
        (nn.Linear(10, 4), nn.Linear(4, 64), "cannot encode and decode rows of 64 features"),
        (nn.Unflatten(1, (8, 8)), nn.Flatten(), "encoder must output 2-D codes"),
    ],
)
def test_custom_networks_that_do_not_fit_the_data_are_rejected(encoder, decoder, match):
    with pytest.raises(ValueError, match=match):
        AutoencoderTransformer(encoder=encoder, decoder=decoder, max_iter=1).fit(X_TRAIN)


def test_custom_networks_exclude_image_shape():
    encoder, decoder = pretrained_pair()
    with pytest.raises(ValueError, match="cannot be combined with a custom encoder"):
        AutoencoderTransformer(encoder=encoder, decoder=decoder, image_shape=(8, 8)).fit(X_TRAIN)


# ---------------------------------------------------------------------- layer outputs


def test_layer_outputs_cover_every_layer_and_end_in_the_code():
    # The plain network (init="random"), whose last encoder layer outputs the code.
    model = AutoencoderTransformer(
        code_size=3, hidden_layer_sizes=(16,), max_iter=3, init="random", random_state=0
    ).fit(X_TRAIN)
    layers = model.get_layer_outputs(X_TEST)
    assert list(layers) == [
        "encoder.0",
        "encoder.1",
        "encoder.2",
        "decoder.0",
        "decoder.1",
        "decoder.2",
    ]
    assert layers["encoder.0"].shape == (len(X_TEST), 16)
    assert (layers["encoder.1"] >= 0).all()  # after the ReLU
    assert_allclose(layers["encoder.2"], model.transform(X_TEST), rtol=1e-6)
    # inverse_transform clips the network's output at the bounds the rows pile up against.
    assert_allclose(
        model._clipped_to_output_bounds(layers["decoder.2"]),
        model.inverse_transform(model.transform(X_TEST)),
        rtol=1e-5,
    )
    only_code = model.get_layer_outputs(X_TEST, layers=["encoder.2"])
    assert list(only_code) == ["encoder.2"]
    with pytest.raises(ValueError, match="Unknown layers"):
        model.get_layer_outputs(X_TEST, layers=["encoder.9"])


def test_pca_reference_value():
    pca = PCA(8).fit(X_TRAIN)
    mse = np.mean((X_TEST - pca.inverse_transform(pca.transform(X_TEST))) ** 2)
    assert mse == pytest.approx(PCA8_TEST_MSE, abs=5e-4)
