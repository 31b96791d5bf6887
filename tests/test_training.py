"""Tests of the training engine (sklae._training): data path, split, callbacks, net."""

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from numpy.testing import assert_array_equal
from scipy import sparse
from skorch.history import History

from sklae import TrainingDivergedError
from sklae._networks import MLPAutoencoder, ReconstructionLoss
from sklae._training import (
    AutoencoderNet,
    DivergenceGuard,
    ImprovementStopper,
    RandomRowSplit,
    RowBatches,
    RowData,
    epoch_seed,
)

N_ROWS = 23
N_FEATURES = 5
BATCH_SIZE = 4
SEED = 0

# Row i holds the value i in every column, so a batch tells which rows it holds.
NUMBERED_ROWS = np.repeat(np.arange(N_ROWS, dtype=np.float32)[:, None], N_FEATURES, axis=1)
RANDOM_ROWS = np.random.default_rng(SEED).random((200, N_FEATURES), dtype=np.float32)


def dense_data(array=NUMBERED_ROWS):
    return RowData(torch.from_numpy(np.array(array, dtype=np.float32)))


def sparse_data(array=NUMBERED_ROWS):
    return RowData(sparse.csr_matrix(np.array(array, dtype=np.float32)))


def row_numbers(batch):
    return batch[:, 0].long().tolist()


def counter_seeds(start=0):
    """A ``seed_for_epoch`` that returns start, start + 1, ... on successive passes."""
    seeds = iter(range(start, start + 1000))
    return lambda: next(seeds)


def reconstruction_before_activation(outputs):
    """The reconstruction among a module's outputs (forward may return a tuple)."""
    return outputs[0] if isinstance(outputs, tuple) else outputs


def make_net(**params):
    with torch.random.fork_rng():
        torch.manual_seed(SEED)
        module = MLPAutoencoder(N_FEATURES, 2, hidden_layer_sizes=(8,))
    settings = {
        "module": module,
        "criterion": ReconstructionLoss("mse"),
        "optimizer": torch.optim.Adam,
        "lr": 1e-2,
        "max_epochs": 5,
        "batch_size": 32,
        "train_split": None,
        "verbose": 0,
        "random_seed": SEED,
        **params,
    }
    return AutoencoderNet(**settings).initialize()


# ---------------------------------------------------------------------- RowData


def test_row_data_length_and_kind():
    assert len(dense_data()) == N_ROWS
    assert len(sparse_data()) == N_ROWS
    assert not dense_data().is_sparse
    assert sparse_data().is_sparse


def test_row_data_rejects_plain_lists():
    with pytest.raises(TypeError, match="RowData holds a tensor"):
        RowData(NUMBERED_ROWS.tolist())


@pytest.mark.parametrize("make_data", [dense_data, sparse_data])
def test_row_data_take_keeps_the_given_order(make_data):
    taken = make_data().take(np.array([7, 2, 19]))

    assert len(taken) == 3
    assert taken.is_sparse == make_data().is_sparse
    assert row_numbers(taken.batch(slice(None), "cpu")) == [7, 2, 19]


@pytest.mark.parametrize("make_data", [dense_data, sparse_data])
def test_row_data_batch_by_slice_and_by_positions(make_data):
    data = make_data()

    by_slice = data.batch(slice(3, 6), "cpu")
    by_positions = data.batch(torch.tensor([5, 0, 22]), "cpu")

    assert isinstance(by_slice, torch.Tensor)
    assert by_slice.dtype == torch.float32
    assert by_slice.shape == (3, N_FEATURES)
    assert row_numbers(by_slice) == [3, 4, 5]
    assert row_numbers(by_positions) == [5, 0, 22]


def test_sparse_batch_equals_dense_batch():
    positions = torch.tensor([4, 11, 0, 9])

    dense = dense_data(RANDOM_ROWS).batch(positions, "cpu")
    from_sparse = sparse_data(RANDOM_ROWS).batch(positions, "cpu")

    torch.testing.assert_close(from_sparse, dense, rtol=0, atol=0)


# ---------------------------------------------------------------------- RowBatches


@pytest.mark.parametrize(
    ("n_rows", "batch_size", "expected_sizes"),
    [(23, 4, [4, 4, 4, 4, 4, 3]), (8, 4, [4, 4]), (3, 256, [3]), (1, 1, [1])],
)
def test_row_batches_keep_the_short_last_batch(n_rows, batch_size, expected_sizes):
    batches = RowBatches(dense_data(NUMBERED_ROWS[:n_rows]), batch_size, "cpu", counter_seeds())

    sizes = [len(inputs) for inputs, _ in batches]

    assert sizes == expected_sizes
    assert len(batches) == len(expected_sizes) == math.ceil(n_rows / batch_size)


@pytest.mark.parametrize("make_data", [dense_data, sparse_data])
def test_row_batches_visit_every_row_once_per_pass(make_data):
    batches = RowBatches(make_data(), BATCH_SIZE, "cpu", counter_seeds())

    for _ in range(3):
        visited = [row for inputs, _ in batches for row in row_numbers(inputs)]
        assert sorted(visited) == list(range(N_ROWS))


def test_row_batches_target_is_the_input():
    for inputs, targets in RowBatches(dense_data(), BATCH_SIZE, "cpu", counter_seeds()):
        assert targets is inputs


def test_row_batches_without_seed_keep_the_row_order():
    batches = RowBatches(dense_data(), BATCH_SIZE, "cpu", seed_for_epoch=None)

    visited = [row for inputs, _ in batches for row in row_numbers(inputs)]

    assert visited == list(range(N_ROWS))


def test_row_batches_order_depends_on_the_seed_alone():
    def order(seed):
        batches = RowBatches(dense_data(), BATCH_SIZE, "cpu", seed_for_epoch=lambda: seed)
        return [row for inputs, _ in batches for row in row_numbers(inputs)]

    assert order(1) == order(1)
    assert order(1) != order(2)
    assert order(1) != list(range(N_ROWS))


def test_row_batches_shuffle_afresh_every_pass():
    batches = RowBatches(dense_data(), BATCH_SIZE, "cpu", counter_seeds())

    first = [row for inputs, _ in batches for row in row_numbers(inputs)]
    second = [row for inputs, _ in batches for row in row_numbers(inputs)]

    assert first != second


def test_sparse_and_dense_batches_are_the_same():
    dense = RowBatches(dense_data(RANDOM_ROWS), 32, "cpu", counter_seeds())
    from_sparse = RowBatches(sparse_data(RANDOM_ROWS), 32, "cpu", counter_seeds())

    for (dense_batch, _), (sparse_batch, _) in zip(dense, from_sparse, strict=True):
        torch.testing.assert_close(sparse_batch, dense_batch, rtol=0, atol=0)


def test_row_batches_leave_the_global_torch_seed_alone():
    state = torch.random.get_rng_state()

    list(RowBatches(dense_data(), BATCH_SIZE, "cpu", counter_seeds()))

    assert torch.equal(torch.random.get_rng_state(), state)


def test_epoch_seed_is_reproducible_and_differs_per_epoch():
    assert epoch_seed(3, 0) == epoch_seed(3, 0)
    assert len({epoch_seed(3, epoch) for epoch in range(20)}) == 20
    assert epoch_seed(3, 1) != epoch_seed(4, 1)


# ---------------------------------------------------------------------- RandomRowSplit


@pytest.mark.parametrize(
    ("n_rows", "fraction", "n_valid"),
    [(100, 0.1, 10), (100, 0.25, 25), (10, 0.01, 1), (10, 0.99, 9), (2, 0.5, 1), (3, 0.5, 2)],
)
def test_random_row_split_sizes(n_rows, fraction, n_valid):
    train, valid = RandomRowSplit(fraction, SEED)(dense_data(RANDOM_ROWS[:n_rows]))

    assert len(valid) == n_valid
    assert len(train) == n_rows - n_valid


@pytest.mark.parametrize("make_data", [dense_data, sparse_data])
def test_random_row_split_partitions_the_rows(make_data):
    train, valid = RandomRowSplit(0.3, SEED)(make_data())

    train_rows = row_numbers(train.batch(slice(None), "cpu"))
    valid_rows = row_numbers(valid.batch(slice(None), "cpu"))

    assert set(train_rows).isdisjoint(valid_rows)
    assert sorted(train_rows + valid_rows) == list(range(N_ROWS))
    # Kept in the original order, so contiguous slices stay cache friendly.
    assert train_rows == sorted(train_rows)
    assert valid_rows == sorted(valid_rows)
    assert train.is_sparse == valid.is_sparse == make_data().is_sparse


def test_random_row_split_depends_on_the_seed():
    def valid_rows(seed):
        _, valid = RandomRowSplit(0.3, seed)(dense_data())
        return row_numbers(valid.batch(slice(None), "cpu"))

    assert valid_rows(1) == valid_rows(1)
    assert valid_rows(1) != valid_rows(2)


@pytest.mark.parametrize("n_rows", [0, 1])
def test_random_row_split_needs_two_rows(n_rows):
    with pytest.raises(ValueError, match=f"at least 2 samples.*got {n_rows}"):
        RandomRowSplit(0.5, SEED)(dense_data(NUMBERED_ROWS[:n_rows]))


# ---------------------------------------------------------------------- DivergenceGuard


def net_with_last_record(**record):
    history = History()
    history.new_epoch()
    for key, value in record.items():
        history.record(key, value)
    return SimpleNamespace(history=history)


@pytest.mark.parametrize(
    ("key", "value", "named"),
    [
        ("train_loss", float("nan"), "train loss became nan"),
        ("train_loss", float("inf"), "train loss became inf"),
        ("valid_loss", float("nan"), "valid loss became nan"),
    ],
)
def test_divergence_guard_raises_on_a_non_finite_loss(key, value, named):
    record = {"epoch": 7, "train_loss": 0.5, key: value}
    guard = DivergenceGuard(learning_rate=0.25)

    with pytest.raises(TrainingDivergedError, match=f"diverged: the {named} at epoch 7") as info:
        guard.on_epoch_end(net_with_last_record(**record))

    assert "Lower learning_rate_init (now 0.25)" in str(info.value)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, FloatingPointError)


def test_divergence_guard_passes_finite_losses():
    guard = DivergenceGuard(learning_rate=0.25)

    guard.on_epoch_end(net_with_last_record(epoch=1, train_loss=1e30, valid_loss=2.0))
    guard.on_epoch_end(net_with_last_record(epoch=1, train_loss=0.1))


def test_divergence_guard_stops_a_net_with_a_huge_learning_rate():
    net = make_net(lr=1e6, max_epochs=10, callbacks=[("guard", DivergenceGuard(1e6))])

    with pytest.raises(TrainingDivergedError, match=r"at epoch \d+.*now 1000000.0"):
        net.fit(dense_data(RANDOM_ROWS))


# ---------------------------------------------------------------------- ImprovementStopper


def stopper(patience=3):
    # A relative threshold, so that rounding noise in the epoch mean is no improvement.
    return ImprovementStopper(monitor="train_loss", patience=patience, threshold=1e-4)


def test_stopper_tells_its_stop_from_the_end_of_training():
    learning = make_net(max_epochs=3, callbacks=[("stopper", stopper())])
    stuck = make_net(lr=0.0, max_epochs=50, callbacks=[("stopper", stopper())])

    learning.fit(dense_data(RANDOM_ROWS))
    stuck.fit(dense_data(RANDOM_ROWS))

    assert not dict(learning.callbacks_)["stopper"].stopped_
    assert len(learning.history) == 3
    # With lr=0 the loss never improves on the first epoch's.
    assert dict(stuck.callbacks_)["stopper"].stopped_
    assert len(stuck.history) == 1 + 3


def test_stopper_resets_for_every_training_run():
    net = make_net(lr=0.0, max_epochs=50, callbacks=[("stopper", stopper())])
    net.fit(dense_data(RANDOM_ROWS))

    net.set_params(lr=1e-2)
    net.partial_fit(dense_data(RANDOM_ROWS), epochs=2)

    assert not dict(net.callbacks_)["stopper"].stopped_


def test_stopper_restores_the_best_weights_of_the_monitored_loss():
    net = make_net(
        lr=1e-2,
        max_epochs=30,
        train_split=RandomRowSplit(0.5, SEED),
        callbacks=[
            (
                "stopper",
                ImprovementStopper(monitor="valid_loss", patience=30, load_best=True),
            )
        ],
    )
    data = dense_data(RANDOM_ROWS)
    net.fit(data)
    _, valid = net.train_split(data)
    valid_losses = net.history[:, "valid_loss"]

    with torch.no_grad():
        rows = valid.batch(slice(None), "cpu")
        reconstruction = reconstruction_before_activation(net.module_(rows))
        restored_loss = ReconstructionLoss("mse")(reconstruction, rows).item()

    assert restored_loss == pytest.approx(min(valid_losses), rel=1e-4)


# ---------------------------------------------------------------------- AutoencoderNet


def test_net_learns_to_reconstruct():
    net = make_net(max_epochs=30)

    net.fit(dense_data(RANDOM_ROWS))

    losses = net.history[:, "train_loss"]
    assert len(losses) == 30
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize(
    ("n_rows", "batch_size", "expected_sizes"),
    [(200, 64, [64, 64, 64, 8]), (10, 256, [10])],
)
def test_net_trains_the_short_last_batch(n_rows, batch_size, expected_sizes):
    net = make_net(max_epochs=1, batch_size=batch_size)

    net.fit(dense_data(RANDOM_ROWS[:n_rows]))

    record = net.history[-1]
    batch_sizes = [batch["train_batch_size"] for batch in record["batches"]]
    batch_losses = [batch["train_loss"] for batch in record["batches"]]
    assert batch_sizes == expected_sizes
    assert record["train_batch_count"] == len(expected_sizes)
    # The epoch's loss weighs every batch, the short one included, by its size.
    assert record["train_loss"] == pytest.approx(np.average(batch_losses, weights=batch_sizes))


def test_net_training_is_reproducible_and_depends_on_the_shuffle_seed():
    def losses(seed):
        net = make_net(max_epochs=3, batch_size=16, random_seed=seed)
        net.fit(dense_data(RANDOM_ROWS))
        return net.history[:, "train_loss"]

    assert losses(1) == losses(1)
    assert losses(1) != losses(2)


def test_net_sparse_and_dense_training_agree():
    dense_net = make_net(max_epochs=3, batch_size=16)
    sparse_net = make_net(max_epochs=3, batch_size=16)

    dense_net.fit(dense_data(RANDOM_ROWS))
    sparse_net.fit(sparse_data(RANDOM_ROWS))

    np.testing.assert_allclose(
        sparse_net.history[:, "train_loss"], dense_net.history[:, "train_loss"], rtol=1e-5
    )


def test_net_validates_on_the_held_out_rows():
    net = make_net(max_epochs=2, train_split=RandomRowSplit(0.25, SEED))

    net.fit(dense_data(RANDOM_ROWS))

    record = net.history[-1]
    assert record["valid_batch_count"] == 1
    assert (
        sum(batch["valid_batch_size"] for batch in record["batches"] if "valid_batch_size" in batch)
        == 50
    )
    assert math.isfinite(record["valid_loss"])


def test_net_partial_fit_continues_the_history():
    net = make_net(max_epochs=2)
    data = dense_data(RANDOM_ROWS)

    net.fit(data)
    net.partial_fit(data, epochs=3)

    assert net.history[:, "epoch"] == [1, 2, 3, 4, 5]


def test_net_forward_reconstructs_in_evaluation_batches():
    net = make_net(max_epochs=1)
    data = dense_data(RANDOM_ROWS)
    net.fit(data)

    output = reconstruction_before_activation(net.forward(data))

    with torch.no_grad():
        expected = reconstruction_before_activation(net.module_(data.values))
    assert output.shape == (len(RANDOM_ROWS), N_FEATURES)
    torch.testing.assert_close(output, expected)


def test_net_fit_leaves_the_global_torch_seed_alone():
    net = make_net(max_epochs=2, train_split=RandomRowSplit(0.25, SEED))
    state = torch.random.get_rng_state()

    net.fit(dense_data(RANDOM_ROWS))

    assert_array_equal(torch.random.get_rng_state().numpy(), state.numpy())
