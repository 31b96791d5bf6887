"""Tests of the training engine (sklae._engine): data path, split, callbacks, net, plan."""

import dataclasses
import math
from types import SimpleNamespace
from unittest import mock

import numpy as np
import pytest
import torch
from numpy.testing import assert_array_equal
from scipy import sparse
from skorch.callbacks import Callback
from skorch.history import History
from torch import nn

from sklae import TrainingDivergedError
from sklae._engine import (
    EVALUATION_BATCH_SIZE,
    AutoencoderNet,
    Batches,
    DivergenceGuard,
    FlatAdam,
    ImprovementStopper,
    RandomRowSplit,
    RowData,
    TrainingOutcome,
    TrainingPlan,
    TrainingRows,
    build_net,
    configure_net,
    flat_adam,
    map_module,
    map_rows,
    rate_factors,
    steps_per_epoch,
    train,
)
from sklae._engine import net as engine_net
from sklae._engine.callbacks import FLUSH_INTERVAL_STEPS, TINY_VALUE, flush_tiny_
from sklae._engine.data import draw_seed, epoch_seed, pass_seeds
from sklae._networks import (
    Autoencoder,
    AutoencoderObjective,
    EnsembleAutoencoder,
    MLPAutoencoder,
    ReconstructionLoss,
    build_initialized,
    conv_encoder_decoder,
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


def rows_of(data):
    """The rows a net trains on: ``data`` reproduced, neither corrupted nor paired."""
    return TrainingRows(data)


def row_numbers(batch):
    return batch[:, 0].long().tolist()


def visited_rows(batches):
    return [row for inputs, _ in batches for row in row_numbers(inputs)]


def counter_seeds(start=0):
    """A ``seeds_for_pass`` whose seeds are start, start + 1, ... on successive passes."""
    seeds = iter(range(start, start + 1000))

    def seeds_for_pass():
        seed = next(seeds)
        return seed, seed

    return seeds_for_pass


def reconstruction_before_activation(outputs):
    """The reconstruction among a module's outputs (forward may return a tuple)."""
    return outputs[0] if isinstance(outputs, tuple) else outputs


def make_module():
    return build_initialized(lambda: MLPAutoencoder(N_FEATURES, 2, hidden_layer_sizes=(8,)), SEED)


def make_net(**params):
    settings = {
        "module": make_module(),
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


def make_plan(**changes):
    return TrainingPlan(
        **{"learning_rate": 1e-2, "max_epochs": 5, "batch_size": 32, "seed": SEED, **changes}
    )


# ---------------------------------------------------------------------- RowData


def test_row_data_length_and_kind():
    assert len(dense_data()) == N_ROWS
    assert len(sparse_data()) == N_ROWS
    assert not dense_data().is_sparse
    assert sparse_data().is_sparse
    assert dense_data().n_columns == sparse_data().n_columns == N_FEATURES


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


# ---------------------------------------------------------------------- TrainingRows


def test_training_rows_refuse_inputs_of_another_shape():
    with pytest.raises(ValueError, match=r"inputs of shape \(22, 5\) do not match .*\(23, 5\)"):
        TrainingRows(dense_data(), inputs=dense_data(NUMBERED_ROWS[:22]))


@pytest.mark.parametrize("make_data", [dense_data, sparse_data])
def test_training_rows_take_the_same_rows_of_targets_and_inputs(make_data):
    rows = TrainingRows(make_data(), inputs=make_data(NUMBERED_ROWS * 10))

    taken = rows.take(np.array([7, 2, 19]))

    assert len(taken) == 3
    assert row_numbers(taken.targets.batch(slice(None), "cpu")) == [7, 2, 19]
    assert row_numbers(taken.inputs.batch(slice(None), "cpu")) == [70, 20, 190]


# ---------------------------------------------------------------------- Batches


@pytest.mark.parametrize(
    ("n_rows", "batch_size", "expected_sizes"),
    [(23, 4, [4, 4, 4, 4, 4, 3]), (8, 4, [4, 4]), (3, 256, [3]), (1, 1, [1])],
)
def test_batches_keep_the_short_last_batch(n_rows, batch_size, expected_sizes):
    batches = Batches(
        rows_of(dense_data(NUMBERED_ROWS[:n_rows])), batch_size, "cpu", counter_seeds()
    )

    sizes = [len(inputs) for inputs, _ in batches]

    assert sizes == expected_sizes
    assert len(batches) == len(expected_sizes) == math.ceil(n_rows / batch_size)


@pytest.mark.parametrize("make_data", [dense_data, sparse_data])
def test_batches_visit_every_row_once_per_pass(make_data):
    batches = Batches(rows_of(make_data()), BATCH_SIZE, "cpu", counter_seeds())

    for _ in range(3):
        assert sorted(visited_rows(batches)) == list(range(N_ROWS))


def test_batches_target_is_the_input():
    for inputs, targets in Batches(rows_of(dense_data()), BATCH_SIZE, "cpu", counter_seeds()):
        assert targets is inputs


def test_batches_without_seeds_keep_the_row_order():
    batches = Batches(rows_of(dense_data()), BATCH_SIZE, "cpu", seeds_for_pass=None)

    assert visited_rows(batches) == list(range(N_ROWS))


def test_batches_without_shuffle_keep_the_row_order():
    batches = Batches(rows_of(dense_data()), BATCH_SIZE, "cpu", counter_seeds(), shuffle=False)

    assert visited_rows(batches) == list(range(N_ROWS))


def test_batches_order_depends_on_the_seed_alone():
    def order(seed):
        batches = Batches(
            rows_of(dense_data()), BATCH_SIZE, "cpu", seeds_for_pass=lambda: (seed, 0)
        )
        return visited_rows(batches)

    assert order(1) == order(1)
    assert order(1) != order(2)
    assert order(1) != list(range(N_ROWS))


def test_batches_shuffle_afresh_every_pass():
    batches = Batches(rows_of(dense_data()), BATCH_SIZE, "cpu", counter_seeds())

    first = visited_rows(batches)
    second = visited_rows(batches)

    assert first != second


def test_sparse_and_dense_batches_are_the_same():
    dense = Batches(rows_of(dense_data(RANDOM_ROWS)), 32, "cpu", counter_seeds())
    from_sparse = Batches(rows_of(sparse_data(RANDOM_ROWS)), 32, "cpu", counter_seeds())

    for (dense_batch, _), (sparse_batch, _) in zip(dense, from_sparse, strict=True):
        torch.testing.assert_close(sparse_batch, dense_batch, rtol=0, atol=0)


def test_batches_leave_the_global_torch_seed_alone():
    state = torch.random.get_rng_state()

    list(Batches(rows_of(dense_data()), BATCH_SIZE, "cpu", counter_seeds()))

    assert torch.equal(torch.random.get_rng_state(), state)


@pytest.mark.parametrize("values", [RANDOM_ROWS.astype(np.float64), sparse.csr_matrix(RANDOM_ROWS)])
def test_batches_read_numpy_and_sparse_rows_in_the_dtype_asked(values):
    batches = Batches(TrainingRows(RowData(values)), 64, "cpu", dtype=torch.float64)

    read = torch.cat([inputs for inputs, _ in batches])

    assert read.dtype == torch.float64
    expected = values.toarray() if sparse.issparse(values) else values
    assert_array_equal(read.numpy(), np.asarray(expected, dtype=np.float64))


def shard_passes(n_rows, batch_size, world_size, seed=3):
    """Each rank's rows of one pass, with the seeds every rank shares."""
    data = rows_of(dense_data(np.repeat(np.arange(n_rows)[:, None], N_FEATURES, axis=1)))
    passes = []
    for rank in range(world_size):
        batches = Batches(data, batch_size, "cpu", lambda: (seed, seed), shard=(rank, world_size))
        passes.append((len(batches), [row_numbers(inputs) for inputs, _ in batches]))
    return passes


@pytest.mark.parametrize(
    ("n_rows", "batch_size", "world_size"), [(24, 4, 2), (24, 4, 3), (8, 2, 4)]
)
def test_sharded_batches_visit_every_row_once_per_pass_across_ranks(n_rows, batch_size, world_size):
    passes = shard_passes(n_rows, batch_size, world_size)

    visited = [row for _, batches in passes for batch in batches for row in batch]
    assert sorted(visited) == list(range(n_rows))
    steps = {n_steps for n_steps, _ in passes}
    assert steps == {n_rows // (batch_size * world_size)}
    assert all(len(batches) == n_steps for n_steps, batches in passes)


@pytest.mark.parametrize(
    ("n_rows", "batch_size", "world_size"), [(23, 4, 3), (10, 4, 3), (5, 4, 3), (25, 4, 2)]
)
def test_sharded_batches_take_equal_steps_per_rank_and_cover_every_row(
    n_rows, batch_size, world_size
):
    passes = shard_passes(n_rows, batch_size, world_size)

    # Every step is a collective: each rank takes as many, all of full size
    # (the last wrap round to the start of the order).
    expected_steps = math.ceil(n_rows / (batch_size * world_size))
    for n_steps, batches in passes:
        assert n_steps == len(batches) == expected_steps
        assert all(len(batch) == batch_size for batch in batches)
    visited = [row for _, batches in passes for batch in batches for row in batch]
    assert set(visited) == set(range(n_rows))


def test_sharded_batches_follow_the_one_order_of_the_pass():
    (_, rank_0), (_, rank_1) = shard_passes(24, 4, 2)
    unsharded = Batches(
        rows_of(dense_data(np.repeat(np.arange(24)[:, None], N_FEATURES, axis=1))),
        4,
        "cpu",
        lambda: (3, 3),
    )

    interleaved = [batch for pair in zip(rank_0, rank_1) for batch in pair]

    assert interleaved == [row_numbers(inputs) for inputs, _ in unsharded]


def test_epoch_seed_is_reproducible_and_differs_per_epoch():
    assert epoch_seed(3, 0) == epoch_seed(3, 0)
    assert len({epoch_seed(3, epoch) for epoch in range(20)}) == 20
    assert epoch_seed(3, 1) != epoch_seed(4, 1)


def test_pass_and_draw_seeds_are_distinct_streams():
    order, corruption = pass_seeds(3, 5)

    assert order == epoch_seed(3, 5)
    assert len({order, corruption, draw_seed(3, 5)}) == 3
    assert pass_seeds(3, 5) == (order, corruption)
    assert draw_seed(3, 5) != draw_seed(3, 6)


# ---------------------------------------------------------------------- map_rows


def test_map_rows_computes_in_float64_when_asked():
    # Values whose last bits float32 cannot hold.
    values = np.random.default_rng(SEED).random((50, 3)) + 1e-9
    seen = []

    def identity(rows):
        seen.append(rows.dtype)
        return rows

    exact = map_rows(values, identity, 3, "cpu", np.float64, compute_dtype=torch.float64)
    rounded = map_rows(values, identity, 3, "cpu", np.float64)

    assert seen == [torch.float64, torch.float32]
    assert exact.dtype == rounded.dtype == np.float64
    assert_array_equal(exact, values)
    assert_array_equal(rounded, values.astype(np.float32).astype(np.float64))
    assert not np.array_equal(rounded, values)


@pytest.mark.parametrize("as_sparse", [False, True])
def test_map_rows_results_do_not_depend_on_the_batch_size(as_sparse):
    values = np.random.default_rng(SEED).standard_normal((50, 3))
    values = sparse.csr_matrix(values) if as_sparse else values
    weights = torch.from_numpy(np.random.default_rng(1).standard_normal((3, 2)))

    def project(rows):
        return rows @ weights

    results = [
        map_rows(values, project, 2, "cpu", np.float64, torch.float64, batch_size=size)
        for size in (7, 50, EVALUATION_BATCH_SIZE)
    ]

    assert results[0].shape == (50, 2)
    for result in results[1:]:
        assert_array_equal(result, results[0])


def test_map_module_in_float64_leaves_the_module_in_float32():
    module = make_module()
    values = np.random.default_rng(SEED).random((40, N_FEATURES))

    codes = map_module(
        module, values, lambda m, rows: m.encode(rows), 2, np.float64, torch.device("cpu")
    )

    assert codes.dtype == np.float64
    assert next(module.parameters()).dtype == torch.float32
    with torch.no_grad():
        expected = module.double().encode(torch.from_numpy(values)).numpy()
    assert_array_equal(codes, expected)


# ---------------------------------------------------------------------- RandomRowSplit


@pytest.mark.parametrize(
    ("n_rows", "fraction", "n_valid"),
    [(100, 0.1, 10), (100, 0.25, 25), (10, 0.01, 1), (10, 0.99, 9), (2, 0.5, 1), (3, 0.5, 2)],
)
def test_random_row_split_sizes(n_rows, fraction, n_valid):
    train_rows, valid = RandomRowSplit(fraction, SEED)(rows_of(dense_data(RANDOM_ROWS[:n_rows])))

    assert len(valid) == n_valid
    assert len(train_rows) == n_rows - n_valid


@pytest.mark.parametrize("make_data", [dense_data, sparse_data])
def test_random_row_split_partitions_the_rows(make_data):
    train_rows, valid = RandomRowSplit(0.3, SEED)(rows_of(make_data()))

    train_numbers = row_numbers(train_rows.targets.batch(slice(None), "cpu"))
    valid_numbers = row_numbers(valid.targets.batch(slice(None), "cpu"))

    assert set(train_numbers).isdisjoint(valid_numbers)
    assert sorted(train_numbers + valid_numbers) == list(range(N_ROWS))
    # Kept in the original order, so contiguous slices stay cache friendly.
    assert train_numbers == sorted(train_numbers)
    assert valid_numbers == sorted(valid_numbers)
    assert train_rows.targets.is_sparse == valid.targets.is_sparse == make_data().is_sparse


def test_random_row_split_depends_on_the_seed():
    def valid_rows(seed):
        _, valid = RandomRowSplit(0.3, seed)(rows_of(dense_data()))
        return row_numbers(valid.targets.batch(slice(None), "cpu"))

    assert valid_rows(1) == valid_rows(1)
    assert valid_rows(1) != valid_rows(2)


@pytest.mark.parametrize("n_rows", [0, 1])
def test_random_row_split_needs_two_rows(n_rows):
    with pytest.raises(ValueError, match=f"at least 2 rows, got {n_rows}"):
        RandomRowSplit(0.5, SEED)(rows_of(dense_data(NUMBERED_ROWS[:n_rows])))


# ---------------------------------------------------------------------- DivergenceGuard


def net_with_last_record(**record):
    history = History()
    history.new_epoch()
    for key, value in record.items():
        history.record(key, value)
    return SimpleNamespace(history=history)


def run_batches(guard, epoch, key, losses):
    """Record ``losses`` under ``key`` batch by batch, as skorch does, showing ``guard`` each."""
    net = net_with_last_record(epoch=epoch)
    for loss in losses:
        net.history.new_batch()
        net.history.record_batch(key, loss)
        guard.on_batch_end(net, training=key == "train_loss")
    return net


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
    guard = DivergenceGuard()

    with pytest.raises(TrainingDivergedError, match=f"diverged: the {named} at epoch 7") as info:
        guard.on_epoch_end(net_with_last_record(**record))

    # The engine names no estimator parameter: the estimators add the remedies
    # (tested in test_hardening.py, test_divergence_message_names_the_remedies).
    assert "learning_rate_init" not in str(info.value)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, FloatingPointError)


@pytest.mark.parametrize("training", [True, False])
def test_divergence_guard_raises_in_the_batch_where_the_loss_turns_non_finite(training):
    key = "train_loss" if training else "valid_loss"
    guard = DivergenceGuard()
    guard.on_train_begin(SimpleNamespace(history=History()))

    with pytest.raises(
        TrainingDivergedError, match=f"the {key.replace('_', ' ')} became inf at epoch 3, batch 3"
    ):
        run_batches(guard, 3, key, [0.5, 0.4, float("inf"), 0.3])


def net_with_records(*records):
    history = History()
    for record in records:
        history.new_epoch()
        for key, value in record.items():
            history.record(key, value)
    return SimpleNamespace(history=history)


def run_ends(guard, *records):
    """Show ``guard`` a training run of ``records`` (one dict per epoch), start to end."""
    net = net_with_records(*records)
    guard.on_train_begin(SimpleNamespace(history=History()))
    for position in range(len(records)):
        guard.on_epoch_end(SimpleNamespace(history=net.history[: position + 1]))
    guard.on_train_end(net)


def test_divergence_guard_passes_finite_losses_without_a_reference():
    # Without a reference and before any training batch, no growth can be judged.
    run_ends(DivergenceGuard(), {"epoch": 1, "train_loss": 1e30, "valid_loss": 2.0})
    run_ends(DivergenceGuard(), {"epoch": 1, "train_loss": 0.1})


def test_divergence_guard_raises_when_a_run_ends_far_above_the_reference():
    # Up to 1000 times the reference is a bad run, not divergence.
    run_ends(DivergenceGuard(reference_loss=2.0), {"epoch": 1, "train_loss": 2000.0})
    with pytest.raises(
        TrainingDivergedError,
        match=(
            r"diverged: the train loss ended at 2002, 1e\+03 times its starting "
            r"value of 2 at epoch 2\.$"
        ),
    ):
        run_ends(
            DivergenceGuard(reference_loss=2.0),
            {"epoch": 1, "train_loss": 1.0},
            {"epoch": 2, "train_loss": 2002.0},
        )


def test_divergence_guard_forgives_a_spike_that_training_recovers_from():
    # Measured with clipped gradients and a huge step: 1.9e15 at epoch 1, then back.
    run_ends(
        DivergenceGuard(reference_loss=1.0),
        {"epoch": 1, "train_loss": 1.9e15},
        {"epoch": 2, "train_loss": 6.7e9},
        {"epoch": 3, "train_loss": 4.8},
    )


def test_divergence_guard_judges_the_last_training_loss_whatever_the_validation():
    guard = DivergenceGuard(reference_loss=1.0)
    # A good validation epoch does not hide an optimisation that ended diverged.
    with pytest.raises(
        TrainingDivergedError, match="the train loss ended at 5e\\+06, .* at epoch 2"
    ):
        run_ends(
            guard,
            {"epoch": 1, "train_loss": 0.9, "valid_loss": 0.8},
            {"epoch": 2, "train_loss": 5e6, "valid_loss": 5e6},
        )
    run_ends(
        guard,
        {"epoch": 1, "train_loss": 5e6, "valid_loss": 5e6},
        {"epoch": 2, "train_loss": 0.9, "valid_loss": 3000.0},
    )


def test_divergence_guard_judges_growth_from_the_first_training_batch():
    guard = DivergenceGuard()
    guard.on_train_begin(SimpleNamespace(history=History()))
    run_batches(guard, 1, "train_loss", [0.5, 0.2])
    net = net_with_records({"epoch": 1, "train_loss": 501.0})

    with pytest.raises(TrainingDivergedError, match="starting value of 0.5 at epoch 1"):
        guard.on_train_end(net)


def test_divergence_guard_takes_the_larger_of_reference_and_first_batch():
    guard = DivergenceGuard(reference_loss=1.0)
    guard.on_train_begin(SimpleNamespace(history=History()))
    run_batches(guard, 1, "train_loss", [10.0])

    # 5000 is 5000 times the reference but only 500 times the first batch's loss.
    guard.on_train_end(net_with_records({"epoch": 1, "train_loss": 5000.0}))
    with pytest.raises(TrainingDivergedError, match="starting value of 10 at"):
        guard.on_train_end(net_with_records({"epoch": 1, "train_loss": 20000.0}))


def test_divergence_guard_judges_every_training_run_from_its_own_start():
    guard = DivergenceGuard()
    guard.on_train_begin(SimpleNamespace(history=History()))
    run_batches(guard, 1, "train_loss", [0.001])

    earlier = net_with_records({"epoch": 1, "train_loss": 0.001})
    guard.on_train_begin(earlier)
    run_batches(guard, 2, "train_loss", [1.0])

    # 10 is 10000 times the first run's start, and 10 times the second's; the
    # first run's epoch is not part of the second run.
    earlier.history.new_epoch()
    earlier.history.record("epoch", 2)
    earlier.history.record("train_loss", 10.0)
    guard.on_train_end(earlier)


def test_divergence_guard_growth_is_a_parameter_and_ignores_a_zero_reference():
    with pytest.raises(TrainingDivergedError, match="ended at 11, 11 times"):
        run_ends(DivergenceGuard(reference_loss=1.0, growth=10), {"epoch": 1, "train_loss": 11.0})
    # A perfect reference (a constant column) leaves nothing to grow from.
    run_ends(DivergenceGuard(reference_loss=0.0), {"epoch": 1, "train_loss": 5.0})


def test_divergence_guard_stops_a_net_with_a_huge_learning_rate():
    net = make_net(lr=1e6, max_epochs=10, callbacks=[("guard", DivergenceGuard())])

    with pytest.raises(TrainingDivergedError, match=r"^Training diverged: .* at epoch \d+"):
        net.fit(rows_of(dense_data(RANDOM_ROWS)))


# ---------------------------------------------------------------------- ImprovementStopper


def stopper(patience=3):
    # A relative threshold, so that rounding noise in the epoch mean is no improvement.
    return ImprovementStopper(monitor="train_loss", patience=patience, threshold=1e-4)


def test_stopper_tells_its_stop_from_the_end_of_training():
    learning = make_net(max_epochs=3, callbacks=[("stopper", stopper())])
    stuck = make_net(lr=0.0, max_epochs=50, callbacks=[("stopper", stopper())])

    learning.fit(rows_of(dense_data(RANDOM_ROWS)))
    stuck.fit(rows_of(dense_data(RANDOM_ROWS)))

    assert not dict(learning.callbacks_)["stopper"].stopped_
    assert len(learning.history) == 3
    # With lr=0 the loss never improves on the first epoch's.
    assert dict(stuck.callbacks_)["stopper"].stopped_
    assert len(stuck.history) == 1 + 3


def test_stopper_resets_for_every_training_run():
    net = make_net(lr=0.0, max_epochs=50, callbacks=[("stopper", stopper())])
    net.fit(rows_of(dense_data(RANDOM_ROWS)))

    net.set_params(lr=1e-2)
    net.partial_fit(rows_of(dense_data(RANDOM_ROWS)), epochs=2)

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
    data = rows_of(dense_data(RANDOM_ROWS))
    net.fit(data)
    _, valid = net.train_split(data)
    valid_losses = net.history[:, "valid_loss"]

    with torch.no_grad():
        rows = valid.targets.batch(slice(None), "cpu")
        reconstruction = reconstruction_before_activation(net.module_(rows))
        restored_loss = ReconstructionLoss("mse")(reconstruction, rows).item()

    assert restored_loss == pytest.approx(min(valid_losses), rel=1e-4)


# ---------------------------------------------------------------------- AutoencoderNet


def test_net_learns_to_reconstruct():
    net = make_net(max_epochs=30)

    net.fit(rows_of(dense_data(RANDOM_ROWS)))

    losses = net.history[:, "train_loss"]
    assert len(losses) == 30
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize(
    ("n_rows", "batch_size", "expected_sizes"),
    [(200, 64, [64, 64, 64, 8]), (10, 256, [10])],
)
def test_net_trains_the_short_last_batch(n_rows, batch_size, expected_sizes):
    net = make_net(max_epochs=1, batch_size=batch_size)

    net.fit(rows_of(dense_data(RANDOM_ROWS[:n_rows])))

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
        net.fit(rows_of(dense_data(RANDOM_ROWS)))
        return net.history[:, "train_loss"]

    assert losses(1) == losses(1)
    assert losses(1) != losses(2)


def test_net_sparse_and_dense_training_agree():
    dense_net = make_net(max_epochs=3, batch_size=16)
    sparse_net = make_net(max_epochs=3, batch_size=16)

    dense_net.fit(rows_of(dense_data(RANDOM_ROWS)))
    sparse_net.fit(rows_of(sparse_data(RANDOM_ROWS)))

    np.testing.assert_allclose(
        sparse_net.history[:, "train_loss"], dense_net.history[:, "train_loss"], rtol=1e-5
    )


def test_net_validates_on_the_held_out_rows():
    net = make_net(max_epochs=2, train_split=RandomRowSplit(0.25, SEED))

    net.fit(rows_of(dense_data(RANDOM_ROWS)))

    record = net.history[-1]
    assert record["valid_batch_count"] == 1
    assert (
        sum(batch["valid_batch_size"] for batch in record["batches"] if "valid_batch_size" in batch)
        == 50
    )
    assert math.isfinite(record["valid_loss"])


def test_net_partial_fit_continues_the_history():
    net = make_net(max_epochs=2)
    data = rows_of(dense_data(RANDOM_ROWS))

    net.fit(data)
    net.partial_fit(data, epochs=3)

    assert net.history[:, "epoch"] == [1, 2, 3, 4, 5]


def test_net_forward_reconstructs_in_evaluation_batches():
    net = make_net(max_epochs=1)
    data = rows_of(dense_data(RANDOM_ROWS))
    net.fit(data)

    output = reconstruction_before_activation(net.forward(data))

    with torch.no_grad():
        expected = reconstruction_before_activation(net.module_(data.targets.values))
    assert len(net.get_iterator(data, training=False)) == 1
    assert output.shape == (len(RANDOM_ROWS), N_FEATURES)
    torch.testing.assert_close(output, expected)


def test_net_fit_leaves_the_global_torch_seed_alone():
    net = make_net(max_epochs=2, train_split=RandomRowSplit(0.25, SEED))
    state = torch.random.get_rng_state()

    net.fit(rows_of(dense_data(RANDOM_ROWS)))

    assert_array_equal(torch.random.get_rng_state().numpy(), state.numpy())


class RecordNoiseGenerator(Callback):
    """The generator the criterion draws from during each training batch."""

    def on_train_begin(self, net, **kwargs):
        self.generators = []

    def on_batch_begin(self, net, training=False, **kwargs):
        if training:
            self.generators.append(net.criterion_.noise_generator)


def test_net_gives_drawing_modules_a_generator_for_the_run_only():
    contractive = AutoencoderObjective(ReconstructionLoss("mse"), contractive=0.1)
    net = make_net(
        criterion=contractive, max_epochs=2, callbacks=[("record", RecordNoiseGenerator())]
    )
    state = torch.random.get_rng_state()

    net.fit(rows_of(dense_data(RANDOM_ROWS)))

    generators = dict(net.callbacks_)["record"].generators
    assert len(generators) == 2 * math.ceil(len(RANDOM_ROWS) / 32)
    # One generator for the whole run, on the net's device, gone afterwards.
    assert all(generator is generators[0] for generator in generators)
    assert isinstance(generators[0], torch.Generator)
    assert net.criterion_.noise_generator is None
    assert torch.equal(torch.random.get_rng_state(), state)


# ---------------------------------------------------------------------- build_net, train


def test_build_net_follows_the_plan():
    extra = RecordNoiseGenerator()
    plan = make_plan(
        learning_rate=3e-3,
        weight_decay=0.5,
        max_epochs=7,
        batch_size=16,
        patience=4,
        tol=1e-3,
        max_grad_norm=2.0,
        callbacks=[("record", extra)],
        seed=11,
        reference_loss=0.25,
    )

    net = build_net(make_module(), ReconstructionLoss("mse"), plan)

    assert net.initialized_
    assert (net.lr, net.max_epochs, net.batch_size, net.random_seed) == (3e-3, 7, 16, 11)
    assert net.train_split is None
    callbacks = dict(net.callbacks_)
    ours = ["gradient_clipping", "stopper", "divergence_guard", "record"]
    # After skorch's defaults (epoch timer, scoring) and in this order.
    assert [name for name in callbacks if name in ours] == ours
    assert callbacks["record"] is not extra  # a copy: the plan's instance stays untouched
    assert callbacks["divergence_guard"].reference_loss == 0.25
    assert callbacks["gradient_clipping"].gradient_clip_value == 2.0
    stopping = callbacks["stopper"]
    assert (stopping.monitor, stopping.patience, stopping.threshold) == ("train_loss", 4, 1e-3)
    assert not stopping.load_best
    # The weights decay, the biases do not.
    groups = net.optimizer_.param_groups
    assert [group["weight_decay"] for group in groups] == [0.0, 0.5]
    assert all(parameter.ndim == 1 for parameter in groups[0]["params"])
    assert all(parameter.ndim == 2 for parameter in groups[1]["params"])
    assert all(group["lr"] == 3e-3 for group in groups)


def test_build_net_with_a_validation_fraction_watches_the_held_out_rows():
    net = build_net(
        make_module(),
        ReconstructionLoss("mse"),
        make_plan(validation_fraction=0.2, split_seed=5, verbose=2),
    )

    assert isinstance(net.train_split, RandomRowSplit)
    assert (net.train_split.fraction, net.train_split.seed) == (0.2, 5)
    stopping = dict(net.callbacks_)["stopper"]
    assert stopping.monitor == "valid_loss"
    assert stopping.load_best
    assert "progress_bar" in dict(net.callbacks_)


def test_train_reports_a_complete_run():
    net = build_net(make_module(), ReconstructionLoss("mse"), make_plan(max_epochs=3))
    rows = rows_of(dense_data(RANDOM_ROWS))

    first = train(net, rows, 3)
    second = train(net, rows, 2)

    assert first == TrainingOutcome(epochs_run=3, stopped_early=False, interrupted=False)
    # Epochs are counted per call; the history goes on.
    assert second == TrainingOutcome(epochs_run=2, stopped_early=False, interrupted=False)
    assert net.history[:, "epoch"] == [1, 2, 3, 4, 5]


def test_train_reports_an_early_stop():
    plan = make_plan(learning_rate=1e-12, max_epochs=50, patience=2, tol=1e-2)
    net = build_net(make_module(), ReconstructionLoss("mse"), plan)

    outcome = train(net, rows_of(dense_data(RANDOM_ROWS)), 50)

    assert outcome == TrainingOutcome(epochs_run=1 + 2, stopped_early=True, interrupted=False)


class InterruptAt(Callback):
    """Raises KeyboardInterrupt, as Ctrl-C would, at the end of epoch ``epoch``
    or, with ``batch``, after that training batch of the epoch."""

    def __init__(self, epoch, batch=None):
        self.epoch = epoch
        self.batch = batch

    def on_batch_end(self, net, training=False, **kwargs):
        done = sum("train_loss" in entry for entry in net.history[-1]["batches"])
        if training and self.batch == done and len(net.history) == self.epoch:
            raise KeyboardInterrupt

    def on_epoch_end(self, net, **kwargs):
        if self.batch is None and len(net.history) == self.epoch:
            raise KeyboardInterrupt


@pytest.mark.parametrize("batch", [None, 2])
def test_train_reports_an_interrupt_and_keeps_the_complete_epochs(batch):
    plan = make_plan(max_epochs=10, callbacks=[("interrupt", InterruptAt(3, batch))])
    net = build_net(make_module(), ReconstructionLoss("mse"), plan)

    outcome = train(net, rows_of(dense_data(RANDOM_ROWS)), 10)

    epochs = 3 if batch is None else 2
    assert outcome == TrainingOutcome(epochs_run=epochs, stopped_early=False, interrupted=True)
    assert len(net.history) == epochs
    assert all("train_loss" in record for record in net.history)


def test_train_interrupted_in_the_first_epoch_of_a_net_keeps_nothing():
    plan = make_plan(callbacks=[("interrupt", InterruptAt(1, batch=2))])
    net = build_net(make_module(), ReconstructionLoss("mse"), plan)

    with pytest.raises(KeyboardInterrupt):
        train(net, rows_of(dense_data(RANDOM_ROWS)), 5)


def test_train_raises_on_divergence():
    net = build_net(make_module(), ReconstructionLoss("mse"), make_plan(learning_rate=1e6))

    with pytest.raises(TrainingDivergedError, match=r"at epoch \d+"):
        train(net, rows_of(dense_data(RANDOM_ROWS)), 10)


def fixed_budget_plan(**changes):
    return make_plan(**{"max_epochs": 4, "patience": 4, "fixed_budget": True, **changes})


@pytest.mark.parametrize("batch_size", [16, 200])
def test_a_fixed_budget_run_takes_the_steps_of_skorchs_loop(batch_size):
    rows = rows_of(dense_data(RANDOM_ROWS))
    nets = [
        build_net(make_module(), ReconstructionLoss("mse"), fixed_budget_plan(**settings))
        for settings in ({"fixed_budget": False}, {})
    ]

    outcomes = [train(net, rows, 4) for net in nets]
    for net in nets:
        net.batch_size = batch_size
    outcomes += [train(net, rows, 2) for net in nets]

    assert nets[1].fixed_budget
    assert not nets[0].fixed_budget
    assert outcomes[0] == outcomes[1] == TrainingOutcome(4, False, False)
    assert outcomes[2] == outcomes[3] == TrainingOutcome(2, False, False)
    # The same batches (seeded by the epoch) and steps: the same weights, bit for bit.
    for skorch_weight, fixed_weight in zip(
        nets[0].module_.parameters(), nets[1].module_.parameters(), strict=True
    ):
        assert torch.equal(skorch_weight, fixed_weight)
    # And the same per-epoch records: epoch number, loss weighted by batch rows, batch count.
    for key in ("epoch", "train_loss", "train_batch_count"):
        assert nets[1].history[:, key] == pytest.approx(nets[0].history[:, key], rel=1e-6)


def test_a_fixed_budget_run_takes_the_gradients_a_criterion_computes_by_hand(monkeypatch):
    by_hand = []
    original = AutoencoderObjective.gradients_by_hand

    def counted(self, module, inputs, targets, **options):
        step = original(self, module, inputs, targets, **options)
        by_hand.append(step is not None)
        return step

    monkeypatch.setattr(AutoencoderObjective, "gradients_by_hand", counted)
    n_members = 3
    rows = rows_of(dense_data(np.tile(RANDOM_ROWS, (1, n_members))))
    nets = [
        build_net(
            build_initialized(lambda: EnsembleAutoencoder(n_members, N_FEATURES, (8,), 2), SEED),
            AutoencoderObjective(ReconstructionLoss("mse")),
            fixed_budget_plan(**settings),
        )
        for settings in ({"fixed_budget": False}, {})
    ]
    # The reference run differentiates with autograd (skorch's loop would ask too).
    nets[0].criterion_.gradients_by_hand = lambda *args, **options: None

    for net in nets:
        train(net, rows, 4)

    # The fixed-budget run asks at every step, and is answered.
    n_steps = 4 * steps_per_epoch(len(RANDOM_ROWS), 32)
    assert by_hand == [True] * n_steps
    # The same steps as autograd's, to rounding, though its Adam updated the
    # parameters laid out flat (flat_adam): after the run each parameter and
    # gradient owns its storage again, and the optimiser holds the state of
    # each parameter as an optimiser that updated them one by one would.
    states = [net.optimizer_.state for net in nets]
    for autograd_weight, hand_weight in zip(
        nets[0].module_.parameters(), nets[1].module_.parameters(), strict=True
    ):
        torch.testing.assert_close(hand_weight, autograd_weight, rtol=1e-4, atol=1e-5)
        for tensor in (hand_weight, hand_weight.grad):
            assert tensor.untyped_storage().nbytes() == tensor.numel() * tensor.element_size()
        assert states[1][hand_weight]["step"].item() == n_steps
        for key in ("exp_avg", "exp_avg_sq"):
            torch.testing.assert_close(
                states[1][hand_weight][key], states[0][autograd_weight][key], rtol=1e-3, atol=1e-6
            )
    assert nets[1].history[:, "train_loss"] == pytest.approx(
        nets[0].history[:, "train_loss"], rel=1e-5
    )


def ensemble_net(plan, n_members=3):
    module = build_initialized(lambda: EnsembleAutoencoder(n_members, N_FEATURES, (8,), 2), SEED)
    return build_net(module, AutoencoderObjective(ReconstructionLoss("mse")), plan)


@pytest.mark.parametrize(("weight_decay", "n_flat"), [(0.0, 1), (1e-3, 2)])
def test_flat_adam_lays_the_parameters_of_the_same_settings_out_in_one_tensor(weight_decay, n_flat):
    # Weight decay spares the biases (a group of their own): then two tensors.
    net = ensemble_net(fixed_budget_plan(weight_decay=weight_decay))
    optimizer = net.optimizer_
    before = {parameter: parameter.detach().clone() for parameter in net.module_.parameters()}

    with flat_adam(net):
        assert isinstance(net.optimizer_, FlatAdam)
        flats = [group["params"][0] for group in net.optimizer_.param_groups]
        assert len(flats) == n_flat
        assert sum(flat.numel() for flat in flats) == sum(p.numel() for p in before)
        storages = {flat.untyped_storage().data_ptr() for flat in flats}
        gradient_storages = {flat.grad.untyped_storage().data_ptr() for flat in flats}
        for parameter in before:
            assert parameter.untyped_storage().data_ptr() in storages
            assert parameter.grad.untyped_storage().data_ptr() in gradient_storages
        # Zeroing keeps the gradients in the flat tensors.
        net.optimizer_.zero_grad(set_to_none=True)
        for flat in flats:
            flat.grad.fill_(1.0)
        net.optimizer_.step()

    assert net.optimizer_ is optimizer
    for group in optimizer.param_groups:
        for parameter in group["params"]:
            start = before[parameter]
            # Adam's first step is the rate times the gradient's sign (1 + decay * weight > 0).
            torch.testing.assert_close(parameter.detach(), start - 1e-2)
            assert parameter.untyped_storage().nbytes() == parameter.numel() * 4
            assert optimizer.state[parameter]["exp_avg"].shape == parameter.shape


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"weight_decay": 1e-3, "learning_rate_schedule": "cosine"},
        {"validation_fraction": 0.2, "patience": 2, "max_grad_norm": 0.5},
    ],
)
def test_training_on_flat_parameters_is_training_them_one_by_one(settings):
    rows = rows_of(dense_data(RANDOM_ROWS))
    plan = make_plan(**settings)
    nets = [build_net(make_module(), ReconstructionLoss("mse"), plan) for _ in range(2)]
    nets[1].flattens_optimizer = False

    # Twice: the second run starts from the state the first left (flattened again).
    outcomes = [[train(net, rows, 4) for net in nets] for _ in range(2)]

    assert outcomes[0][0] == outcomes[0][1]
    assert outcomes[1][0] == outcomes[1][1]
    states = [net.optimizer_.state for net in nets]
    for flat_weight, weight in zip(
        nets[0].module_.parameters(), nets[1].module_.parameters(), strict=True
    ):
        torch.testing.assert_close(flat_weight, weight, rtol=1e-4, atol=1e-6)
        assert torch.equal(states[0][flat_weight]["step"], states[1][weight]["step"])
        for key in ("exp_avg", "exp_avg_sq"):
            torch.testing.assert_close(
                states[0][flat_weight][key], states[1][weight][key], rtol=1e-3, atol=1e-7
            )
    for flat_group, group in zip(
        nets[0].optimizer_.param_groups, nets[1].optimizer_.param_groups, strict=True
    ):
        assert flat_group["lr"] == pytest.approx(group["lr"])
        assert flat_group["weight_decay"] == group["weight_decay"]
    assert nets[0].history[:, "train_loss"] == pytest.approx(
        nets[1].history[:, "train_loss"], rel=1e-4
    )


def adam_pair(**settings):
    """An Adam and a FlatAdam over equal copies of the same parameters, with gradients."""
    generator = torch.Generator().manual_seed(SEED)
    values = [torch.randn(shape, generator=generator) for shape in ((7, 3), (3,))]
    pairs = []
    for optimizer_class in (torch.optim.Adam, FlatAdam):
        parameters = [nn.Parameter(value.clone()) for value in values]
        groups = [{"params": [parameters[0]], "weight_decay": 1e-2}, {"params": [parameters[1]]}]
        pairs.append((parameters, optimizer_class(groups, lr=1e-2, fused=True, **settings)))
    return pairs


@pytest.mark.parametrize("settings", [{}, {"decoupled_weight_decay": True}])
def test_flat_adam_steps_as_adam_bit_for_bit(settings):
    (parameters, adam), (flat_parameters, flat) = adam_pair(**settings)
    adam_steps = []
    adam_step = engine_net._ADAM_STEP

    for step in range(6):
        generator = torch.Generator().manual_seed(step)
        for pair in zip(parameters, flat_parameters, strict=True):
            gradient = torch.randn(pair[0].shape, generator=generator)
            for parameter in pair:
                parameter.grad = gradient.clone()
        if step == 3:
            # A schedule's new rate is read at the next step.
            for optimizer in (adam, flat):
                optimizer.param_groups[1]["lr"] = 3e-3
        adam.step()
        with mock.patch.object(
            engine_net,
            "_ADAM_STEP",
            lambda *args, step=step, **options: (
                adam_steps.append(step) or adam_step(*args, **options)
            ),
        ):
            flat.step()

    for parameter, flat_parameter in zip(parameters, flat_parameters, strict=True):
        assert torch.equal(parameter, flat_parameter)
        for key in ("step", "exp_avg", "exp_avg_sq"):
            assert torch.equal(adam.state[parameter][key], flat.state[flat_parameter][key])
    # The first step creates the state through Adam's own step; the others call the kernel.
    assert adam_steps == [0]


def test_flat_adam_runs_step_hooks_and_closures_as_adam():
    (_, _), (flat_parameters, flat) = adam_pair()
    for parameter in flat_parameters:
        parameter.grad = torch.ones_like(parameter)
    flat.step()
    calls = []
    handle = flat.register_step_post_hook(lambda optimizer, args, kwargs: calls.append("hook"))

    flat.step()
    handle.remove()
    loss = flat.step(closure=lambda: calls.append("closure") or torch.tensor(2.0))

    assert calls == ["hook", "closure"]
    assert loss.item() == 2.0
    assert flat.state[flat_parameters[0]]["step"].item() == 3


def test_flat_adam_leaves_a_net_that_does_not_flatten_as_it_is():
    net = ensemble_net(fixed_budget_plan())
    net.flattens_optimizer = False
    optimizer = net.optimizer_

    with flat_adam(net):
        assert net.optimizer_ is optimizer


def test_a_fixed_budget_run_raises_on_divergence():
    net = build_net(make_module(), ReconstructionLoss("mse"), fixed_budget_plan(learning_rate=1e6))

    with pytest.raises(TrainingDivergedError, match=r"^Training diverged: .* at epoch \d+"):
        train(net, rows_of(dense_data(RANDOM_ROWS)), 10)


@pytest.mark.parametrize(
    "watcher",
    [
        {"validation_fraction": 0.2},
        {"patience": 2},
        {"learning_rate_schedule": "cosine"},
        {"max_grad_norm": 1.0},
        {"average_epochs": 3.0},
        {"report_after": 10.0},
        {"verbose": 1},
        {"callbacks": [("interrupt", InterruptAt(3))]},
    ],
)
def test_a_fixed_budget_plan_refuses_anything_that_watches_the_run(watcher):
    with pytest.raises(ValueError, match="fixed-budget plan trains with nothing watching"):
        fixed_budget_plan(**watcher)


# ---------------------------------------------------------------------- configure_net


class Marker(Callback):
    """An extra callback that carries a value."""

    def __init__(self, value):
        self.value = value


def weights(net):
    return {name: value.clone() for name, value in net.module_.state_dict().items()}


def assert_same_weights(before, after):
    assert before.keys() == after.keys()
    for name in before:
        assert torch.equal(before[name], after[name]), name


def test_configure_net_applies_the_new_plan_and_keeps_weights_and_history():
    plan = make_plan(weight_decay=0.5, patience=5, callbacks=[("marker", Marker(1))])
    net = build_net(make_module(), ReconstructionLoss("mse"), plan)
    train(net, rows_of(dense_data(RANDOM_ROWS)), 2)
    before = weights(net)

    changed = dataclasses.replace(
        plan,
        learning_rate=1e-3,
        weight_decay=0.125,
        max_epochs=9,
        batch_size=8,
        patience=2,
        tol=0.5,
        max_grad_norm=3.0,
        reference_loss=4.0,
    )
    configure_net(net, changed)

    assert (net.lr, net.max_epochs, net.batch_size) == (1e-3, 9, 8)
    groups = net.optimizer_.param_groups
    assert all(group["lr"] == 1e-3 for group in groups)
    # The weights' group takes the new decay; the biases' stays undecayed.
    assert [group["weight_decay"] for group in groups] == [0.0, 0.125]
    callbacks = dict(net.callbacks_)
    assert callbacks["stopper"].patience == 2
    assert callbacks["stopper"].threshold == 0.5
    assert callbacks["gradient_clipping"].gradient_clip_value == 3.0
    assert callbacks["divergence_guard"].reference_loss == 4.0
    assert callbacks["marker"].value == 1
    assert_same_weights(before, weights(net))
    assert len(net.history) == 2

    # The new settings are what the next run trains with.
    train(net, rows_of(dense_data(RANDOM_ROWS[:40])), 1)
    assert [b["train_batch_size"] for b in net.history[-1]["batches"]] == [8] * 5


def test_configure_net_applies_the_new_stopping_rule_through_set_params():
    net = build_net(make_module(), ReconstructionLoss("mse"), make_plan(patience=5))

    configure_net(net, make_plan(patience=2))

    assert net.get_params()["callbacks__stopper__patience"] == 2
    assert dict(net.callbacks_)["stopper"].patience == 2
    configure_net(net, make_plan(patience=2, validation_fraction=0.3, split_seed=4))
    stopping = dict(net.callbacks_)["stopper"]
    assert (stopping.monitor, stopping.load_best) == ("valid_loss", True)
    assert isinstance(net.train_split, RandomRowSplit)
    assert (net.train_split.fraction, net.train_split.seed) == (0.3, 4)


def test_configure_net_replaces_changed_extra_callbacks():
    net = build_net(
        make_module(), ReconstructionLoss("mse"), make_plan(callbacks=[("marker", Marker(1))])
    )
    train(net, rows_of(dense_data(RANDOM_ROWS)), 1)
    before = weights(net)

    configure_net(net, make_plan(patience=3, callbacks=[("marker", Marker(2))]))

    callbacks = dict(net.callbacks_)
    assert callbacks["marker"].value == 2
    # The engine's own callbacks come back with the new plan's settings.
    assert callbacks["stopper"].patience == 3
    assert {"divergence_guard", "gradient_clipping"} <= set(callbacks)
    assert_same_weights(before, weights(net))

    configure_net(net, make_plan(patience=3))
    assert "marker" not in dict(net.callbacks_)
    configure_net(net, make_plan(patience=3, verbose=2))
    assert "progress_bar" in dict(net.callbacks_)


def test_configure_net_with_a_new_criterion_restarts_the_optimiser_with_the_new_plan():
    plan = make_plan(weight_decay=0.5)
    net = build_net(make_module(), ReconstructionLoss("mse"), plan)
    train(net, rows_of(dense_data(RANDOM_ROWS)), 2)
    before = weights(net)
    new_criterion = ReconstructionLoss("l1")

    configure_net(
        net, dataclasses.replace(plan, learning_rate=1e-4, weight_decay=0.25), new_criterion
    )

    assert isinstance(net.criterion_, ReconstructionLoss)
    assert net.criterion_.loss == "l1"
    groups = net.optimizer_.param_groups
    assert all(group["lr"] == 1e-4 for group in groups)
    assert [group["weight_decay"] for group in groups] == [0.0, 0.25]
    # A fresh optimiser: no Adam moments carried over from the old objective.
    assert not net.optimizer_.state
    assert_same_weights(before, weights(net))


# ---------------------------------------------------------------------- rates by fan-in


def test_rate_factors_scale_the_weights_with_more_inputs_than_the_reference():
    module = MLPAutoencoder(784, 8, (128, 64))
    # The input layer (784 inputs per unit) alone exceeds 128 inputs.
    assert rate_factors(module, 128) == {"encoder.0.weight": pytest.approx(128 / 784)}
    assert rate_factors(module, 64) == {
        "encoder.0.weight": pytest.approx(64 / 784),
        "encoder.2.weight": pytest.approx(64 / 128),
        "decoder.4.weight": pytest.approx(64 / 128),
    }
    assert rate_factors(module, None) == {}


def test_rate_factors_count_a_convolutions_inputs_over_its_kernel():
    encoder, decoder = conv_encoder_decoder((28, 28), 4, (8, 16), ())
    factors = rate_factors(Autoencoder(encoder, decoder), 64)
    conv_weights = [
        (name, p) for name, p in encoder.named_parameters() if p.ndim == 4 and p.shape[1] == 8
    ]
    # 8 channels in, 3 x 3 kernels: 72 inputs per unit.
    name, _ = conv_weights[0]
    assert factors[f"encoder.{name}"] == pytest.approx(64 / 72)


def test_build_net_trains_scaled_weights_at_their_share_of_the_rate():
    module = MLPAutoencoder(300, 2, (16,))
    net = build_net(module, ReconstructionLoss(), TrainingPlan(0.01, rate_reference_fan_in=100))
    names = {id(p): name for name, p in net.module_.named_parameters()}
    rates = {
        names[id(p)]: group["lr"] for group in net.optimizer_.param_groups for p in group["params"]
    }
    assert rates.pop("encoder.0.weight") == pytest.approx(0.01 * 100 / 300)
    assert set(rates.values()) == {0.01}


# ---------------------------------------------------------------------- weight average


class RecordWeights(Callback):
    """The module's weights before and after every training step (after the engine's callbacks)."""

    def on_train_begin(self, net, **kwargs):
        self.before, self.after = [], []

    def on_batch_begin(self, net, training=False, **kwargs):
        if training:
            self.before.append([p.detach().clone() for p in net.module_.parameters()])

    def on_batch_end(self, net, training=False, **kwargs):
        if training:
            self.after.append([p.detach().clone() for p in net.module_.parameters()])

    def on_epoch_end(self, net, **kwargs):
        averager = dict(net.callbacks_).get("weight_average")
        if averager is not None:
            self.average = [a.clone() for a in averager.average_]


def averaged_net(**changes):
    plan = make_plan(validation_fraction=0.2, batch_size=16, callbacks=[("rec", RecordWeights())])
    return build_net(make_module(), ReconstructionLoss("mse"), dataclasses.replace(plan, **changes))


def test_the_weight_average_is_an_exponential_average_of_every_step():
    net = averaged_net(average_epochs=2.0)
    start = [p.detach().clone() for p in net.module_.parameters()]
    train(net, rows_of(dense_data(RANDOM_ROWS)), 3)

    # 160 training rows in batches of 16: 10 steps an epoch, a time constant of
    # 20 steps. At a constant rate, the plain moving average from the start.
    steps = dict(net.callbacks_)["rec"].after
    assert len(steps) == 30
    expected = start
    for step in steps:
        expected = [e + (w - e) / 20 for e, w in zip(expected, step)]
    for got, want in zip(dict(net.callbacks_)["rec"].average, expected):
        torch.testing.assert_close(got, want)
    # A fitted net keeps no copies of its weights in the callback.
    assert dict(net.callbacks_)["weight_average"].average_ is None


class RecordRates(Callback):
    """The rate of every training step (after the engine's schedule set it)."""

    def on_train_begin(self, net, **kwargs):
        self.rates = []

    def on_batch_end(self, net, training=False, **kwargs):
        if training:
            self.rates.append(net.optimizer_.param_groups[0]["lr"])


def test_the_weight_average_counts_each_step_by_the_inverse_of_its_rate():
    net = averaged_net(
        average_epochs=2.0,
        learning_rate_schedule="cosine",
        max_epochs=3,
        callbacks=[("rec", RecordWeights()), ("rates", RecordRates())],
    )
    start = [p.detach().clone() for p in net.module_.parameters()]
    train(net, rows_of(dense_data(RANDOM_ROWS)), 3)

    steps = dict(net.callbacks_)["rec"].after
    rates = dict(net.callbacks_)["rates"].rates
    assert len(steps) == len(rates) == 30
    # An exponentially decaying sum, each step weighted by its precision 1 / rate,
    # and the start by a time constant's steps at the first rate.
    decay, count = 1 - 1 / 20, len(rates)
    weights = np.array(
        [20 / rates[0] * decay**count]
        + [decay ** (count - 1 - t) / rate for t, rate in enumerate(rates)]
    )
    weights /= weights.sum()
    points = [start, *steps]
    expected = [sum(w * point[i] for w, point in zip(weights, points)) for i in range(len(start))]
    for got, want in zip(dict(net.callbacks_)["rec"].average, expected):
        torch.testing.assert_close(got, want)
    # Annealed to its end, the schedule's last steps dominate the average: the
    # last step alone weighs more than the start and the first twenty steps.
    assert weights[-1] > weights[:21].sum()


def test_the_average_is_validated_and_kept_while_training_goes_on_from_the_last_step():
    net = averaged_net(average_epochs=1.0, patience=50)
    train(net, rows_of(dense_data(RANDOM_ROWS)), 2)
    recorded = dict(net.callbacks_)["rec"]
    average = recorded.average

    # The second epoch's first step starts from the first epoch's last step, not
    # from the average that was validated in between.
    for before, after in zip(recorded.before[10], recorded.after[9]):
        assert torch.equal(before, after)
    # The best epoch kept is an average: the second epoch's, here, in the module.
    assert net.history[-1, "valid_loss_best"]
    for parameter, value in zip(net.module_.parameters(), average):
        assert torch.equal(parameter, value)
    assert not all(torch.equal(a, w) for a, w in zip(average, recorded.after[-1]))
    # Its recorded validation loss is the average's.
    _, validation = RandomRowSplit(0.2, 0).indices(len(RANDOM_ROWS))
    held_out = torch.from_numpy(RANDOM_ROWS[validation])
    with torch.no_grad():
        outputs = reconstruction_before_activation(net.module_(held_out))
    loss = torch.nn.functional.mse_loss(outputs, held_out).item()
    assert net.history[-1, "valid_loss"] == pytest.approx(loss, rel=1e-5)


def test_no_weight_average_without_validation_rows():
    net = build_net(make_module(), ReconstructionLoss("mse"), make_plan(average_epochs=3.0))
    assert "weight_average" not in dict(net.callbacks_)
    assert "weight_average" in dict(averaged_net(average_epochs=3.0).callbacks_)
    assert "weight_average" not in dict(averaged_net().callbacks_)


def subnormal_entries(net):
    """Entries of a net's weights and optimiser state in float32's subnormal range."""
    tiny = torch.finfo(torch.float32).tiny
    tensors = [
        *net.module_.parameters(),
        *(value for state in net.optimizer_.state.values() for value in state.values()),
    ]
    return sum(int(((t.abs() > 0) & (t.abs() < tiny)).sum()) for t in tensors)


def test_flush_tiny_zeroes_the_entries_below_the_threshold_only():
    values = torch.tensor([1e-39, -1e-33, TINY_VALUE / 2, TINY_VALUE * 2, -1e-20, 0.5, 0.0])

    flush_tiny_([values])

    expected = torch.tensor([0.0, 0.0, 0.0, TINY_VALUE * 2, -1e-20, 0.5, 0.0])
    assert torch.equal(values, expected)


def test_weights_only_weight_decay_moves_end_at_zero_not_subnormal():
    # Two input columns are always zero: the first layer's weights reading them
    # get no gradient from the data, and Adam's coupled weight decay shrinks
    # them geometrically (v remembers their first, larger, gradients) into the
    # subnormal range, where x86 CPUs compute many-fold slower.
    rows = np.hstack([RANDOM_ROWS[:64, :3], np.zeros((64, 2), np.float32)])
    plan = make_plan(
        learning_rate=0.05, weight_decay=1e-3, batch_size=4, max_epochs=100, patience=10**6, tol=0
    )

    def trained(flush):
        net = build_net(make_module(), ReconstructionLoss("mse"), plan)
        if not flush:
            net.callbacks_ = [(n, c) for n, c in net.callbacks_ if n != "tiny_value_flush"]
        train(net, rows_of(dense_data(rows)), plan.max_epochs)
        return net

    # 1600 steps: without the flush, the decayed weights and their moments are subnormal.
    assert subnormal_entries(trained(flush=False)) > 0
    net = trained(flush=True)
    assert subnormal_entries(net) == 0
    # Those weights are zero (as are a dead unit's); the others still carry the data.
    assert torch.all(net.module_.encoder[0].weight[:, 3:] == 0)
    assert torch.any(net.module_.encoder[0].weight[:, :3].abs() > 0.1)


def test_tiny_value_flush_waits_its_interval_counted_across_runs():
    # A zero rate leaves a weight where it is put, until it is flushed.
    plan = make_plan(learning_rate=0.0, batch_size=20)
    net = build_net(make_module(), ReconstructionLoss("mse"), plan)
    flush = dict(net.callbacks_)["tiny_value_flush"]
    parameter = next(net.module_.parameters())

    # 200 rows in batches of 20: 10 steps an epoch; runs of 6 epochs leave
    # 60 steps each, so the interval of 128 steps passes in the third run.
    for run in range(3):
        with torch.no_grad():
            parameter[0, 0] = 1e-39
        train(net, rows_of(dense_data(RANDOM_ROWS)), 6)
        flushed = parameter[0, 0].item() == 0.0
        assert flushed == (run == 2), run
    assert flush.interval_steps == FLUSH_INTERVAL_STEPS == 128


def test_steps_per_epoch_counts_the_last_shorter_batch_and_at_least_one():
    assert steps_per_epoch(160, 16) == 10
    assert steps_per_epoch(161, 16) == 11
    assert steps_per_epoch(5, 16) == 1
    assert steps_per_epoch(0, 16) == 1
