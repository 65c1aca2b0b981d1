"""Save one output with a file dataset and hang half-way through writing it, for a SIGKILL test.

    python atomic_write_worker.py KIND PATH {atomic,plain}

KIND is parquet, csv, json, text or matplotlib; ``atomic`` uses our dataset, ``plain`` the
kedro-datasets one it subclasses. The first write into the output's folder puts half its bytes on
disk, prints ``stalled`` and sleeps: the fault is in fsspec's local file, our code runs unchanged.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from fsspec.implementations.local import LocalFileOpener  # noqa: E402
from kedro_datasets.json import JSONDataset  # noqa: E402
from kedro_datasets.matplotlib import MatplotlibDataset  # noqa: E402
from kedro_datasets.pandas import CSVDataset, ParquetDataset  # noqa: E402
from kedro_datasets.text import TextDataset  # noqa: E402

from relearn_pipeline.datasets.atomic_files import (  # noqa: E402
    AtomicCSVDataset,
    AtomicJSONDataset,
    AtomicMatplotlibDataset,
    AtomicParquetDataset,
    AtomicTextDataset,
)

# kind -> (file suffix, atomic class, plain class)
KINDS = {
    "parquet": (".parquet", AtomicParquetDataset, ParquetDataset),
    "csv": (".csv", AtomicCSVDataset, CSVDataset),
    "json": (".json", AtomicJSONDataset, JSONDataset),
    "text": (".md", AtomicTextDataset, TextDataset),
    "matplotlib": (".png", AtomicMatplotlibDataset, MatplotlibDataset),
}


def payload(kind: str, version: int):
    """Version ``version`` of an output of this kind (each version writes different bytes)."""
    rows = 2000 * version
    if kind in ("parquet", "csv"):
        return pd.DataFrame({"id": range(rows), "answer": [f"answer {i} of v{version}" for i in range(rows)]})
    if kind == "json":
        return {"version": version, "answers": [f"answer {i}" for i in range(rows)]}
    if kind == "text":
        return "".join(f"line {i} of version {version}\n" for i in range(rows))
    figure, axes = plt.subplots()
    axes.plot(range(10 * version))
    return figure


def dataset(kind: str, path: str, variant: str):
    _, atomic, plain = KINDS[kind]
    return (atomic if variant == "atomic" else plain)(filepath=path)


def stall_first_write_into(folder: Path) -> None:
    """The first write to a file in ``folder`` writes half its data, flushes, prints and hangs."""
    real_write = LocalFileOpener.write

    def write(self, data):
        if Path(self.path).parent != folder:
            return real_write(self, data)
        real_write(self, data[: max(1, len(data) // 2)])
        self.f.flush()
        print("stalled", flush=True)
        time.sleep(600)

    LocalFileOpener.write = write


def main() -> None:
    kind, path, variant = sys.argv[1:4]
    stall_first_write_into(Path(path).parent)
    dataset(kind, path, variant).save(payload(kind, 2))
    print("saved", flush=True)


if __name__ == "__main__":
    main()
