"""Build the configured backend (``augment.llm`` in parameters_augment.yml), wrapped in the cache."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from relearn_pipeline.llm.cache import ResponseCache
from relearn_pipeline.llm.cached import CachedBackend
from relearn_pipeline.llm.requests import BackendError, GenerationBackend, SamplingParams


@dataclass(frozen=True)
class LLMCredentials:
    """An API key from Kedro credentials; its repr never shows the key."""

    api_key: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        return f"LLMCredentials(api_key={'***' if self.api_key else None})"


def resolve_api_key(openai_params: dict[str, Any], credentials: LLMCredentials | None) -> str:
    """The key from credentials.yml, else from the env var named in config, else a clear error."""
    if credentials is not None and credentials.api_key:
        return credentials.api_key
    env_name = openai_params.get("api_key_env")
    if env_name and os.environ.get(env_name):
        return os.environ[env_name]
    if openai_params.get("api_key_required", True) is False:
        return "not-needed"  # local servers (llama.cpp, vLLM without --api-key) accept any key
    raise BackendError(
        "augment.llm.openai: no API key found. Put it in conf/local/credentials.yml as "
        f"`llm_api: {{api_key: ...}}`, or export {env_name or 'the variable named by api_key_env'}; "
        "for a local server that needs none, set augment.llm.openai.api_key_required: false"
    )


def _transformers(options: dict[str, Any], credentials: LLMCredentials | None) -> GenerationBackend:
    from relearn_pipeline.llm.transformers_backend import TransformersBackend

    return TransformersBackend.from_spec(**options)


def _openai(options: dict[str, Any], credentials: LLMCredentials | None) -> GenerationBackend:
    from relearn_pipeline.llm.openai_backend import OpenAIBackend

    api_key = resolve_api_key(options, credentials)
    options = {k: v for k, v in options.items() if k not in ("api_key_env", "api_key_required")}
    missing = [k for k in ("base_url", "model") if not options.get(k)]
    if missing:
        raise BackendError(f"augment.llm.openai: set {', '.join(missing)} in parameters_augment.yml")
    return OpenAIBackend(api_key=api_key, **options)


# backend name -> builder(options under augment.llm.<name>, credentials). Add a backend here.
BACKEND_BUILDERS: dict[str, Callable[[dict[str, Any], LLMCredentials | None], GenerationBackend]] = {
    "transformers": _transformers,
    "openai": _openai,
}


def build_backend(llm_params: dict[str, Any], credentials: LLMCredentials | None = None) -> CachedBackend:
    """The backend named by ``llm_params['backend']`` behind a ``CachedBackend``."""
    kind = llm_params.get("backend")
    if kind not in BACKEND_BUILDERS:
        raise BackendError(
            f"augment.llm.backend is {kind!r}; use one of {', '.join(BACKEND_BUILDERS)} "
            "(conf/base/parameters_augment.yml)"
        )
    backend = BACKEND_BUILDERS[kind](dict(llm_params.get(kind) or {}), credentials)
    cache_path = llm_params.get("cache_path")
    cache = ResponseCache(cache_path) if cache_path else None
    return CachedBackend(backend, cache)


def sampling_from_params(params: dict[str, Any], seed: int) -> SamplingParams:
    """``SamplingParams`` from a ``sampling:`` mapping plus the seed for this round."""
    known = {"temperature", "top_p", "top_k", "max_new_tokens"}
    unknown = set(params) - known
    if unknown:
        raise ValueError(f"sampling params: unknown keys {sorted(unknown)}; known: {sorted(known)}")
    return SamplingParams(seed=int(seed), **{k: params[k] for k in known if k in params})
