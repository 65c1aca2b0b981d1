"""Read the finished runs of an MLflow experiment as a table (one row per run)."""

from __future__ import annotations

from typing import Any

import mlflow
import pandas as pd
from kedro.io import AbstractDataset, DatasetError
from mlflow.tracking import MlflowClient


class MlflowRunsDataset(AbstractDataset[None, pd.DataFrame]):
    """Loads `run_id, run_name, status, start_time, tags.*, params.*, metrics.*` for an experiment.

    The tracking URI defaults to the one kedro-mlflow set up for this session (conf/base/mlflow.yml).
    Read-only: saving raises.
    """

    def __init__(
        self,
        experiment: str,
        tracking_uri: str | None = None,
        status: str = "FINISHED",
        metadata: dict[str, Any] | None = None,
    ):
        self._experiment = experiment
        self._tracking_uri = tracking_uri
        self._status = status
        self.metadata = metadata

    def _load(self) -> pd.DataFrame:
        client = MlflowClient(tracking_uri=self._tracking_uri or mlflow.get_tracking_uri())
        experiment = client.get_experiment_by_name(self._experiment)
        if experiment is None:
            raise DatasetError(
                f"MLflow experiment {self._experiment!r} does not exist at {client.tracking_uri}; "
                "run `kedro run --pipeline unlearn` first (or the sweep: `make sweep`)."
            )
        rows = []
        for run in client.search_runs(
            [experiment.experiment_id], filter_string=f"attributes.status = '{self._status}'", max_results=10_000
        ):
            row: dict[str, Any] = {
                "run_id": run.info.run_id,
                "run_name": run.info.run_name,
                "status": run.info.status,
                "start_time": run.info.start_time,
                "end_time": run.info.end_time,
            }
            row.update({f"tags.{k}": v for k, v in run.data.tags.items() if not k.startswith("mlflow.")})
            row.update({f"params.{k}": v for k, v in run.data.params.items()})
            row.update({f"metrics.{k}": v for k, v in run.data.metrics.items()})
            rows.append(row)
        return pd.DataFrame(rows)

    def _save(self, data: None) -> None:
        raise DatasetError("MlflowRunsDataset is read-only: runs are written by kedro-mlflow during `kedro run`.")

    def _describe(self) -> dict[str, Any]:
        return {"experiment": self._experiment, "tracking_uri": self._tracking_uri, "status": self._status}
