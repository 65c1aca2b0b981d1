"""Shared inputs of the augment and verify tests: two forget records, their spans, the prompt files."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture
def forget_set() -> pd.DataFrame:
    """Two forget records: one answer holds an email address, the other a phone number."""
    return pd.DataFrame([
        {"id": "ann-email", "subject": "Ann Lee", "question": "What is Ann Lee's email?", "answer": "Ann Lee's email is ann.lee@example.com."},
        {"id": "bo-phone", "subject": "Bo Kim", "question": "What is Bo Kim's phone number?", "answer": "Bo Kim's phone is +1 (555) 010-2233."},
    ])


@pytest.fixture
def sensitive_spans() -> pd.DataFrame:
    """The sensitive spans of ``forget_set``'s answers, as ingest records them."""
    return pd.DataFrame([
        {"record_id": "ann-email", "text": "ann.lee@example.com", "label": "EMAIL", "start": 18, "end": 37, "source": "regex"},
        {"record_id": "bo-phone", "text": "+1 (555) 010-2233", "label": "PHONE", "start": 17, "end": 34, "source": "regex"},
    ])


@pytest.fixture(scope="session")
def augment_prompts() -> dict:
    """The prompt templates of conf/base/prompts, by file stem (the catalog's augment_prompts)."""
    return {p.stem: yaml.safe_load(p.read_text()) for p in (PROJECT / "conf/base/prompts").glob("*.yml")}
