import math

import matplotlib.pyplot as plt
import mlflow
import pytest
import yaml
from mlflow.tracking import MlflowClient

from relearn_pipeline.datasets import MlflowRunsDataset
from relearn_pipeline.pipelines.compare.nodes import (
    build_comparison_table,
    comparison_markdown,
    harmonic_mean,
    plot_comparison,
    select_method_runs,
)


@pytest.fixture
def compare_params(project_root):
    return yaml.safe_load((project_root / "conf/base/parameters_compare.yml").read_text())["compare"]


@pytest.fixture
def store(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment("relearn", artifact_location=str(tmp_path / "artifacts"))

    def log_run(method, dataset, metrics, finish=True, method_tag=None):
        tags = {"dataset_name": dataset, **({"finetune.method": method_tag} if method_tag else {})}
        run = client.create_run(experiment, tags=tags)
        if method:
            client.log_param(run.info.run_id, "finetune.method", method)
        for key, value in metrics.items():
            client.log_metric(run.info.run_id, key, value)
        if finish:
            client.set_terminated(run.info.run_id)
        return run.info.run_id

    return uri, log_run


def test_newest_evaluated_run_per_method_with_target_row_first(store, compare_params):
    uri, log_run = store
    before = {"evaluate.before.kfr": 0.1, "evaluate.before.krr": 0.9, "evaluate.before.ls.retain": 0.3}
    log_run("ga_gdr", "demo", {**before, "evaluate.after.kfr": 0.5, "evaluate.after.krr": 0.2, "evaluate.after.ls.retain": 0.1})
    log_run("ga_gdr", "demo", {**before, "evaluate.after.kfr": 0.6, "evaluate.after.krr": 0.25, "evaluate.after.ls.retain": 0.1})
    log_run("relearn_klr_gdr", "demo", {**before, "evaluate.after.kfr": 0.85, "evaluate.after.krr": 0.8, "evaluate.after.ls.retain": 0.3})
    log_run("npo_klr", "other-data", {**before, "evaluate.after.kfr": 0.99, "evaluate.after.krr": 0.99})
    log_run("npo_gdr", "demo", {"evaluate.after.kfr": 0.7}, finish=False)  # still running: ignored
    log_run(None, "demo", {})  # a compare run: no method, no metrics

    runs = MlflowRunsDataset(experiment="relearn", tracking_uri=uri).load()
    assert len(runs) == 5
    selected = select_method_runs(runs, compare_params, "demo")
    assert sorted(selected["method"]) == ["ga_gdr", "relearn_klr_gdr"]

    table = build_comparison_table(selected, compare_params)
    assert list(table["method"]) == ["target (before)", "relearn_klr_gdr", "ga_gdr"]
    assert table.loc[0, "KFR"] == pytest.approx(0.1)
    assert table.loc[2, "KFR"] == pytest.approx(0.6)  # the newer ga_gdr run wins
    # HM(KFR, KRR, LS_retain): relearn 3 / (1/0.85 + 1/0.8 + 1/0.3); the target row has its own.
    hm = table.set_index("method")["HM(KFR,KRR,LS_retain)"]
    assert hm["relearn_klr_gdr"] == pytest.approx(3 / (1 / 0.85 + 1 / 0.8 + 1 / 0.3))
    assert hm["ga_gdr"] == pytest.approx(3 / (1 / 0.6 + 1 / 0.25 + 1 / 0.1))
    assert hm["target (before)"] == pytest.approx(3 / (1 / 0.1 + 1 / 0.9 + 1 / 0.3))
    markdown = comparison_markdown(table)
    assert "| relearn_klr_gdr | 0.850 | 0.800 |" in markdown and "HM(KFR,KRR,LS_retain) |" in markdown.splitlines()[0]
    figure = plot_comparison(table, compare_params)
    assert [t.get_text() for t in figure.axes[0].texts] == list(table["method"])
    plt.close(figure)


def test_harmonic_mean_is_zero_with_a_zero_and_missing_with_a_gap():
    assert harmonic_mean([0.5, 0.5, 0.5]) == pytest.approx(0.5)
    assert harmonic_mean([0.0, 0.9, 0.3]) == 0.0  # forgets nothing: no credit for keeping everything
    assert math.isnan(harmonic_mean([0.5, None, 0.3])) and math.isnan(harmonic_mean([0.5, float("nan"), 0.3]))


def test_a_run_without_the_method_parameter_is_placed_by_its_method_tag(store, compare_params):
    # `kedro run --pipeline evaluate` logs no fine-tune parameter; RunNamingHook tags the method.
    uri, log_run = store
    log_run("ga_gdr", "demo", {"evaluate.after.kfr": 0.5}, method_tag="ga_gdr")
    log_run(None, "demo", {"evaluate.after.kfr": 0.6}, method_tag="npo_klr")
    log_run(None, "demo", {"evaluate.after.kfr": 0.9})  # neither: cannot be placed, left out
    runs = MlflowRunsDataset(experiment="relearn", tracking_uri=uri).load()
    selected = select_method_runs(runs, compare_params, "demo")
    assert dict(zip(selected["method"], selected["metrics.evaluate.after.kfr"], strict=True)) == {"ga_gdr": 0.5, "npo_klr": 0.6}


def test_no_evaluated_runs_explains_what_to_run(store, compare_params):
    uri, log_run = store
    log_run(None, "demo", {})
    runs = MlflowRunsDataset(experiment="relearn", tracking_uri=uri).load()
    with pytest.raises(ValueError, match="kedro run --pipeline unlearn"):
        select_method_runs(runs, compare_params, "demo")


def test_missing_experiment_is_a_clear_error(tmp_path):
    dataset = MlflowRunsDataset(experiment="nope", tracking_uri=f"sqlite:///{tmp_path / 'x.db'}")
    with pytest.raises(Exception, match="does not exist"):
        dataset.load()
    assert mlflow.active_run() is None


def test_compared_metric_keys_are_the_ones_the_catalog_logs(project_root, compare_params):
    # kedro-mlflow prefixes a metrics dataset's keys with its catalog name unless `prefix` is set.
    catalog = yaml.safe_load((project_root / "conf/base/catalog_evaluate.yml").read_text())
    prefix = catalog["metrics"]["prefix"]
    keys = list(compare_params["target_columns"].values()) + [
        key for key in compare_params["columns"].values() if not key.startswith("finetune.")
    ]
    assert all(key.startswith(f"{prefix}.before.") or key.startswith(f"{prefix}.after.") for key in keys)
