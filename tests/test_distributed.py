"""DDP training on CPU: two processes on loopback (gloo) match one process."""

import pickle

import pytest
import torch.distributed as dist
from numpy.testing import assert_array_equal
from sklearn.datasets import load_digits

from sklae import AutoencoderTransformer
from sklae.distributed import fit_distributed

pytestmark = [
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    pytest.mark.skipif(
        not dist.is_available() or not dist.is_gloo_available(),
        reason="torch.distributed with the gloo backend is not available",
    ),
]

DIGITS = load_digits().data / 16.0


@pytest.mark.slow
def test_two_processes_reach_the_single_process_reconstruction_error():
    settings = dict(
        code_size=8, hidden_layer_sizes=(32,), max_iter=25, batch_size=64, random_state=0
    )
    single = AutoencoderTransformer(**settings).fit(DIGITS)
    distributed = fit_distributed(AutoencoderTransformer(**settings), DIGITS, world_size=2)

    assert distributed.n_iter_ == 25
    assert len(distributed.loss_curve_) == 25
    # Training progressed the same way: the loss fell to about the same level.
    assert distributed.loss_curve_[-1] < 0.5 * distributed.loss_curve_[0]
    single_error, distributed_error = -single.score(DIGITS), -distributed.score(DIGITS)
    # Not converged after 25 epochs, so the two trajectories end a little apart
    # (0.021 and 0.024 here); the distributed fit must be no worse than 10%.
    assert distributed_error < 1.10 * single_error

    # A normal fitted estimator: pickles, transforms, trains on with partial_fit.
    restored = pickle.loads(pickle.dumps(distributed))
    assert_array_equal(restored.transform(DIGITS), distributed.transform(DIGITS))
    restored.partial_fit(DIGITS)
    assert restored.n_iter_ == 26


def test_bad_world_size_is_rejected():
    with pytest.raises(ValueError, match="world_size must be a positive integer"):
        fit_distributed(AutoencoderTransformer(), DIGITS, world_size=0)
    with pytest.raises(ValueError, match="at least one row per process"):
        fit_distributed(AutoencoderTransformer(), DIGITS[:1], world_size=2)
