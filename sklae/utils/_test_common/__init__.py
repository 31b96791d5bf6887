"""Shared test tooling: see :mod:`.instance_generator`."""
