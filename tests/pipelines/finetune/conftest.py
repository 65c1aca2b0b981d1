import pytest


@pytest.fixture(autouse=True)
def _one_thread_each(one_thread):
    """Every test here trains a tiny model: one torch thread (tests/conftest.py)."""
    yield
