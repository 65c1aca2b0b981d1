"""Config environments: the KnowUnDo benchmarks (`knowundo`: the CPU subset, `knowundo_full`: the
whole split) write only under their own data root and read KnowUnDo in place; base still resolves
to the demo's paths; their ingest keeps exactly the configured people's records."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from kedro.config import OmegaConfigLoader
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from relearn_pipeline.params import validate_parameters
from relearn_pipeline.pipelines.ingest.nodes import SPLITS, normalise_text
from relearn_pipeline.settings import CONFIG_LOADER_ARGS

PROJECT = Path(__file__).resolve().parents[1]
KNOWUNDO = PROJECT.parent / "shared" / "benchmarks" / "knowundo_privacy"
KNOWUNDO_REL = "../shared/benchmarks/knowundo_privacy/"
RAW_FILES = {
    "forget": "unlearn_train.json",
    "retain": "retention_train.json",
    "forget_eval": "unlearn_val.json",
    "retain_eval": "retention_val.json",
    "full": "full.json",
}
INPUTS = {"augment_prompts", *(f"raw_{split}" for split in SPLITS)}
PATH_PARAMS = {"finetune.checkpoint_dir": ("finetune", "checkpoint_dir"), "augment.llm.cache_path": ("augment", "llm", "cache_path")}


def _config(env: str, conf: Path = PROJECT / "conf") -> tuple[dict, dict]:
    """The catalog and parameters as `kedro run --env <env>` resolves them (settings.py's loader)."""
    loader = OmegaConfigLoader(str(conf), env=env, **CONFIG_LOADER_ARGS)
    return loader["catalog"], loader["parameters"]


def _paths(catalog: dict) -> dict[str, str]:
    """Every local file or folder a catalog entry reads or writes, by dataset name."""
    paths = {}
    for name, entry in catalog.items():
        if name.startswith("_"):
            continue
        inner = entry.get("dataset") if isinstance(entry.get("dataset"), dict) else entry
        path = inner.get("filepath") or inner.get("path")
        if path:
            paths[name] = str(path)
    return paths


def _path_params(params: dict) -> dict[str, str]:
    found = {}
    for dotted, keys in PATH_PARAMS.items():
        value = params
        for key in keys:
            value = value[key]
        found[dotted] = value
    return found


# environment -> its data root and dataset_name
BENCHMARK_ENVS = {
    "bench_privacy": ("data/bench_privacy/", "knowundo_privacy_subset"),
    "bench_privacy_full": ("data/bench_privacy_full/", "knowundo_privacy"),
}


@pytest.mark.parametrize("env", BENCHMARK_ENVS)
def test_every_benchmark_output_lies_under_its_data_root_and_inputs_are_read_in_place(env):
    root, dataset_name = BENCHMARK_ENVS[env]
    catalog, params = _config(env)
    assert params["dataset_name"] == dataset_name
    paths = _paths(catalog)
    outputs = {name: path for name, path in paths.items() if name not in INPUTS} | _path_params(params)
    assert len(outputs) > 30
    outside = {name: path for name, path in outputs.items() if not path.startswith(root)}
    assert not outside, f"{env} outputs outside {root}: {outside}"
    for split, file in RAW_FILES.items():
        assert paths[f"raw_{split}"] == KNOWUNDO_REL + file
        assert catalog[f"raw_{split}"]["columns"] == {"question": "text", "answer": "labels"}
    base_outputs = set(_paths(_config("base")[0]).values()) | set(_path_params(_config("base")[1]).values())
    assert not set(outputs.values()) & base_outputs


def test_base_still_resolves_to_the_demo_paths():
    catalog, params = _config("base")
    paths = _paths(catalog)
    assert paths["forget_set"] == "data/03_primary/forget_set.parquet"
    assert paths["target_model"] == "data/06_models/target_model"
    assert paths["unlearned_adapter"] == "data/06_models/unlearned_adapter"
    assert paths["generations"] == "data/07_model_output/evaluation_generations.parquet"
    assert paths["comparison_plot"] == "data/08_reporting/comparison/kfr_vs_krr.png"
    assert paths["raw_forget"] == "data/01_raw/demo/forget.json"
    assert _path_params(params) == {
        "finetune.checkpoint_dir": "data/06_models/finetune_checkpoints",
        "augment.llm.cache_path": "data/02_intermediate/llm_cache.jsonl",
    }
    # every output has the same place under data/ as knowundo's under data/bench_privacy/
    knowundo_catalog, knowundo_params = _config("bench_privacy")
    knowundo = _paths(knowundo_catalog) | _path_params(knowundo_params)
    for name, path in (paths | _path_params(params)).items():
        if name not in INPUTS:
            assert path == knowundo[name].replace("data/bench_privacy/", "data/", 1), name


def test_an_environment_overrides_single_parameters_and_keeps_the_rest_of_the_block():
    _, base = _config("base")
    _, knowundo = _config("bench_privacy")
    assert knowundo["dataset_name"] == "knowundo_privacy_subset" != base["dataset_name"]
    assert knowundo["finetune"]["epochs"] == 2
    assert {k: v for k, v in knowundo["finetune"].items() if k not in ("epochs", "checkpoint_dir")} == {
        k: v for k, v in base["finetune"].items() if k not in ("epochs", "checkpoint_dir")
    }
    models = validate_parameters(knowundo)
    subset = models["ingest"].subset
    assert len(subset.forget_people) == 4 and len(subset.retain_people) == 4


def _about(record: dict, people: list[str]) -> bool:
    """Whether a raw KnowUnDo record names one of `people` (question or answer), case-insensitively."""
    text = normalise_text(f"{record['text']} {record['labels']}").casefold()
    return any(name.casefold() in text for name in people)


@pytest.mark.skipif(not KNOWUNDO.is_dir(), reason=f"KnowUnDo is not at {KNOWUNDO} (benchmarks data, not in the repo)")
@pytest.mark.parametrize("env", BENCHMARK_ENVS)
def test_benchmark_ingest_keeps_exactly_the_configured_people_in_every_split(env, bare_project, monkeypatch):
    (bare_project.parent / "shared").symlink_to(PROJECT.parent / "shared")  # ../shared from the copy
    monkeypatch.chdir(bare_project)
    root, dataset_name = BENCHMARK_ENVS[env]
    subset = _config(env, bare_project / "conf")[1]["ingest"]["subset"]
    forget, retain = subset["forget_people"], subset.get("retain_people") or []
    people = {"forget": forget, "forget_eval": forget, "retain": forget + retain, "retain_eval": forget + retain}
    people["full"] = forget + retain

    bootstrap_project(bare_project)
    with KedroSession.create(project_path=bare_project, env=env) as session:
        session.run(pipeline_names=["ingest"])

    assert not (bare_project / "data" / "03_primary").exists()  # nothing where the demo's outputs live
    primary = bare_project / root / "03_primary"
    for split, file in RAW_FILES.items():
        records = json.loads((KNOWUNDO / file).read_text(encoding="utf-8"))
        expected = sorted(normalise_text(r["text"]) for r in records if _about(r, people[split]))
        kept = pd.read_parquet(primary / f"{split}_set.parquet")
        assert sorted(kept["question"]) == expected, split
        assert set(kept["subject"]) <= set(people[split]), split
        assert all(_about({"text": q, "labels": a}, [who]) for who, q, a in zip(kept["subject"], kept["question"], kept["answer"]))
    assert set(pd.read_parquet(primary / "forget_set.parquet")["subject"]).isdisjoint(retain)

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{bare_project.parent / 'mlflow.db'}")
    (run,) = client.search_runs(client.get_experiment_by_name("relearn").experiment_id)
    assert run.data.tags["dataset_name"] == dataset_name
    assert run.info.run_name == f"ingest-{dataset_name}"


@pytest.mark.skipif(not KNOWUNDO.is_dir(), reason=f"KnowUnDo is not at {KNOWUNDO} (benchmarks data, not in the repo)")
def test_the_full_profile_names_every_person_of_every_record():
    forget_people = _config("bench_privacy_full")[1]["ingest"]["subset"]["forget_people"]
    for file in RAW_FILES.values():
        records = json.loads((KNOWUNDO / file).read_text(encoding="utf-8"))
        unnamed = [r["text"] for r in records if not _about(r, forget_people)]
        assert not unnamed, f"{file}: records about nobody in conf/bench_privacy_full: {unnamed[:3]}"
