"""Export a fitted autoencoder's networks for serving without scikit-learn.

A fitted :class:`~sklae.AutoencoderTransformer`, :class:`~sklae.VariationalAutoencoder`
or :class:`~sklae.DenoisingAutoencoder` holds a torch module with ``encode`` and
``decode`` methods. The functions here turn one of three parts of it into a
self-contained program with a dynamic batch dimension:

- ``"encoder"``: rows -> codes, as :meth:`~sklae.AutoencoderTransformer.transform`;
- ``"decoder"``: codes -> rows, as :meth:`~sklae.AutoencoderTransformer.inverse_transform`;
- ``"autoencoder"``: rows -> reconstructions (denoised rows for a
  :class:`~sklae.DenoisingAutoencoder`, as its ``predict``).

:func:`export_program` makes a :class:`torch.export.ExportedProgram` (load it with
:func:`torch.export.load`; it needs torch only). :func:`export_onnx` writes an ONNX
file for ONNX Runtime and other servers; it needs the ``onnx`` extra
(``pip install "sklae[onnx]"``). TorchScript is not offered: ``torch.jit`` is
deprecated in favour of :mod:`torch.export`.

The programs compute in float32 on the CPU and take float32 input; any
preprocessing before the estimator (a scaler in a Pipeline) is not part of them.
:class:`~sklae.AutoencoderOutlierDetector` cannot be exported: its scores also
need robust scaling and nearest neighbours, which are not torch code.
"""

import copy
import warnings

import torch
from sklearn.utils.validation import check_is_fitted
from torch import nn

from ._base import BaseAutoencoder

__all__ = ["PARTS", "export_onnx", "export_program"]

PARTS = ("encoder", "decoder", "autoencoder")
# Rows in the example input traced; any batch size works afterwards. Two rows,
# because torch.export specialises a dimension of size 0 or 1 to that size.
EXAMPLE_ROWS = 2


class NetworkPart(nn.Module):
    """One part of an autoencoder module as a plain ``forward``.

    Parameters
    ----------
    network : torch.nn.Module
        An autoencoder module with ``encode`` and ``decode`` methods.
    part : {"encoder", "decoder", "autoencoder"}
        What ``forward`` computes.
    output_bounds : tuple of (ndarray, ndarray) or None, default=None
        Per-feature least and largest values of rows the estimator outputs
        (a :class:`~sklae.DenoisingAutoencoder` keeps them within the
        bounds its training targets pile up against; infinite where there is
        none), applied to the decoder's output.
    """

    def __init__(self, network, part, output_bounds=None):
        super().__init__()
        self.network = network
        self.part = part
        self.clips = output_bounds is not None and part != "encoder"
        if self.clips:
            low, high = (torch.as_tensor(bound, dtype=torch.float32) for bound in output_bounds)
            self.register_buffer("low", low)
            self.register_buffer("high", high)

    def forward(self, x):
        if self.part == "encoder":
            return self.network.encode(x)
        if self.part == "decoder":
            rows = self.network.decode(x)
        else:
            rows = self.network.decode(self.network.encode(x))
        if self.clips:
            rows = torch.maximum(torch.minimum(rows, self.high), self.low)
        return rows


def _part_and_example(estimator, part):
    """A CPU copy of ``part`` of the estimator's network, in eval mode, and an input."""
    if not isinstance(estimator, BaseAutoencoder):
        raise TypeError(
            "export needs a fitted AutoencoderTransformer, VariationalAutoencoder or "
            f"DenoisingAutoencoder, got {type(estimator).__name__}. An "
            "AutoencoderOutlierDetector's scores need more than torch code (robust "
            "scaling and nearest neighbours): serve it with pickle or skops."
        )
    if part not in PARTS:
        raise ValueError(f"part must be one of {PARTS}, got {part!r}.")
    check_is_fitted(estimator)
    # A copy, so that exporting changes neither the estimator's device nor its mode.
    network = copy.deepcopy(estimator.module_).cpu().eval().requires_grad_(False)
    width = estimator.code_size_ if part == "decoder" else estimator.n_features_in_
    bounds = estimator._output_bounds()
    return NetworkPart(network, part, bounds).eval(), torch.zeros(EXAMPLE_ROWS, width)


def _batch_dimension():
    return {"x": {0: torch.export.Dim("batch")}}


def export_program(estimator, part="encoder", path=None):
    """Export part of a fitted autoencoder as a :class:`torch.export.ExportedProgram`.

    Parameters
    ----------
    estimator : AutoencoderTransformer, VariationalAutoencoder or DenoisingAutoencoder
        A fitted estimator.
    part : {"encoder", "decoder", "autoencoder"}, default="encoder"
        Rows -> codes, codes -> rows, or rows -> reconstructions.
    path : str or path-like or None, default=None
        Where to save the program (:func:`torch.export.save`, a ``.pt2`` file).

    Returns
    -------
    program : torch.export.ExportedProgram
        Call ``program.module()(x)`` with a float32 tensor of any number of rows.

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> from sklae import AutoencoderTransformer
    >>> from sklae.export import export_program
    >>> X = np.random.RandomState(0).rand(20, 4)
    >>> model = AutoencoderTransformer(
    ...     code_size=2, hidden_layer_sizes=(8,), max_iter=2, random_state=0
    ... )
    >>> model = model.fit(X)
    >>> program = export_program(model, "encoder")
    >>> program.module()(torch.zeros(3, 4)).shape
    torch.Size([3, 2])
    """
    module, example = _part_and_example(estimator, part)
    with torch.no_grad():
        program = torch.export.export(module, (example,), dynamic_shapes=_batch_dimension())
    if path is not None:
        torch.export.save(program, path)
    return program


def export_onnx(estimator, path, part="encoder"):
    """Write part of a fitted autoencoder to an ONNX file.

    Needs the ``onnx`` extra: ``pip install "sklae[onnx]"`` (onnx, onnxscript
    and, to run the file, onnxruntime).

    Parameters
    ----------
    estimator : AutoencoderTransformer, VariationalAutoencoder or DenoisingAutoencoder
        A fitted estimator.
    path : str or path-like
        The ``.onnx`` file to write.
    part : {"encoder", "decoder", "autoencoder"}, default="encoder"
        Rows -> codes, codes -> rows, or rows -> reconstructions.

    Returns
    -------
    path : str or path-like
        ``path``. The graph has one float32 input ``"X"`` of shape
        ``(batch, width)`` and one output ``"Y"``.

    Examples
    --------
    >>> from sklae.export import export_onnx
    >>> export_onnx(model, "encoder.onnx")  # doctest: +SKIP
    >>> import onnxruntime  # doctest: +SKIP
    >>> session = onnxruntime.InferenceSession("encoder.onnx")  # doctest: +SKIP
    >>> codes = session.run(None, {"X": X.astype("float32")})[0]  # doctest: +SKIP
    """
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as error:
        raise ImportError(
            f"export_onnx needs the packages onnx and onnxscript ({error}). Install them "
            'with pip install "sklae[onnx]".'
        ) from error
    module, example = _part_and_example(estimator, part)
    with warnings.catch_warnings(), torch.no_grad():
        # The exporter's own internals warn about their deprecations; nothing a
        # caller could act on.
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            module,
            (example,),
            path,
            input_names=["X"],
            output_names=["Y"],
            dynamic_shapes=_batch_dimension(),
            dynamo=True,
            verbose=False,
        )
    return path
