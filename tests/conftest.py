"""Shared pytest fixtures."""
import numpy as onp
import pytest


@pytest.fixture
def rng():
    """A fresh, seeded NumPy Generator per test: tests are reproducible and independent."""
    return onp.random.default_rng(0)
