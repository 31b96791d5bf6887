"""scikit-learn's own estimator checks, run over every public estimator.

The instances and the checks that do not apply (with why) are those of the
shared registry, sklae/utils/_test_common/instance_generator.py.
"""

import inspect

from sklearn.base import BaseEstimator
from sklearn.utils.estimator_checks import parametrize_with_checks

import sklae
from sklae.utils._test_common.instance_generator import (
    ESTIMATOR_CLASSES,
    _get_expected_failed_checks,
    _tested_estimators,
)


@parametrize_with_checks(
    list(_tested_estimators()), expected_failed_checks=_get_expected_failed_checks
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


def test_the_registry_covers_every_public_estimator():
    public = {
        obj
        for obj in map(sklae.__dict__.get, sklae.__all__)
        if inspect.isclass(obj) and issubclass(obj, BaseEstimator)
    }
    assert public == set(ESTIMATOR_CLASSES)
