"""`kedro viz run` (what `make viz` runs) starts and serves the pipeline graph with no network.

The server runs in a copy of the project with every HTTP(S) proxy set to a closed local port, so
its PyPI version check fails at once instead of reaching out (or hanging where packets are dropped).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
DEAD_PROXY = "http://127.0.0.1:9"


def _free_port_below_49152() -> int:
    for port in random.Random().sample(range(20000, 49000), 200):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("no free port in 20000-49000")


def test_kedro_viz_run_starts_offline_and_serves_the_graph(tmp_path):
    project = tmp_path / "project"
    shutil.copytree(PROJECT / "conf" / "base", project / "conf" / "base")
    (project / "conf" / "local").mkdir()
    shutil.copy(PROJECT / "pyproject.toml", project / "pyproject.toml")
    (project / "src").mkdir()
    port = _free_port_below_49152()  # kedro viz refuses ports above the registered range
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "DO_NOT_TRACK": "1",
           "HTTP_PROXY": DEAD_PROXY, "HTTPS_PROXY": DEAD_PROXY, "http_proxy": DEAD_PROXY, "https_proxy": DEAD_PROXY,
           "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
    log = (tmp_path / "viz.log").open("w")
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "kedro"), "viz", "run", "--host", "127.0.0.1", "--port", str(port),
         "--no-browser"],
        cwd=project, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    started = time.monotonic()
    graph = None
    try:
        while time.monotonic() - started < 120 and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/main", timeout=5) as response:
                    graph = json.load(response)
                    break
            except OSError:
                time.sleep(0.5)
        assert graph is not None, (tmp_path / "viz.log").read_text()[-3000:]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
            page = response.read().decode()
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
    tasks = {n["name"] for n in graph["nodes"] if n["type"] == "task"}
    assert {"make_target_model", "finetune_adapter", "render_report"} <= tasks
    assert graph["layers"][0] == "raw" and graph["layers"][-1] == "reporting"
    assert "<title>Kedro-Viz" in page and '<div id="root"' in page
