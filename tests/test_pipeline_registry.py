"""The registry as `kedro run --pipelines <names>` sees it (Kedro 1.7 loads only what is requested)."""

import pytest
from kedro.framework.project import configure_project, pipelines

from relearn_pipeline.pipeline_registry import STAGES


@pytest.fixture(autouse=True)
def _project():
    configure_project("relearn_pipeline")
    yield
    pipelines.set_requested(None)


def _node_names(name: str) -> set[str]:
    pipelines.set_requested([name])  # what KedroSession.run does before looking the name up
    return {node.name for node in pipelines[name].nodes}


def test_unlearn_is_every_stage_and_stages_feed_forward():
    stage_nodes = {stage: _node_names(stage) for stage in STAGES}
    assert all(stage_nodes.values()), "every stage has nodes"
    assert _node_names("unlearn") == set().union(*stage_nodes.values())
    stages = []
    for stage in STAGES:
        pipelines.set_requested([stage])
        stages.append(pipelines[stage])
    for i, stage in enumerate(stages):  # no stage reads what a later stage writes
        for later in stages[i + 1 :]:
            assert not stage.inputs() & later.all_outputs(), (STAGES[i], stage.inputs() & later.all_outputs())


def test_default_is_unlearn_and_compare_is_separate():
    assert _node_names("__default__") == _node_names("unlearn")
    compare = _node_names("compare")
    assert compare and not compare & _node_names("unlearn")
