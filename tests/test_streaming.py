"""Out-of-core and distributed use: memmaps, partial_fit streams, Dask, thread limits."""

import tracemalloc
import warnings

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.model_selection import GridSearchCV, cross_validate
from skorch.callbacks import Callback

from sklae import AutoencoderTransformer
from sklae._engine import as_float32_tensor

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

SMALL_NETWORK = {"code_size": 3, "hidden_layer_sizes": (16,), "random_state": 0}


def write_memmap(path, X):
    """``X`` saved as ``.npy`` and opened again as a read-only memmap."""
    on_disk = np.lib.format.open_memmap(path, mode="w+", dtype=X.dtype, shape=X.shape)
    on_disk[:] = X
    on_disk.flush()
    del on_disk
    return np.load(path, mmap_mode="r")


@pytest.fixture
def rows():
    rng = np.random.default_rng(0)
    return rng.normal(size=(1500, 12)) @ rng.normal(size=(12, 12))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("early_stopping", [False, True])
def test_memmap_fit_equals_in_memory_fit(tmp_path, rows, dtype, early_stopping):
    X = rows.astype(dtype)
    on_disk = write_memmap(tmp_path / "X.npy", X)
    settings = dict(SMALL_NETWORK, max_iter=3, batch_size=64, early_stopping=early_stopping)

    in_memory = AutoencoderTransformer(**settings).fit(X)
    streamed = AutoencoderTransformer(**settings).fit(on_disk)

    # Same permutation, same float32 batches in the same row order: bit for bit.
    assert streamed.loss_curve_ == in_memory.loss_curve_
    if early_stopping:
        assert streamed.validation_scores_ == in_memory.validation_scores_
    codes = streamed.transform(on_disk)
    assert codes.dtype == dtype
    assert_array_equal(codes, in_memory.transform(X))
    assert_array_equal(streamed.score_samples(on_disk), in_memory.score_samples(X))
    assert streamed.score(on_disk) == in_memory.score(X)


def test_memmap_of_integers_trains_as_floats(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, size=(300, 8), dtype=np.uint8)
    on_disk = write_memmap(tmp_path / "pixels.npy", pixels)
    settings = dict(SMALL_NETWORK, max_iter=2)
    streamed = AutoencoderTransformer(**settings).fit(on_disk)
    in_memory = AutoencoderTransformer(**settings).fit(pixels)
    assert streamed.loss_curve_ == in_memory.loss_curve_
    assert streamed.transform(on_disk).dtype == np.float64


@pytest.mark.parametrize(
    ("bad_value", "message"),
    [(np.nan, "Input X contains NaN"), (np.inf, "Input X contains infinity")],
)
def test_memmap_with_non_finite_values_is_rejected(tmp_path, rows, bad_value, message):
    X = rows.copy()
    X[-1, -1] = bad_value
    on_disk = write_memmap(tmp_path / "X.npy", X)
    with pytest.raises(ValueError, match=message):
        AutoencoderTransformer(**SMALL_NETWORK, max_iter=1).fit(on_disk)


def test_memmap_shape_errors_are_those_of_in_memory_input(tmp_path, rows):
    model = AutoencoderTransformer(**SMALL_NETWORK, max_iter=1).fit(rows)
    fitted_loss = model.loss_curve_
    narrower = write_memmap(tmp_path / "narrow.npy", rows[:, :5])
    with pytest.raises(ValueError, match="X has 5 features, but AutoencoderTransformer"):
        model.partial_fit(narrower)
    assert model.loss_curve_ == fitted_loss
    empty = write_memmap(tmp_path / "empty.npy", rows[:0])
    with pytest.raises(ValueError, match="0 sample"):
        AutoencoderTransformer(**SMALL_NETWORK).fit(empty)


def test_partial_fit_streams_chunks_of_a_memmap(tmp_path, rows):
    on_disk = write_memmap(tmp_path / "X.npy", rows.astype(np.float32))
    streamed = AutoencoderTransformer(**SMALL_NETWORK, batch_size=32)
    in_memory = AutoencoderTransformer(**SMALL_NETWORK, batch_size=32)
    for start in range(0, len(rows), 500):
        streamed.partial_fit(on_disk[start : start + 500])
        in_memory.partial_fit(np.array(on_disk[start : start + 500]))
    assert streamed.n_iter_ == 3
    assert streamed.loss_curve_ == in_memory.loss_curve_
    assert_array_equal(streamed.transform(on_disk), in_memory.transform(rows.astype(np.float32)))


def test_memmap_training_memory_does_not_grow_with_rows(tmp_path):
    """fit, transform and score on a 200 MB float64 memmap stay within a few batches.

    tracemalloc sees every numpy allocation; a whole-array float32 copy would be
    100 MB, the float64 reconstruction that score used to build 200 MB.
    """
    n_rows, n_features = 100_000, 256
    on_disk = np.lib.format.open_memmap(
        tmp_path / "big.npy", mode="w+", dtype=np.float64, shape=(n_rows, n_features)
    )
    rng = np.random.default_rng(0)
    for start in range(0, n_rows, 10_000):
        on_disk[start : start + 10_000] = rng.random((10_000, n_features))
    on_disk.flush()
    del on_disk
    on_disk = np.load(tmp_path / "big.npy", mmap_mode="r")
    # Every row trained, from random weights, as measured: with the defaults
    # the validation rows are read into memory (a 17 MB peak here, not 4 MB) and
    # the start at PCA's solution reads a sample of up to 20000 rows (41 MB).
    model = AutoencoderTransformer(
        code_size=4,
        hidden_layer_sizes=(),
        max_iter=1,
        batch_size=1024,
        init="random",
        early_stopping=False,
        random_state=0,
    )

    tracemalloc.start()
    try:
        model.fit(on_disk)
        _, fit_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        codes = model.transform(on_disk)
        score = model.score(on_disk)
        _, inference_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        # The same accounting sees the copy of the in-memory path.
        as_float32_tensor(on_disk)
        _, copy_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    megabyte = 2**20
    assert codes.shape == (n_rows, 4)
    assert np.isfinite(score)
    assert copy_peak > 90 * megabyte
    # Row positions (8 bytes per row) and a few batches; no copy of the data.
    assert fit_peak < 10 * megabyte, fit_peak / megabyte
    # The codes (n_rows x 4 float64), the scores and float64 temporaries of a
    # 4096-row chunk (8 MB each).
    assert inference_peak < 48 * megabyte, inference_peak / megabyte


# ---------------------------------------------------------------------- Dask


@pytest.fixture(scope="module")
def dask_client():
    pytest.importorskip("dask_ml")
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


@pytest.mark.slow
def test_dask_incremental_trains_over_chunks_and_transforms_lazily(dask_client, rows):
    import dask.array as da
    from dask_ml.wrappers import Incremental

    X = rows.astype(np.float32)
    chunked = da.from_array(X, chunks=(500, X.shape[1]))
    settings = dict(SMALL_NETWORK, batch_size=64)
    wrapper = Incremental(AutoencoderTransformer(**settings), shuffle_blocks=False)
    wrapper.fit(chunked)

    reference = AutoencoderTransformer(**settings)
    for start in range(0, len(X), 500):
        reference.partial_fit(X[start : start + 500])
    # One partial_fit per chunk, in order: the same model as a local stream.
    assert wrapper.estimator_.loss_curve_ == reference.loss_curve_

    lazy_codes = wrapper.transform(chunked)
    assert isinstance(lazy_codes, da.Array)
    codes = lazy_codes.compute()
    assert codes.shape == (len(X), 3)
    assert_array_equal(codes, reference.transform(X))


class ThreadCount(Callback):
    """Records how many threads torch computes with while training."""

    def on_train_begin(self, net, **kwargs):
        self.threads_ = torch.get_num_threads()


@pytest.mark.slow
def test_dask_grid_search_matches_the_local_search(dask_client, rows):
    import joblib

    grid = {"code_size": [2, 6]}
    settings = dict(hidden_layer_sizes=(16,), max_iter=2, batch_size=64, random_state=0)
    local = GridSearchCV(AutoencoderTransformer(**settings), grid, cv=2, n_jobs=1).fit(rows)
    with joblib.parallel_backend("dask"):
        distributed = GridSearchCV(AutoencoderTransformer(**settings), grid, cv=2, n_jobs=-1)
        distributed.fit(rows)
    assert distributed.best_params_ == local.best_params_
    # Equal up to the summation order of matrix products, which depends on the
    # number of torch threads (one per dask worker, all cores here).
    assert_allclose(
        distributed.cv_results_["mean_test_score"],
        local.cv_results_["mean_test_score"],
        rtol=1e-6,
    )

    # Dask's worker processes start with OMP_NUM_THREADS=1: one torch thread per job.
    with joblib.parallel_backend("dask"):
        results = cross_validate(
            AutoencoderTransformer(**settings, callbacks=[("threads", ThreadCount())]),
            rows,
            cv=2,
            n_jobs=-1,
            return_estimator=True,
        )
    assert [dict(m.net_.callbacks_)["threads"].threads_ for m in results["estimator"]] == [1, 1]


@pytest.mark.slow
def test_parallel_jobs_do_not_oversubscribe_torch_threads(rows):
    """joblib's process workers cap torch at cores // n_jobs threads each.

    (Or at OMP_NUM_THREADS where the caller set it, as `make test` does.)
    """
    import os

    expected = int(os.environ.get("OMP_NUM_THREADS", max(1, os.cpu_count() // 2)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = cross_validate(
            AutoencoderTransformer(
                **SMALL_NETWORK, max_iter=1, callbacks=[("threads", ThreadCount())]
            ),
            rows,
            cv=2,
            n_jobs=2,
            return_estimator=True,
        )
    threads = [dict(m.net_.callbacks_)["threads"].threads_ for m in results["estimator"]]
    assert threads == [expected] * 2


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_memmap_training_on_the_gpu(tmp_path, rows):
    X = rows.astype(np.float32)
    on_disk = write_memmap(tmp_path / "X.npy", X)
    settings = dict(SMALL_NETWORK, max_iter=3, batch_size=64, device="cuda")

    streamed = AutoencoderTransformer(**settings).fit(on_disk)
    in_memory = AutoencoderTransformer(**settings).fit(X)

    assert next(streamed.module_.parameters()).is_cuda
    # The same batches reach the GPU; only cuBLAS's summation order may differ.
    assert_allclose(streamed.loss_curve_, in_memory.loss_curve_, rtol=1e-5)
    assert_allclose(streamed.transform(on_disk), in_memory.transform(X), atol=1e-4)
    assert streamed.score(on_disk) == pytest.approx(in_memory.score(X), rel=1e-4)
