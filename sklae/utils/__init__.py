"""Tooling for developers of sklae; no public names yet.

:mod:`sklae.utils._test_common` holds the small, fast estimator instances that
sklae's test suites (and benchmarks' smoke runs) share.
"""

__all__: list[str] = []
