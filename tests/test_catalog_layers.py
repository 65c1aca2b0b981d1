"""kedro-viz layers: every catalog entry has one, and the graph reads left to right in stage order."""

from __future__ import annotations

from pathlib import Path

import yaml
from kedro.pipeline import Pipeline

from relearn_pipeline.pipelines.augment import create_pipeline as augment
from relearn_pipeline.pipelines.compare import create_pipeline as compare
from relearn_pipeline.pipelines.evaluate import create_pipeline as evaluate
from relearn_pipeline.pipelines.finetune import create_pipeline as finetune
from relearn_pipeline.pipelines.ingest import create_pipeline as ingest
from relearn_pipeline.pipelines.target import create_pipeline as target
from relearn_pipeline.pipelines.verify import create_pipeline as verify

CONF = Path(__file__).resolve().parents[1] / "conf" / "base"
# Kedro's data-layer convention, which is also the order of the paper's stages here.
ORDER = ["raw", "intermediate", "primary", "feature", "model_input", "models", "model_output", "reporting"]


def _layers() -> dict[str, str]:
    layers = {}
    for path in sorted(CONF.glob("catalog_*.yml")):
        for name, entry in yaml.safe_load(path.read_text()).items():
            if name.startswith("_"):  # YAML anchors, ignored by Kedro
                continue
            layer = ((entry.get("metadata") or {}).get("kedro-viz") or {}).get("layer")
            assert layer in ORDER, f"{path.name}: {name} has kedro-viz layer {layer!r}, not one of {ORDER}"
            layers[name] = layer
    return layers


def test_every_catalog_entry_has_a_known_layer():
    layers = _layers()
    assert len(layers) > 40
    assert {"raw", "primary", "model_input", "models", "model_output", "reporting"} <= set(layers.values())


def test_no_dataset_feeds_one_in_an_earlier_layer():
    layers = _layers()
    pipeline: Pipeline = sum((p() for p in (ingest, target, augment, verify, finetune, evaluate, compare)), Pipeline([]))
    # Ancestors of every dataset through the node graph (memory datasets without a layer included).
    parents: dict[str, set[str]] = {}
    for node in pipeline.nodes:
        for out in node.outputs:
            parents.setdefault(out, set()).update(node.inputs)
    ancestors: dict[str, set[str]] = {}

    def ancestors_of(name: str) -> set[str]:
        if name not in ancestors:
            ancestors[name] = set()
            for parent in parents.get(name, ()):
                ancestors[name] |= {parent} | ancestors_of(parent)
        return ancestors[name]

    backwards = [
        f"{a} ({layers[a]}) -> {b} ({layers[b]})"
        for b in layers
        for a in ancestors_of(b)
        if a in layers and ORDER.index(layers[a]) > ORDER.index(layers[b])
    ]
    assert backwards == []
    used = [layer for layer in ORDER if layer in {layers[d] for d in pipeline.datasets() if d in layers}]
    assert used[0] == "raw" and used[-1] == "reporting"
