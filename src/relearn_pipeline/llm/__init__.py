"""Text-generation backends (local transformers, OpenAI-compatible HTTP) and the response cache."""

from relearn_pipeline.llm.cache import ResponseCache, request_key
from relearn_pipeline.llm.cached import CachedBackend, CallCounts
from relearn_pipeline.llm.factory import LLMCredentials, build_backend, resolve_api_key, sampling_from_params
from relearn_pipeline.llm.prompts import PromptTemplate, load_prompt_templates
from relearn_pipeline.llm.requests import (
    BackendError,
    GenerationBackend,
    GenerationRequest,
    ResultCallback,
    SamplingParams,
)

__all__ = [
    "BackendError",
    "CachedBackend",
    "CallCounts",
    "GenerationBackend",
    "GenerationRequest",
    "LLMCredentials",
    "PromptTemplate",
    "ResponseCache",
    "ResultCallback",
    "SamplingParams",
    "build_backend",
    "load_prompt_templates",
    "request_key",
    "resolve_api_key",
    "sampling_from_params",
]
