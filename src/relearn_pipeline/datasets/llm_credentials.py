"""Hands the LLM API key from Kedro credentials (conf/local/credentials.yml) to the nodes that need it.

Load-only; nothing is written, and neither the key nor the credentials appear in its description.
"""

from __future__ import annotations

from typing import Any

from kedro.io import AbstractDataset, DatasetError

from relearn_pipeline.llm.factory import LLMCredentials


class LLMCredentialsDataset(AbstractDataset[None, LLMCredentials]):
    """``credentials: {api_key: ...}`` -> ``LLMCredentials`` (an empty key means: use the env var)."""

    def __init__(self, credentials: dict[str, Any] | None = None, metadata: dict[str, Any] | None = None):
        credentials = credentials or {}
        unknown = set(credentials) - {"api_key"}
        if unknown:
            raise DatasetError(
                f"LLMCredentialsDataset: credentials may only hold `api_key`, found {sorted(unknown)}"
            )
        self._credentials = LLMCredentials(api_key=credentials.get("api_key") or None)
        self.metadata = metadata

    def load(self) -> LLMCredentials:
        return self._credentials

    def save(self, data: None) -> None:
        raise DatasetError("LLMCredentialsDataset is read-only: put the key in conf/local/credentials.yml")

    def _describe(self) -> dict[str, Any]:
        return {"api_key": "***" if self._credentials.api_key else None}
