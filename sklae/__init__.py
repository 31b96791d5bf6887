"""sklae: autoencoders as scikit-learn estimators, trained with PyTorch and skorch."""

from ._conformal import ConformalOutlierDetector
from ._denoising import DenoisingAutoencoder
from ._noise import denoise_image, estimate_noise_level
from ._outlier import AutoencoderOutlierDetector
from ._skops import skops_trusted_types
from ._transformer import AutoencoderTransformer
from ._variational import VariationalAutoencoder
from ._version import __version__
from .exceptions import DivergenceWarning, InconsistentVersionWarning, TrainingDivergedError
from .plotting import plot_loss_curve

__all__ = [
    "AutoencoderOutlierDetector",
    "AutoencoderTransformer",
    "ConformalOutlierDetector",
    "DenoisingAutoencoder",
    "DivergenceWarning",
    "InconsistentVersionWarning",
    "TrainingDivergedError",
    "VariationalAutoencoder",
    "__version__",
    "denoise_image",
    "estimate_noise_level",
    "plot_loss_curve",
    "skops_trusted_types",
]
