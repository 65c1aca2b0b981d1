"""Fixtures for the LLM tests: the scripted backend module."""

import importlib.util
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def scripted():
    """tests/llm/scripted.py as a module (ScriptedBackend, prompt_kind, field, default_reply)."""
    spec = importlib.util.spec_from_file_location("scripted_backend", Path(__file__).resolve().parents[2] / "llm" / "scripted.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
