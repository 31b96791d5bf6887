"""The types that files of sklae's models ask skops to trust.

skops (and MLflow, which saves scikit-learn models with skops by default)
loads only types it trusts. Its defaults cover numpy and scikit-learn's
estimators; a fitted sklae model adds its own estimator classes and, in
:class:`~sklae.AutoencoderOutlierDetector`, the tree and distance metric of a
scikit-learn nearest-neighbour search. Everything else in the file is plain
data (numpy arrays, numbers, strings): the trained network is rebuilt from
those by sklae's own code.
"""

from sklearn.metrics import DistanceMetric
from sklearn.neighbors import KDTree

from ._conformal import ConformalOutlierDetector
from ._denoising import DenoisingAutoencoder
from ._outlier import AutoencoderOutlierDetector
from ._transformer import AutoencoderTransformer
from ._variational import VariationalAutoencoder


def _type_path(cls):
    return f"{cls.__module__}.{cls.__qualname__}"


def skops_trusted_types():
    """Names of the types beyond skops' defaults that sklae's saved models contain.

    Pass them as ``trusted`` to :func:`skops.io.load`, or as
    ``skops_trusted_types`` to :func:`mlflow.sklearn.log_model`. They are
    sklae's estimators and two scikit-learn types that the outlier
    detector's nearest-neighbour search holds; a file that asks to trust
    anything else (see :func:`skops.io.get_untrusted_types`) was not made by
    sklae alone: a model with your own ``callbacks``, or a pipeline with other
    steps, adds their types.

    Returns
    -------
    types : list of str
        Sorted, in the ``"module.Class"`` form skops uses.

    Examples
    --------
    >>> from sklae import skops_trusted_types
    >>> [name for name in skops_trusted_types() if name.startswith("sklae")]
    ... # doctest: +NORMALIZE_WHITESPACE
    ['sklae._conformal.ConformalOutlierDetector', 'sklae._denoising.DenoisingAutoencoder',
     'sklae._outlier.AutoencoderOutlierDetector', 'sklae._transformer.AutoencoderTransformer',
     'sklae._variational.VariationalAutoencoder']
    """
    estimators = (
        AutoencoderTransformer,
        VariationalAutoencoder,
        DenoisingAutoencoder,
        AutoencoderOutlierDetector,
        ConformalOutlierDetector,
    )
    neighbour_search = (KDTree, type(DistanceMetric.get_metric("euclidean")))
    return sorted(_type_path(cls) for cls in (*estimators, *neighbour_search))
