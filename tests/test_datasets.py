import gzip

import numpy as np
import pytest

from sklae.datasets import default_data_dir, load_idx, load_mnist_like


def write_idx(path, array):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(
        int(size).to_bytes(4, "big") for size in array.shape
    )
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


@pytest.fixture
def tiny_mnist(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "mnist"
    folder.mkdir()
    images = rng.integers(0, 256, size=(5, 28, 28))
    labels = np.arange(5)
    write_idx(folder / "train-images-idx3-ubyte.gz", images)
    write_idx(folder / "train-labels-idx1-ubyte.gz", labels)
    return tmp_path, images, labels


def test_load_idx_round_trip(tmp_path):
    array = np.arange(24).reshape(2, 3, 4)
    write_idx(tmp_path / "a.gz", array)
    np.testing.assert_array_equal(load_idx(tmp_path / "a.gz"), array)


def test_load_idx_rejects_truncated_and_foreign_files(tmp_path):
    array = np.arange(6).reshape(2, 3)
    write_idx(tmp_path / "a.gz", array)
    truncated = gzip.decompress((tmp_path / "a.gz").read_bytes())[:-1]
    (tmp_path / "b.gz").write_bytes(gzip.compress(truncated))
    with pytest.raises(ValueError, match="header promises"):
        load_idx(tmp_path / "b.gz")
    (tmp_path / "c").write_bytes(b"PK\x03\x04 not idx")
    with pytest.raises(ValueError, match="not an unsigned-byte IDX file"):
        load_idx(tmp_path / "c")


def test_load_mnist_like_flattens_and_scales(tiny_mnist):
    data_dir, images, labels = tiny_mnist
    X, y = load_mnist_like("mnist", "train", data_dir)
    assert X.shape == (5, 784)
    assert X.dtype == np.float32
    np.testing.assert_allclose(X, images.reshape(5, -1) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y, labels)
    raw, _ = load_mnist_like("mnist", "train", data_dir, scale=False)
    assert raw.dtype == np.uint8


def test_load_mnist_like_errors(tiny_mnist):
    data_dir, _, _ = tiny_mnist
    with pytest.raises(ValueError, match="split must be"):
        load_mnist_like("mnist", "validation", data_dir)
    with pytest.raises(FileNotFoundError, match="SKLAE_DATA_DIR"):
        load_mnist_like("mnist", "test", data_dir)


def test_default_data_dir_follows_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SKLAE_DATA_DIR", str(tmp_path))
    assert default_data_dir() == tmp_path
    monkeypatch.delenv("SKLAE_DATA_DIR")
    assert default_data_dir().parts[-2:] == ("shared", "data")
