"""Benchmark subsets by person: keep only the records about the people `ingest.subset` names.

Benchmarks such as KnowUnDo have no subject column, and their files are organised by person, not
by record: every fictitious author of KnowUnDo's privacy split has private facts in
`unlearn_*.json` and public facts in `retention_*.json`, so the same people are in the forget and
the retain files. A subset therefore picks people and keeps all their records, in every split:

- `forget_people` are unlearned: their records form the forget splits, and their records in the
  retain splits stay there (public facts of a forgotten person must survive: the benchmark's point);
- `retain_people` are only retained: their records are kept in the retain splits and in full, and
  they have none in the forget splits.

A record is about the first chosen person its `subject` names, else its question, else its answer
(whole words, case-insensitive), and that person becomes its subject.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from typing import Any

import pandas as pd

from relearn_pipeline.errors import RecordError

logger = logging.getLogger(__name__)

WHERE = "parameters_ingest.yml: ingest.subset"
# Which people's records each split keeps.
GROUPS_BY_SPLIT = {
    "forget": ("forget_people",),
    "forget_eval": ("forget_people",),
    "retain": ("forget_people", "retain_people"),
    "retain_eval": ("forget_people", "retain_people"),
    "full": ("forget_people", "retain_people"),
}
# The split in which a person of each group must have records, or the subset is misconfigured.
HOME_SPLIT = {"forget_people": "forget", "retain_people": "retain"}


def people_for_split(subset: dict[str, Any], split: str) -> list[str]:
    """The chosen people whose records `split` keeps, forget people first."""
    return [name for group in GROUPS_BY_SPLIT[split] for name in subset.get(group) or []]


def _name_pattern(name: str) -> re.Pattern[str]:
    """`name` as whole words, case-insensitive ("Ana Li" matches "ana li's", not "Diana Lima")."""
    name = unicodedata.normalize("NFC", name.strip())  # the records' text is NFC already
    return re.compile(rf"(?<!\w){re.escape(name.casefold())}(?!\w)")


def person_named(texts: tuple[str, ...], people: list[str], patterns: list[re.Pattern[str]]) -> str:
    """The first of `people` named in the first of `texts` that names any, else ""."""
    for text in texts:
        folded = text.casefold()
        for name, pattern in zip(people, patterns):
            if pattern.search(folded):
                return name
    return ""


def _check_home_split(counts: dict[str, int], subset: dict[str, Any], split: str, source: str) -> None:
    """Stop when a chosen person has no record in the split their group is defined by (a typo)."""
    for group, home in HOME_SPLIT.items():
        if split != home:
            continue
        missing = [name for name in subset.get(group) or [] if counts[name] == 0]
        if missing:
            raise RecordError(
                source,
                f"{WHERE}.{group} names {missing}, but no record of this {split} split is about them",
                hint="Check the spelling against the names in the file's questions.",
            )


def select_people(
    frame: pd.DataFrame, subset: dict[str, Any] | None, split: str, source: str, log: dict[str, Any]
) -> pd.DataFrame:
    """The records of `frame` about the people `split` keeps, each with that person as its subject."""
    if not subset:
        return frame
    people = people_for_split(subset, split)
    patterns = [_name_pattern(name) for name in people]
    subjects = pd.Series(
        [person_named(texts, people, patterns) for texts in zip(frame["subject"], frame["question"], frame["answer"])],
        index=frame.index,
        dtype=object,
    )
    counts = {name: int((subjects == name).sum()) for name in people}
    _check_home_split(counts, subset, split, source)
    if not any(counts.values()):
        raise RecordError(
            source,
            f"no record of the {split} split is about any of the people it keeps ({WHERE}: {people})",
            hint="Choose people with records in every split, or set ingest.subset: null.",
        )
    absent = [name for name, count in counts.items() if count == 0]
    if absent:
        message = f"{source}: no {split} record about {absent} ({WHERE})"
        logger.warning(message)
        log["warnings"].append(message)
    log["subset"] = {"records_in_file": len(frame), "records_kept": int((subjects != "").sum()), "by_person": counts}
    kept = frame[subjects != ""].copy()
    kept["subject"] = subjects[subjects != ""]
    return kept
