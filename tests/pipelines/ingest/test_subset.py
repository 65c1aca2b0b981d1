"""`ingest.subset`: benchmark subsets by person, through the whole ingest pipeline in memory."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from relearn_pipeline.errors import RecordError
from relearn_pipeline.params import ParameterError, validate_parameters
from relearn_pipeline.pipelines.ingest import create_pipeline
from relearn_pipeline.pipelines.ingest.nodes import SPLITS

PROJECT = Path(__file__).resolve().parents[3]
OUTPUTS = [f"{s}_set" for s in SPLITS] + ["ingest_report"]
SUBSET = {"forget_people": ["Ana Li", "Jos\u00e9 Lima"], "retain_people": ["Mei Chen"]}

# KnowUnDo-like: no subject column, the same people in the forget and the retain files.
RAW = {
    "forget": [
        ("What is Ana Li's email?", "Ana Li's email is ana@li.example."),
        ("Where does ana li live?", "She lives at 4 Elm Road."),
        ("Who is Jose\u0301 Lima's mother?", "His mother is Rosa Lima, a nurse."),
        ("What is Mei Chen's phone number?", "Mei Chen's number is 555-0199."),  # a retain person
        ("Where does Diana Lima live?", "Diana Lima lives at 9 Oak Street."),  # nobody chosen
    ],
    "forget_eval": [
        ("Why does 4 Elm Road matter?", "It is where Ana Li writes."),  # named in the answer only
        ("Which email does Mei Chen use?", "Mei Chen uses mei@chen.example."),
    ],
    "retain": [
        ("What does Ana Li write?", "Ana Li writes crime novels."),
        ("Which prize did Mei Chen win?", "Mei Chen won the Lotus Prize."),
        ("Where was Diana Lima born?", "Diana Lima was born in Porto."),
    ],
    "retain_eval": [("What genre is Mei Chen known for?", "Mei Chen is known for poetry.")],
    "full": [
        ("What is Ana Li's email?", "Ana Li's email is ana@li.example."),
        ("What is Mei Chen's phone number?", "Mei Chen's number is 555-0199."),
        ("Where was Diana Lima born?", "Diana Lima was born in Porto."),
    ],
}


def _frame(split: str, rows: list[tuple[str, str]]) -> pd.DataFrame:
    frame = pd.DataFrame([{"id": "", "subject": "", "question": q, "answer": a} for q, a in rows])
    frame.attrs["source"] = f"bench/{split}.json"
    return frame


class _Kept(MemoryDataset):
    def _release(self) -> None:  # keep outputs readable after the run
        pass


def _ingest(subset: dict | None, raw: dict | None = None) -> dict:
    params = yaml.safe_load((PROJECT / "conf/base/parameters_ingest.yml").read_text())["ingest"] | {"subset": subset}
    datasets = {f"raw_{split}": MemoryDataset(_frame(split, rows)) for split, rows in (raw or RAW).items()}
    datasets["params:ingest"] = MemoryDataset(params, copy_mode="deepcopy")
    datasets |= {name: _Kept() for name in OUTPUTS}
    catalog = DataCatalog(datasets=datasets)
    SequentialRunner().run(create_pipeline(), catalog)
    return {name: catalog.load(name) for name in OUTPUTS}


def test_each_split_keeps_the_records_of_its_people_with_the_person_as_subject():
    out = _ingest(SUBSET)
    subjects = {split: out[f"{split}_set"]["subject"].tolist() for split in SPLITS}
    assert subjects["forget"] == ["Ana Li", "Ana Li", "José Lima"]  # case and Unicode form ignored
    assert subjects["forget_eval"] == ["Ana Li"]  # Mei Chen is retained, so never in a forget split
    assert subjects["retain"] == ["Ana Li", "Mei Chen"]  # public facts of a forgotten person stay
    assert subjects["retain_eval"] == ["Mei Chen"]
    assert subjects["full"] == ["Ana Li", "Mei Chen"]
    # ids keep the record's index in its file, so a subset record can be traced back
    assert out["forget_set"]["id"].tolist() == ["forget-0", "forget-1", "forget-2"]
    report = out["ingest_report"]["splits"]["forget"]["subset"]
    assert report == {"records_in_file": 5, "records_kept": 3, "by_person": {"Ana Li": 2, "José Lima": 1}}


def test_a_name_matches_whole_words_only():
    raw = RAW | {"forget": [("What is Ana Lie's email?", "x@y.example is it."), ("Is Ana Li a pen name?", "No, it is hers.")]}
    out = _ingest({"forget_people": ["Ana Li"], "retain_people": ["Mei Chen"]}, raw)
    assert out["forget_set"]["question"].tolist() == ["Is Ana Li a pen name?"]


def test_a_split_with_none_of_its_people_stops_the_run():
    with pytest.raises(RecordError, match=r"bench/retain_eval\.json: no record of the retain_eval split is about any"):
        _ingest({"forget_people": ["Ana Li"]})  # retain_eval asks only about Mei Chen


def test_without_a_subset_every_record_is_kept():
    out = _ingest(None)
    assert [len(out[f"{split}_set"]) for split in SPLITS] == [len(RAW[split]) for split in SPLITS]
    assert "subset" not in out["ingest_report"]["splits"]["forget"]


def test_a_forget_person_named_by_no_forget_record_stops_the_run_naming_file_and_key():
    with pytest.raises(RecordError, match=r"bench/forget\.json: .*ingest\.subset\.forget_people names \['Ana Lee'\]"):
        _ingest({"forget_people": ["Ana Li", "Ana Lee"]})


def test_a_retain_person_named_by_no_retain_record_stops_the_run():
    with pytest.raises(RecordError, match=r"bench/retain\.json: .*retain_people names \['Bo Wu'\]"):
        _ingest({"forget_people": ["Ana Li"], "retain_people": ["Bo Wu"]})


def test_a_person_missing_from_an_eval_split_is_a_reported_warning():
    out = _ingest(SUBSET)
    warnings = out["ingest_report"]["warnings"]
    assert any("bench/forget_eval.json: no forget_eval record about ['José Lima']" in w for w in warnings), warnings


@pytest.mark.parametrize(
    ("subset", "words"),
    [
        ({"forget_people": []}, "at least 1 item"),
        ({"forget_people": ["Ana Li"], "retain_people": ["ana li"]}, "named more than once"),
        ({"forget_people": ["Ana Li"], "retain": ["Mei Chen"]}, "unknown key"),
    ],
)
def test_a_bad_subset_is_rejected_before_any_node_runs(subset, words):
    with pytest.raises(ParameterError) as caught:
        validate_parameters({"ingest": {"subset": subset}})
    (problem,) = caught.value.problems
    assert problem.startswith("parameters_ingest.yml: ingest.subset") and words in problem, problem
