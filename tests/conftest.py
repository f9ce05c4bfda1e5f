"""Fixtures shared by the whole test suite."""

from __future__ import annotations

import pytest

from grader.data import FashionMNIST, load_fashion_mnist


@pytest.fixture(scope="session")
def fmnist() -> FashionMNIST:
    """The real Fashion-MNIST, loaded once per test session (arrays are read-only)."""
    return load_fashion_mnist()
