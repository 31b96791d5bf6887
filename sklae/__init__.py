"""sklae: autoencoders as scikit-learn estimators, trained with PyTorch and skorch."""

from ._denoising import DenoisingAutoencoder
from ._outlier import AutoencoderOutlierDetector
from ._persistence import InconsistentVersionWarning
from ._transformer import AutoencoderTransformer, VariationalAutoencoder
from .exceptions import TrainingDivergedError
from .plotting import plot_loss_curve

__version__ = "0.1.0"

__all__ = [
    "AutoencoderOutlierDetector",
    "AutoencoderTransformer",
    "DenoisingAutoencoder",
    "InconsistentVersionWarning",
    "TrainingDivergedError",
    "VariationalAutoencoder",
    "__version__",
    "plot_loss_curve",
]
