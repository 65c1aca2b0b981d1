"""What the benchmark scripts share: the offline environment, a runnable copy of the project, and
the headline figures each script writes with `--json PATH` for `run_all.py`'s summary table.

A headline file is ``{"benchmark": name, "settings": "...", "rows": [row, ...]}``; a row compares
two sides of one measure, ``left`` against ``right`` (``right`` is null for a figure that has no
counterpart), and ``ratio`` says how `run_all.py` shows left / right: "x" (a factor) or "%" (a share).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# Under a shared CPU, OpenMP threads that spin while waiting make torch several times slower.
ENV = {
    **os.environ,
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "KEDRO_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE"),
}


def project_copy(where: Path) -> Path:
    """A runnable copy of the project in ``where/project``: conf (without local), pyproject, the
    demo data, and its own data directory and MLflow store, so the project's own are left alone."""
    copy = where / "project"
    copy.mkdir()
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    shutil.copytree(ROOT / "conf", copy / "conf", ignore=shutil.ignore_patterns("local"))
    (copy / "conf" / "local").mkdir()
    (copy / "src").mkdir()  # kedro wants it; relearn_pipeline itself is installed
    shutil.copytree(ROOT / "data" / "01_raw" / "demo", copy / "data" / "01_raw" / "demo")
    mlflow_yml = copy / "conf" / "base" / "mlflow.yml"
    text, count = re.subn(
        r"mlflow_tracking_uri: .*", f"mlflow_tracking_uri: sqlite:///{copy / 'mlflow.db'}", mlflow_yml.read_text()
    )
    if count != 1:
        raise SystemExit(f"{mlflow_yml}: no `mlflow_tracking_uri:` line to point at the copy's own store")
    mlflow_yml.write_text(text)
    return copy


def row(
    measure: str,
    left: tuple[str, float],
    right: tuple[str, float] | None,
    unit: str,
    ratio: str = "x",
) -> dict[str, Any]:
    """One headline figure: ``measure`` of the ``left`` side (label, value) against the ``right`` one."""
    return {"measure": measure, "left": _side(left), "right": _side(right), "unit": unit, "ratio": ratio}


def _side(pair: tuple[str, float] | None) -> dict[str, Any] | None:
    return None if pair is None else {"label": pair[0], "value": float(pair[1])}


def write_headline(path: str | Path | None, benchmark: str, settings: str, rows: list[dict[str, Any]]) -> None:
    """Write the headline figures for `run_all.py` (nothing when ``path`` is None)."""
    if path is None:
        return
    payload = {"benchmark": benchmark, "settings": settings, "rows": rows}
    Path(path).write_text(json.dumps(payload, indent=2), encoding="utf-8")
