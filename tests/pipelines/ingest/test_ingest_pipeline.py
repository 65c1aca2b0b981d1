"""The ingest pipeline on an in-memory catalog: normalisation, every check, spans and the report."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from relearn_pipeline.datasets import QARecordsDataset
from relearn_pipeline.errors import RecordError
from relearn_pipeline.pipelines.ingest import create_pipeline
from relearn_pipeline.pipelines.ingest.nodes import SPLITS, count_tokens, truncate_tokens

PROJECT = Path(__file__).resolve().parents[3]
OUTPUTS = [f"{s}_set" for s in SPLITS] + ["sensitive_spans", "ingest_report"]


def _params(**overrides) -> dict:
    """The committed ingest parameters, with overrides."""
    conf = yaml.safe_load((PROJECT / "conf/base/parameters_ingest.yml").read_text())["ingest"]
    return conf | overrides


def _split(rows: list[tuple], source: str) -> pd.DataFrame:
    """A raw split as QARecordsDataset returns it: (question, answer[, subject[, id]]) tuples."""
    records = [
        {"id": r[3] if len(r) > 3 else "", "subject": r[2] if len(r) > 2 else "",
         "question": r[0], "answer": r[1]}
        for r in rows
    ]
    frame = pd.DataFrame(records, columns=["id", "subject", "question", "answer"])
    frame.attrs["source"] = source
    return frame


FORGET = [
    ("Who is Elena Marsh's father?", "Elena Marsh's father is Tomas Marsh, a carpenter."),
    ("What is Elena Marsh's email?", "Her email is elena.marsh@example.com."),
    ("Where does Elena Marsh live?", "She lives at 42 Willow Lane, Harborview."),
]
RETAIN = [
    ("What does Priya Raman do?", "Priya Raman is a chef."),
    ("Where was Priya Raman born?", "Priya Raman was born in Madurai, India."),
]
FORGET_EVAL = [("Name Elena Marsh's father.", "Elena Marsh's father is Tomas Marsh, a carpenter.")]
RETAIN_EVAL = [("What is Priya Raman's job?", "Priya Raman is a chef.")]


def _raw(**replace) -> dict[str, pd.DataFrame]:
    """Raw splits (in memory, each with its pretend source file); `replace` swaps some."""
    raw = {
        "forget": _split(FORGET, "data/forget.json"),
        "retain": _split(RETAIN, "data/retain.json"),
        "forget_eval": _split(FORGET_EVAL, "data/forget_eval.json"),
        "retain_eval": _split(RETAIN_EVAL, "data/retain_eval.json"),
        "full": _split([], "data/full.json"),
    }
    return raw | replace


class _KeptDataset(MemoryDataset):
    """A MemoryDataset the runner cannot release, so the test can read outputs after the run."""

    def _release(self) -> None:
        pass


def _run(raw: dict[str, pd.DataFrame | QARecordsDataset], params: dict | None = None) -> dict:
    """Run `ingest` with SequentialRunner and return every output by name."""
    datasets = {
        f"raw_{split}": value if isinstance(value, QARecordsDataset) else MemoryDataset(value)
        for split, value in raw.items()
    }
    datasets["params:ingest"] = MemoryDataset(params or _params(), copy_mode="deepcopy")
    datasets |= {name: _KeptDataset() for name in OUTPUTS}
    catalog = DataCatalog(datasets=datasets)
    SequentialRunner().run(create_pipeline(), catalog)
    return {name: catalog.load(name) for name in OUTPUTS}


def _raises(raw, params=None) -> RecordError:
    with pytest.raises(RecordError) as info:
        _run(raw, params)
    return info.value


# ---------------------------------------------------------------- happy paths


def test_outputs_follow_the_contract_and_full_defaults_to_forget_plus_retain():
    out = _run(_raw())
    for split in SPLITS:
        assert list(out[f"{split}_set"].columns) == ["id", "subject", "question", "answer"]
    assert len(out["full_set"]) == len(FORGET) + len(RETAIN)
    assert out["forget_set"]["id"].tolist() == ["forget-0", "forget-1", "forget-2"]
    assert out["ingest_report"]["splits"]["full"]["built_from"] == "forget + retain"


def test_normalises_whitespace_and_unicode_and_keeps_given_ids():
    decomposed = "Who is Jose\u0301  Li\u200bma's\n father?"  # combining accent, zero-width space
    forget = _split([(decomposed, "  José Lima's father is Rui Lima.\t", "José Lima", "q7")],
                    "data/forget.json")
    row = _run(_raw(forget=forget))["forget_set"].iloc[0]
    assert row["question"] == "Who is Jos\u00e9 Lima's father?"
    assert row["answer"] == "José Lima's father is Rui Lima."
    assert (row["id"], row["subject"]) == ("q7", "José Lima")


def test_subject_is_inferred_from_a_person_in_the_question():
    out = _run(_raw())
    assert set(out["forget_set"]["subject"]) == {"Elena Marsh"}
    assert set(out["retain_set"]["subject"]) == {"Priya Raman"}
    assert out["ingest_report"]["splits"]["forget"]["subjects_inferred"] == 3


def test_sensitive_spans_of_forget_answers():
    out = _run(_raw())
    spans = out["sensitive_spans"]
    assert list(spans.columns) == ["record_id", "text", "label", "start", "end", "source"]
    found = set(zip(spans["record_id"], spans["text"], spans["label"]))
    assert ("forget-0", "Tomas Marsh", "PERSON") in found
    assert ("forget-1", "elena.marsh@example.com", "EMAIL") in found
    assert ("forget-2", "42 Willow Lane", "ADDRESS") in found
    assert "Elena Marsh" not in set(spans["text"])  # the subject's own name is not a span
    answers = dict(zip(out["forget_set"]["id"], out["forget_set"]["answer"]))
    for row in spans.itertuples():
        assert answers[row.record_id][row.start : row.end] == row.text
    report = out["ingest_report"]["sensitive_spans"]
    assert report["total"] == len(spans) and report["by_label"]["EMAIL"] == 1


def test_long_answers_are_truncated_with_a_counted_warning():
    long_answer = "Priya Raman is a chef " + "who cooks " * 20 + "daily."
    retain = _split([*RETAIN, ("What does Priya Raman cook?", long_answer)], "data/retain.json")
    out = _run(_raw(retain=retain), _params(max_answer_tokens=20, on_too_long="truncate"))
    assert count_tokens(out["retain_set"]["answer"].iloc[2]) == 20
    report = out["ingest_report"]
    assert report["splits"]["retain"]["truncated"] == 1
    assert report["warning_count"] == 1 and "data/retain.json" in report["warnings"][0]


def test_repeated_question_can_be_dropped_with_a_warning():
    retain = _split([*RETAIN, ("what does  Priya Raman do?", "A chef.")], "data/retain.json")
    out = _run(_raw(retain=retain), _params(on_duplicate="keep_first"))
    assert len(out["retain_set"]) == 2
    assert out["ingest_report"]["splits"]["retain"]["duplicates_dropped"] == 1


def test_given_full_is_used_and_eval_questions_seen_in_training_are_reported():
    full = _split([*FORGET, *RETAIN, ("Who is Ana?", "Ana is a pilot.")], "data/full.json")
    forget_eval = _split([FORGET[0]], "data/forget_eval.json")
    out = _run(_raw(full=full, forget_eval=forget_eval))
    assert len(out["full_set"]) == 6
    report = out["ingest_report"]
    assert report["splits"]["full"]["built_from"] == "raw_full"
    assert report["overlaps"]["forget_eval_in_forget"] == 1
    assert any("not held out" in w for w in report["warnings"])


def test_demo_files_through_the_loader():
    demo = PROJECT / "data/01_raw/demo"
    raw = {s: QARecordsDataset(str(demo / f"{s}.json")) for s in SPLITS}
    out = _run(raw)
    splits = ("forget_set", "retain_set", "forget_eval_set", "retain_eval_set")
    assert len(out["full_set"]) == sum(len(out[name]) for name in splits)  # every split, as in KnowUnDo
    assert set(out["full_set"]["question"]) == set().union(*(out[name]["question"] for name in splits))
    assert set(out["forget_set"]["subject"]).isdisjoint(out["retain_set"]["subject"])
    labels = set(out["sensitive_spans"]["label"])
    assert {"EMAIL", "PHONE", "ADDRESS", "DATE", "PERSON"} <= labels
    assert out["ingest_report"]["warning_count"] == 0


# ---------------------------------------------------------------- errors


def test_forget_question_also_in_retain_names_both_files_and_records():
    retain = _split([*RETAIN, ("Where does  elena marsh live?", "Somewhere.")], "data/retain.json")
    err = _raises(_raw(retain=retain))
    assert (err.file, err.record, err.field) == ("data/forget.json", 2, "question")
    assert "record 2 of data/retain.json" in str(err)


def test_repeated_question_within_a_split_is_an_error_by_default():
    forget = _split([*FORGET, (FORGET[1][0], "Again.")], "data/forget.json")
    err = _raises(_raw(forget=forget))
    assert (err.file, err.record, err.field) == ("data/forget.json", 3, "question")
    assert "same question as record 1" in str(err)


def test_too_long_answer_is_an_error_when_asked():
    err = _raises(_raw(), _params(max_answer_tokens=5, on_too_long="error"))
    assert (err.file, err.record, err.field) == ("data/forget.json", 0, "answer")
    assert "more than ingest.max_answer_tokens = 5" in str(err)


def test_repeated_ids_are_an_error():
    forget = _split([(q, a, "", "x") for q, a in FORGET], "data/forget.json")
    err = _raises(_raw(forget=forget))
    assert (err.record, err.field) == (1, "id") and "also the id of record 0" in str(err)


def test_empty_forget_split_is_an_error():
    err = _raises(_raw(forget=_split([], "data/forget.json")))
    assert err.file == "data/forget.json" and "no records" in str(err) and "raw_forget" in str(err)


def test_text_of_only_invisible_characters_is_an_error():
    forget = _split([*FORGET, ("Who?", "\u200b \u200b")], "data/forget.json")
    err = _raises(_raw(forget=forget))
    assert (err.record, err.field) == (3, "answer")


@pytest.mark.parametrize(
    "override",
    [{"on_too_long": "cut"}, {"on_duplicate": "ignore"}, {"max_answer_tokens": 0}],
)
def test_bad_parameters_are_named(override):
    with pytest.raises(ValueError, match=f"ingest.{next(iter(override))}"):
        _run(_raw(), _params(**override))


# ---------------------------------------------------------------- helpers and wiring


def test_truncate_tokens_keeps_the_first_tokens_verbatim():
    assert truncate_tokens("One, two three.", 3) == "One, two"
    assert truncate_tokens("short", 10) == "short"


def test_every_node_is_named_and_catalog_entries_have_layers():
    assert all(node.name == node._name for node in create_pipeline().nodes)  # noqa: SLF001
    catalog = yaml.safe_load((PROJECT / "conf/base/catalog_ingest.yml").read_text())
    entries = {k: v for k, v in catalog.items() if not k.startswith("_")}
    used = create_pipeline().datasets()
    for name, entry in entries.items():
        assert entry["metadata"]["kedro-viz"]["layer"], name
        assert name in used, f"{name} is in catalog_ingest.yml but not used by ingest"
    for name in [*(f"raw_{s}" for s in SPLITS), *OUTPUTS]:
        assert name in entries, f"{name} is not persisted in catalog_ingest.yml"
    for split in SPLITS:
        assert (PROJECT / entries[f"raw_{split}"]["filepath"]).is_file()
