"""kedro-datasets' file datasets, saved whole or not at all.

kedro-datasets opens the output file itself and writes into it, so a save that fails or is killed
half-way leaves a truncated file under the final name, which the next run (and
``--only-missing-outputs``) takes as complete. These subclasses hand the parent's ``save`` a
temporary sibling path instead and rename it onto the final name only once it is written
(``atomic.atomic_file``). Loading, ``exists()`` and every option are the parent's.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from kedro.io.core import get_filepath_str
from kedro_datasets.json import JSONDataset
from kedro_datasets.matplotlib import MatplotlibDataset
from kedro_datasets.pandas import CSVDataset, ParquetDataset
from kedro_datasets.text import TextDataset

from relearn_pipeline.atomic import atomic_file


class AtomicSave:
    """Mixin for a kedro-datasets file dataset: the parent's save writes to a temporary sibling."""

    _staging: PurePosixPath | None = None

    def _get_save_path(self) -> PurePosixPath:
        """The temporary path while a save is under way, else the parent's save path."""
        return self._staging or super()._get_save_path()

    def save(self, data: Any) -> None:
        """Write through a temporary sibling file and an atomic rename (local files only)."""
        if self._protocol != "file":  # object stores replace an object in one put already
            super().save(data)
            return
        target = get_filepath_str(super()._get_save_path(), self._protocol)
        with atomic_file(target) as staging:
            self._staging = PurePosixPath(staging.as_posix())
            try:
                super().save(data)
            finally:
                self._staging = None


class AtomicParquetDataset(AtomicSave, ParquetDataset):
    """``pandas.ParquetDataset``, saved atomically."""


class AtomicCSVDataset(AtomicSave, CSVDataset):
    """``pandas.CSVDataset``, saved atomically."""


class AtomicJSONDataset(AtomicSave, JSONDataset):
    """``json.JSONDataset``, saved atomically."""


class AtomicTextDataset(AtomicSave, TextDataset):
    """``text.TextDataset``, saved atomically."""


class AtomicMatplotlibDataset(AtomicSave, MatplotlibDataset):
    """``matplotlib.MatplotlibDataset`` for one figure per file, saved atomically."""
