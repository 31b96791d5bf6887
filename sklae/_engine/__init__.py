"""The training engine: data, callbacks and the skorch net, apart from the estimators.

- :mod:`.data`: rows, corruption and the one batching path (training,
  validation, inference), seeded with explicit generators;
- :mod:`.callbacks`: stopping, divergence, the learning-rate schedule, progress;
- :mod:`.net`: the skorch net, built and re-configured from a
  :class:`~.net.TrainingPlan`, trained by :func:`~.net.train` with Adam over
  its parameters laid out flat (:func:`~.net.flat_adam`);
- :mod:`.state`: a trained net as plain data (numpy arrays, numbers) and back;
- :mod:`.distributed`: the same net under PyTorch's DistributedDataParallel.

Imports point one way: estimators -> engine -> networks. Nothing here names an
estimator parameter; the estimators translate.
"""

from .callbacks import CosineLearningRate, DivergenceGuard, ImprovementStopper, ProgressReport
from .data import (
    CORRUPTIONS,
    EVALUATION_BATCH_SIZE,
    Batches,
    Corruption,
    Recorruption,
    RowData,
    TrainingRows,
    as_float32_tensor,
    map_rows,
    pass_seeds,
    steps_per_epoch,
    to_float32,
)
from .net import (
    AutoencoderNet,
    FlatAdam,
    RandomRowSplit,
    TrainingOutcome,
    TrainingPlan,
    build_net,
    configure_net,
    flat_adam,
    held_out_count,
    map_module,
    rate_factors,
    rows_on,
    train,
)
from .state import device_available, plain_net_state, restore_net, saved_net_class

__all__ = [
    "CORRUPTIONS",
    "EVALUATION_BATCH_SIZE",
    "AutoencoderNet",
    "Batches",
    "Corruption",
    "FlatAdam",
    "Recorruption",
    "CosineLearningRate",
    "DivergenceGuard",
    "ImprovementStopper",
    "ProgressReport",
    "RandomRowSplit",
    "RowData",
    "TrainingOutcome",
    "TrainingPlan",
    "TrainingRows",
    "as_float32_tensor",
    "build_net",
    "configure_net",
    "device_available",
    "flat_adam",
    "held_out_count",
    "map_module",
    "map_rows",
    "pass_seeds",
    "plain_net_state",
    "rate_factors",
    "restore_net",
    "saved_net_class",
    "rows_on",
    "steps_per_epoch",
    "to_float32",
    "train",
]
