"""sklae: autoencoders as scikit-learn estimators, trained with PyTorch and skorch."""

from ._outlier import AutoencoderOutlierDetector
from ._transformer import AutoencoderTransformer
from .exceptions import TrainingDivergedError

__version__ = "0.1.0"

__all__ = [
    "AutoencoderOutlierDetector",
    "AutoencoderTransformer",
    "TrainingDivergedError",
    "__version__",
]
