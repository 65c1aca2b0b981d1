"""The two UIs a user relies on, checked in a real (headless) Chromium the way a person uses them.

1. The MLflow UI (`mlflow server` on 127.0.0.1 against a store with two finished runs): the
   experiment page lists both runs; each run's page shows its KFR metric `evaluate.after.kfr`.
2. The static kedro-viz site (`kedro viz build` of this project, served by `python -m http.server`
   on 127.0.0.1): the pipeline's node names are on the page.

Chromium comes from Debian (`apt-get install chromium chromium-driver`, done by `.ci/run`); the
test is skipped only where /usr/bin/chromium is missing. Chromium resolves no host but 127.0.0.1
(`--host-resolver-rules`), so both UIs are also checked to work offline. Screenshots go to the
test's tmp dir, and also to $RELEARN_SCREENSHOTS_DIR when that is set (e.g.
data/08_reporting/screenshots).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
PROJECT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="Chromium is not installed (/usr/bin/chromium missing): `apt-get install -y chromium chromium-driver`",
)

# Two finished runs, as `make sweep` leaves them (names from hooks.RunNamingHook).
RUNS = {
    "unlearn-relearn_klr_gdr-demo": {"method": "relearn_klr_gdr", "kfr": 0.8125, "krr": 0.9375},
    "unlearn-npo_klr-demo": {"method": "npo_klr", "kfr": 0.6875, "krr": 0.5625},
}
# Nodes of the default (`unlearn`) pipeline, one per stage.
NODE_NAMES = ["check_splits", "make_target_model", "generate_question_variants", "verify_candidates",
              "finetune_adapter", "render_report"]
TIMEOUT_S = 90


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update({"KEDRO_DISABLE_TELEMETRY": "1", "DO_NOT_TRACK": "1", "HF_HUB_OFFLINE": "1",
                "TRANSFORMERS_OFFLINE": "1", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
                "PYTHONUNBUFFERED": "1",
                # Offline: any HTTP(S) call but to 127.0.0.1 goes to a closed local port and fails at once.
                "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
                "http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9",
                "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"})
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, process: subprocess.Popen, log: Path, timeout: float = TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(
                f"{process.args[:3]} exited ({process.returncode}) before {url} answered:\n{log.read_text()[-3000:]}"
            )
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url} did not answer within {timeout}s:\n{log.read_text()[-3000:]}")


def _start(args: list[str], log: Path, **kwargs) -> subprocess.Popen:
    handle = log.open("w")
    return subprocess.Popen(args, stdout=handle, stderr=subprocess.STDOUT, env=_env(),
                            start_new_session=True, **kwargs)


def _stop(process: subprocess.Popen) -> None:
    """Ends the server and the workers it started (its own process group, nothing else)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)


@pytest.fixture
def browser(tmp_path) -> Iterator:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    assert CHROMEDRIVER.exists(), f"{CHROMEDRIVER} is missing: `apt-get install -y chromium-driver`"
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1600,1000",
                 f"--user-data-dir={tmp_path / 'chromium-profile'}",
                 # No name resolves but the local servers: the UIs must work offline.
                 "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER),
                                                               log_output=str(tmp_path / "chromedriver.log")))
    driver.set_page_load_timeout(TIMEOUT_S)
    try:
        yield driver
    finally:
        driver.quit()


def _wait_for(driver, condition: Callable[[], bool], what: str, screenshot: Path) -> None:
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        WebDriverWait(driver, TIMEOUT_S, poll_frequency=0.5).until(lambda _: condition())
    except TimeoutException:
        driver.save_screenshot(str(screenshot.with_name(screenshot.stem + "-FAILED.png")))
        raise AssertionError(f"{what} not on {driver.current_url} within {TIMEOUT_S}s; page text:\n"
                             f"{_text(driver)[:3000]}") from None


def _text(driver) -> str:
    from selenium.webdriver.common.by import By

    try:
        return driver.find_element(By.TAG_NAME, "body").text
    except Exception:  # noqa: BLE001 - the page may be between renders
        return ""


def _scroll_to_text(driver, text: str) -> None:
    from selenium.webdriver.common.by import By

    found = driver.find_elements(By.XPATH, f"//*[normalize-space(text())='{text}']")
    assert found, f"no element with the text {text!r}"
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", found[0])


def _keep(screenshots: list[Path]) -> None:
    target = os.environ.get("RELEARN_SCREENSHOTS_DIR")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        for shot in screenshots:
            shutil.copy(shot, Path(target) / shot.name)


def _make_store(tmp_path: Path) -> tuple[str, str, dict[str, str]]:
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    experiment_id = client.create_experiment("relearn", artifact_location=(tmp_path / "artifacts").as_uri())
    run_ids = {}
    for name, run in RUNS.items():
        created = client.create_run(experiment_id, run_name=name, tags={"dataset_name": "demo", "model_spec": "tiny:0"})
        run_id = created.info.run_id
        client.log_param(run_id, "finetune.method", run["method"])
        client.log_param(run_id, "base_model", "tiny:0")
        client.log_metric(run_id, "evaluate.after.kfr", run["kfr"])
        client.log_metric(run_id, "evaluate.after.krr", run["krr"])
        client.set_terminated(run_id, "FINISHED")
        run_ids[name] = run_id
    for run in client.search_runs([experiment_id]):
        assert run.info.status == "FINISHED"
    return uri, experiment_id, run_ids


def test_mlflow_ui_shows_both_runs_and_their_kfr(browser, tmp_path):
    uri, experiment_id, run_ids = _make_store(tmp_path)
    port = _free_port()
    log = tmp_path / "mlflow-server.log"
    server = _start([str(BIN / "mlflow"), "server", "--backend-store-uri", uri,
                     "--default-artifact-root", (tmp_path / "artifacts").as_uri(),
                     "--host", "127.0.0.1", "--port", str(port), "--workers", "1"], log, cwd=tmp_path)
    shots = []
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_http(f"{base}/health", server, log)

        # The experiment's runs table (MLflow 3 opens an experiment without a kind on its GenAI overview).
        browser.get(f"{base}/#/experiments/{experiment_id}/runs")
        shot = tmp_path / "mlflow_experiment.png"
        _wait_for(browser, lambda: all(name in _text(browser) for name in RUNS), f"runs {list(RUNS)}", shot)
        browser.save_screenshot(str(shot))
        shots.append(shot)

        for name, run_id in run_ids.items():
            browser.get(f"{base}/#/experiments/{experiment_id}/runs/{run_id}")
            shot = tmp_path / f"mlflow_run_{RUNS[name]['method']}.png"
            expected = [name, "evaluate.after.kfr", str(RUNS[name]["kfr"])]
            _wait_for(browser, lambda e=expected: all(s in _text(browser) for s in e), f"{expected}", shot)
            _scroll_to_text(browser, "evaluate.after.kfr")
            browser.save_screenshot(str(shot))
            shots.append(shot)
    finally:
        _stop(server)
        _keep(shots)
    assert all(s.stat().st_size > 10_000 for s in shots)


def test_kedro_viz_static_build_shows_the_pipeline_nodes(browser, bare_project, tmp_path):
    # A copy of the project (conf + pyproject; the package is installed), so build/ lands in tmp.
    project = bare_project
    build = subprocess.run([str(BIN / "kedro"), "viz", "build"], cwd=project, env=_env(),
                           capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    site = project / "build"
    assert (site / "index.html").is_file() and (site / "api" / "main").is_file()

    port = _free_port()
    log = tmp_path / "http-server.log"
    server = _start([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                     "--directory", str(site)], log)
    shots = []
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_http(f"{base}/api/main", server, log)
        browser.get(f"{base}/")
        shot = tmp_path / "kedro_viz.png"

        def names_shown() -> bool:
            text = _text(browser).lower()
            return all(n in text or n.replace("_", " ") in text for n in NODE_NAMES)

        _wait_for(browser, names_shown, f"nodes {NODE_NAMES}", shot)
        browser.save_screenshot(str(shot))
        shots.append(shot)
    finally:
        _stop(server)
        _keep(shots)
    assert shots[0].stat().st_size > 10_000
