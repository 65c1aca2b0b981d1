"""Small QA tables in the shape of forget_set / augmented_forget_set / retain_set."""

import pandas as pd
import pytest


def qa_frame(prefix: str, n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [f"{prefix}-{i}" for i in range(n)],
            "subject": [f"Person {i % 2}" for i in range(n)],
            "question": [f"What is the {prefix} fact number {i}?" for i in range(n)],
            "answer": [f"The {prefix} fact {i} is {i * 7 + 3} green apples." for i in range(n)],
        }
    )


@pytest.fixture
def qa_sets():
    """(augmented_forget_set, forget_set, retain_set) with 6, 6 and 8 rows."""
    return qa_frame("aug", 6), qa_frame("forget", 6), qa_frame("retain", 8)


@pytest.fixture(autouse=True)
def _one_thread_each(one_thread):
    """Every test here trains a tiny model: one torch thread (tests/conftest.py)."""
    yield
