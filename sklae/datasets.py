"""Loaders for image data sets stored as local files. Nothing is downloaded.

The MNIST and Fashion-MNIST files use the IDX format (optionally gzip-compressed):
a big-endian magic number whose last byte is the number of dimensions, one
big-endian uint32 per dimension, then the raw uint8 values in C order.
"""

import gzip
import os
from pathlib import Path

import numpy as np

__all__ = ["load_idx", "load_mnist_like", "default_data_dir"]

IDX_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


def default_data_dir():
    """Folder of the benchmark data: ``$SKLAE_DATA_DIR``, else ``../shared/data``.

    The relative default is taken from the repository root (the parent of the
    ``sklae`` package folder), the layout of a source checkout.

    Returns
    -------
    path : pathlib.Path
        The folder; it may not exist.

    Examples
    --------
    >>> from sklae.datasets import default_data_dir
    >>> default_data_dir().name
    'data'
    """
    if os.environ.get("SKLAE_DATA_DIR"):
        return Path(os.environ["SKLAE_DATA_DIR"])
    return Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def load_idx(path):
    """Read an IDX file (gzip-compressed or not) into a uint8 numpy array.

    Parameters
    ----------
    path : str or path-like
        The file. Names ending in ``.gz`` are decompressed.

    Returns
    -------
    array : ndarray of dtype uint8
        The array with the shape recorded in the file.

    Examples
    --------
    >>> import gzip, tempfile, pathlib
    >>> import numpy as np
    >>> from sklae.datasets import load_idx
    >>> raw = bytes([0, 0, 8, 2]) + (2).to_bytes(4, "big") + (3).to_bytes(4, "big")
    >>> raw += bytes(range(6))
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "tiny-idx2-ubyte.gz"
    >>> _ = path.write_bytes(gzip.compress(raw))
    >>> load_idx(path)
    array([[0, 1, 2],
           [3, 4, 5]], dtype=uint8)
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        buffer = handle.read()
    if len(buffer) < 4 or buffer[0] != 0 or buffer[1] != 0 or buffer[2] != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file")
    n_dims = buffer[3]
    header_end = 4 + 4 * n_dims
    shape = tuple(
        int.from_bytes(buffer[4 + 4 * axis : 8 + 4 * axis], "big") for axis in range(n_dims)
    )
    expected = int(np.prod(shape)) + header_end
    if len(buffer) != expected:
        raise ValueError(f"{path} holds {len(buffer)} bytes, its header promises {expected}")
    return np.frombuffer(buffer, dtype=np.uint8, offset=header_end).reshape(shape)


def load_mnist_like(name="mnist", split="train", data_dir=None, scale=True):
    """Load MNIST or Fashion-MNIST from local IDX files as flat rows.

    Parameters
    ----------
    name : {"mnist", "fashion_mnist"}, default="mnist"
        Sub-folder of ``data_dir`` holding the four IDX files.
    split : {"train", "test"}, default="train"
        The 60000-image training split or the 10000-image test split.
    data_dir : str or path-like, default=None
        Folder holding ``name``; :func:`default_data_dir` when None.
    scale : bool, default=True
        Return float32 pixels in [0, 1] rather than uint8 in 0..255.

    Returns
    -------
    X : ndarray of shape (n_images, 784)
        One image per row.
    y : ndarray of shape (n_images,)
        Labels 0..9.

    Examples
    --------
    A folder in MNIST's layout, here with two tiny 2x2 test images:

    >>> import gzip, tempfile, pathlib
    >>> from sklae.datasets import load_mnist_like
    >>> folder = pathlib.Path(tempfile.mkdtemp()) / "mnist"
    >>> folder.mkdir()
    >>> def idx(shape, values):
    ...     header = bytes([0, 0, 8, len(shape)])
    ...     header += b"".join(size.to_bytes(4, "big") for size in shape)
    ...     return gzip.compress(header + bytes(values))
    >>> _ = (folder / "t10k-images-idx3-ubyte.gz").write_bytes(idx((2, 2, 2), range(0, 255, 32)))
    >>> _ = (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(idx((2,), [7, 1]))
    >>> X, y = load_mnist_like("mnist", split="test", data_dir=folder.parent)
    >>> X.shape, X.dtype, y
    ((2, 4), dtype('float32'), array([7, 1]))
    """
    if split not in IDX_FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    folder = Path(data_dir if data_dir is not None else default_data_dir()) / name
    image_file, label_file = IDX_FILES[split]
    if not (folder / image_file).exists():
        raise FileNotFoundError(
            f"{folder / image_file} not found; point data_dir or SKLAE_DATA_DIR at the folder "
            f"holding {name}/"
        )
    images = load_idx(folder / image_file)
    labels = load_idx(folder / label_file)
    X = images.reshape(len(images), -1)
    if scale:
        X = X.astype(np.float32) / np.float32(255.0)
    return X, labels.astype(np.int64)
