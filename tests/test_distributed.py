"""Data-parallel training (DDP) on CPU: several processes train like one.

With ``batch_size`` rows per step split between the processes, a number of rows
that is a multiple of ``batch_size`` and a loss that is a mean over rows, DDP's
averaged gradient is the single-process gradient of the whole batch, so the
strongest statement holds: the fits agree up to float rounding. Corruption
(denoising) is drawn for the whole batch, so that holds for
``DenoisingAutoencoder`` too; a variational code's noise is drawn per process,
so ``VariationalAutoencoder`` agrees statistically.

Every multi-process test is bounded: spawned processes are terminated by a
deadline, ``torchrun`` launches are killed after a timeout.
"""

import contextlib
import multiprocessing
import os
import pickle
import signal
import socket
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest
import torch.distributed as dist
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.utils._param_validation import InvalidParameterError
from skorch.callbacks import Callback

from sklae import (
    AutoencoderOutlierDetector,
    AutoencoderTransformer,
    DenoisingAutoencoder,
    TrainingDivergedError,
    VariationalAutoencoder,
)
from sklae._engine.distributed import DistributedAutoencoderNet
from sklae.distributed import fit_distributed, fit_from_environment

pytestmark = [
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    pytest.mark.skipif(
        not dist.is_available() or not dist.is_gloo_available(),
        reason="torch.distributed with the gloo backend is not available",
    ),
]

DIGITS = load_digits().data / 16.0
# 512 rows: 8 steps of 64 rows, 4 per process with two processes.
ROWS = DIGITS[:512]
SMALL = dict(hidden_layer_sizes=(16,), batch_size=64, early_stopping=False, random_state=0)
# Seconds a multi-process fit may take before the test ends it.
DEADLINE = 180


@contextlib.contextmanager
def deadline(seconds=DEADLINE):
    """Terminate the processes this test started if they outlive ``seconds``."""

    def end_children():
        for child in multiprocessing.active_children():
            child.terminate()

    timer = threading.Timer(seconds, end_children)
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


class CountSteps(Callback):
    """Records the training steps of each epoch in the history."""

    def on_epoch_begin(self, net, **kwargs):
        self.steps_ = 0

    def on_batch_end(self, net, training=False, **kwargs):
        self.steps_ += bool(training)

    def on_epoch_end(self, net, **kwargs):
        net.history.record("counted_steps", self.steps_)


def close_curves(first, second, rtol):
    return len(first) == len(second) and np.allclose(first, second, rtol=rtol)


# ---------------------------------------------------------------- checks, no processes


@pytest.mark.parametrize("world_size", [0, -1, 1.7, 2.0, True, np.True_, "2", None])
def test_world_size_must_be_a_positive_integer(world_size):
    with pytest.raises(InvalidParameterError, match="world_size must be a positive integer"):
        fit_distributed(AutoencoderTransformer(), ROWS, world_size=world_size)


def test_outlier_detector_and_other_estimators_get_a_type_error():
    for fit in (fit_distributed, fit_from_environment):
        with pytest.raises(TypeError, match="AutoencoderOutlierDetector trains an ensemble"):
            fit(AutoencoderOutlierDetector(), ROWS)
        with pytest.raises(TypeError, match="got PCA"):
            fit(PCA(), ROWS)


def test_bad_parameters_fail_before_any_process_starts():
    # Children alive before (joblib keeps its process workers from earlier
    # tests a while) are not this call's.
    before = set(multiprocessing.active_children())
    with pytest.raises(InvalidParameterError, match="code_size"):
        fit_distributed(AutoencoderTransformer(code_size=0), ROWS)
    assert set(multiprocessing.active_children()) <= before


def test_fit_from_environment_without_torchrun_is_a_plain_fit(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    estimator = AutoencoderTransformer(code_size=3, max_iter=3, **SMALL)
    fitted = fit_from_environment(estimator, ROWS)
    expected = AutoencoderTransformer(code_size=3, max_iter=3, **SMALL).fit(ROWS)
    assert not hasattr(estimator, "net_")
    assert fitted.loss_curve_ == expected.loss_curve_
    assert_array_equal(fitted.transform(ROWS), expected.transform(ROWS))


def test_fit_from_environment_trains_in_the_callers_process_group(tmp_path):
    # One process, one member: the DDP path itself, in this process.
    dist.init_process_group(
        "gloo", init_method=f"file://{tmp_path / 'rendezvous'}", rank=0, world_size=1
    )
    try:
        settings = dict(code_size=3, max_iter=3, callbacks=[CountSteps()], **SMALL)
        fitted = fit_from_environment(AutoencoderTransformer(**settings), ROWS)
        # random_state=None needs a seed agreed on by the processes.
        unseeded = fit_from_environment(
            AutoencoderTransformer(**{**settings, "random_state": None}), ROWS
        )
    finally:
        dist.destroy_process_group()
    expected = AutoencoderTransformer(**settings).fit(ROWS)
    assert type(fitted.net_) is DistributedAutoencoderNet
    assert "_net_class" not in vars(fitted)
    assert_allclose(fitted.loss_curve_, expected.loss_curve_, rtol=1e-6)
    assert fitted.net_.history[:, "counted_steps"] == [8, 8, 8]
    assert unseeded.random_state is None
    assert unseeded.n_iter_ == 3


# ---------------------------------------------------------------- two spawned processes


@pytest.fixture(scope="module")
def transformer_fit(tmp_path_factory):
    """Two processes fit from a memmap, with clipping and a callback; one process too."""
    path = tmp_path_factory.mktemp("rows") / "rows.npy"
    np.save(path, ROWS)
    # Adam divides its steps by the gradients' running size, so clipping every
    # step to one norm shows only where that norm nears Adam's epsilon (1e-8):
    # there the steps shrink, visibly.
    settings = dict(code_size=4, max_iter=6, max_grad_norm=1e-6, callbacks=[CountSteps()], **SMALL)
    estimator = AutoencoderTransformer(**settings)
    with deadline():
        fitted = fit_distributed(estimator, np.load(path, mmap_mode="r"), world_size=2)
    single = AutoencoderTransformer(**settings).fit(ROWS)
    return estimator, fitted, single


@pytest.mark.slow
def test_two_processes_follow_the_single_process_fit(transformer_fit):
    estimator, fitted, single = transformer_fit
    assert not hasattr(estimator, "net_")
    assert fitted.n_iter_ == single.n_iter_ == 6
    assert_allclose(fitted.loss_curve_, single.loss_curve_, rtol=1e-5)
    assert_allclose(fitted.transform(ROWS), single.transform(ROWS), atol=1e-5)
    # Each of the 8 global steps of an epoch was one step in each process.
    assert fitted.net_.history[:, "counted_steps"] == [8] * 6


@pytest.mark.slow
def test_max_grad_norm_applies_under_ddp(transformer_fit):
    _, fitted, single = transformer_fit
    unclipped = AutoencoderTransformer(
        code_size=4, max_iter=6, callbacks=[CountSteps()], **SMALL
    ).fit(ROWS)
    # Clipped like the clipped single-process fit, unlike the unclipped one.
    assert close_curves(fitted.loss_curve_, single.loss_curve_, rtol=1e-5)
    assert not close_curves(fitted.loss_curve_, unclipped.loss_curve_, rtol=1e-3)


@pytest.mark.slow
def test_the_fitted_estimator_is_an_ordinary_one(transformer_fit):
    _, fitted, _ = transformer_fit
    assert fitted.random_state == 0
    assert "_net_class" not in vars(fitted)
    restored = pickle.loads(pickle.dumps(fitted))
    assert_array_equal(restored.transform(ROWS), fitted.transform(ROWS))
    # Outside a process group the net trains on in this one process.
    restored.partial_fit(ROWS)
    assert restored.n_iter_ == 7
    assert np.isfinite(restored.score(ROWS))


@pytest.fixture(scope="module")
def denoising_fit():
    """Noise and early stopping: 640 rows hold out 64 and train on 9 steps of 64."""
    rows = DIGITS[:640]
    settings = {
        **SMALL,
        "code_size": 4,
        "noise_level": 0.3,
        "max_iter": 40,
        "early_stopping": True,
        "n_iter_no_change": 2,
        "tol": 0.05,
    }
    with deadline():
        fitted = fit_distributed(DenoisingAutoencoder(**settings), rows, world_size=2)
    single = DenoisingAutoencoder(**settings).fit(rows)
    noiseless = DenoisingAutoencoder(**{**settings, "noise_level": 0.0}).fit(rows)
    return rows, fitted, single, noiseless


@pytest.mark.slow
def test_denoising_noise_is_drawn_as_in_one_process(denoising_fit):
    rows, fitted, single, noiseless = denoising_fit
    assert close_curves(fitted.loss_curve_, single.loss_curve_, rtol=1e-4)
    assert not close_curves(fitted.loss_curve_, noiseless.loss_curve_, rtol=1e-2)
    assert_allclose(fitted.predict(rows), single.predict(rows), atol=1e-4)


@pytest.mark.slow
def test_early_stopping_stops_at_the_single_process_epoch(denoising_fit):
    _, fitted, single, _ = denoising_fit
    assert fitted.n_iter_ == single.n_iter_ < 40
    assert_allclose(fitted.validation_scores_, single.validation_scores_, rtol=1e-4)
    assert fitted.best_validation_score_ == pytest.approx(single.best_validation_score_, rel=1e-4)


@pytest.mark.slow
def test_divergence_raises_training_diverged_error_from_the_processes():
    estimator = AutoencoderTransformer(learning_rate_init=1e9, max_iter=5, random_state=0)
    with deadline(), pytest.raises(TrainingDivergedError, match="Training diverged"):
        fit_distributed(estimator, ROWS * 1e3, world_size=2)


# ---------------------------------------------------------------- two machines: torchrun

WORKER = textwrap.dedent(
    """
    import faulthandler
    import os
    import pickle
    import sys

    # torchrun starts workers in sessions of their own: a hung one ends itself,
    # before the test's timeout, saying where it hung.
    faulthandler.dump_traceback_later(DEADLINE_SECONDS, exit=True)

    from sklae.distributed import fit_from_environment

    with open(sys.argv[1], "rb") as file:
        job = pickle.load(file)
    fitted = {
        name: fit_from_environment(estimator, job["X"])
        for name, estimator in job["estimators"].items()
    }
    if os.environ["RANK"] == "0":
        with open(sys.argv[2], "wb") as file:
            pickle.dump({"world_size": int(os.environ["WORLD_SIZE"]), "fitted": fitted}, file)
    """
).replace("DEADLINE_SECONDS", str(DEADLINE - 30))

TORCHRUN_ESTIMATORS = {
    "AutoencoderTransformer": AutoencoderTransformer(code_size=4, max_iter=5, **SMALL),
    "VariationalAutoencoder": VariationalAutoencoder(code_size=2, max_iter=5, **SMALL),
    "DenoisingAutoencoder": DenoisingAutoencoder(code_size=4, max_iter=5, noise_level=0.3, **SMALL),
}


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def two_node_fits(tmp_path_factory):
    """Two torchrun launches, node ranks 0 and 1, run at once as two machines would."""
    folder = tmp_path_factory.mktemp("torchrun")
    (folder / "worker.py").write_text(WORKER)
    with open(folder / "job.pkl", "wb") as file:
        pickle.dump({"estimators": TORCHRUN_ESTIMATORS, "X": ROWS}, file)
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    launches = []
    for node_rank in (0, 1):
        command = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nnodes=2",
            f"--node-rank={node_rank}",
            "--nproc-per-node=1",
            "--master-addr=127.0.0.1",
            f"--master-port={port}",
            str(folder / "worker.py"),
            str(folder / "job.pkl"),
            str(folder / "result.pkl"),
        ]
        launches.append(
            subprocess.Popen(
                command,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,
            )
        )
    outputs = []
    for launch in launches:
        try:
            outputs.append(launch.communicate(timeout=DEADLINE)[0])
        except subprocess.TimeoutExpired:
            for started in launches:
                # torchrun stops its workers when it is terminated.
                started.terminate()
            for started in launches:
                try:
                    started.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(started.pid, signal.SIGKILL)
            pytest.fail(f"torchrun did not finish within {DEADLINE} s")
    for node_rank, (launch, output) in enumerate(zip(launches, outputs)):
        assert launch.returncode == 0, f"node {node_rank} failed:\n{output[-4000:]}"
    with open(folder / "result.pkl", "rb") as file:
        return pickle.load(file)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(TORCHRUN_ESTIMATORS))
def test_two_nodes_under_torchrun_match_one_process(two_node_fits, name):
    assert two_node_fits["world_size"] == 2
    fitted = two_node_fits["fitted"][name]
    single = TORCHRUN_ESTIMATORS[name].__sklearn_clone__().fit(ROWS)
    assert type(fitted.net_) is DistributedAutoencoderNet
    assert fitted.n_iter_ == single.n_iter_ == 5
    assert fitted.loss_curve_[-1] < fitted.loss_curve_[0]
    if name == "VariationalAutoencoder":
        # Each process draws its own codes' noise: the same fit in distribution.
        assert_allclose(fitted.loss_curve_, single.loss_curve_, rtol=0.02)
        assert fitted.score(ROWS) == pytest.approx(single.score(ROWS), rel=0.02)
    else:
        assert_allclose(fitted.loss_curve_, single.loss_curve_, rtol=1e-5)
        assert_allclose(fitted.transform(ROWS), single.transform(ROWS), atol=1e-5)
