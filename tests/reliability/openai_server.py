"""The stub OpenAI-compatible chat server (tests/support/openai_stub.py) as its own process, for fault and
load tests that SIGKILL it.

    python openai_server.py --port-file PATH [--port N] [--serve K] [--delay-s S]

POST /v1/chat/completions answers ``n`` deterministic choices ("variant <i> of: <last message>").
After ``--serve K`` answers, further requests are read and then held without an answer (the
server "hangs", so a test can SIGKILL it with requests in flight). GET /stats returns
``{"served", "received", "in_flight", "max_in_flight"}``. The chosen port is written to
``--port-file`` once the socket listens; ``--port`` reuses a port (a restart after a kill).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))  # for openai_stub
from openai_stub import ChatServer  # noqa: E402


def variant(prompt: str, k: int) -> str:
    return f"variant {k} of: {prompt[-60:]}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--serve", type=int, default=-1, help="answers before hanging; -1 = no limit")
    parser.add_argument("--delay-s", type=float, default=0.0)
    args = parser.parse_args()

    never = threading.Event()  # never set: held requests wait until the process dies

    def hold_or_delay(index: int) -> None:
        if 0 <= args.serve <= index:
            never.wait()
        time.sleep(args.delay_s)

    server = ChatServer(variant, hold_or_delay, port=args.port)
    tmp = f"{args.port_file}.tmp"
    with open(tmp, "w") as f:
        f.write(str(server.port))
    os.replace(tmp, args.port_file)
    never.wait()  # the server thread answers until the process is killed


if __name__ == "__main__":
    main()
