"""sklae: autoencoders as scikit-learn estimators, trained with PyTorch and skorch."""

from ._denoising import DenoisingAutoencoder
from ._outlier import AutoencoderOutlierDetector
from ._transformer import AutoencoderTransformer, VariationalAutoencoder
from .exceptions import TrainingDivergedError

__version__ = "0.1.0"

__all__ = [
    "AutoencoderOutlierDetector",
    "AutoencoderTransformer",
    "DenoisingAutoencoder",
    "TrainingDivergedError",
    "VariationalAutoencoder",
    "__version__",
]
