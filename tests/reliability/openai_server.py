"""A small OpenAI-compatible chat server for fault and load tests, run as its own process.

    python openai_server.py --port-file PATH [--port N] [--serve K] [--delay-s S]

POST /v1/chat/completions answers ``n`` deterministic choices ("variant <i> of: <last message>").
After ``--serve K`` answers, further requests are read and then held without an answer (the
server "hangs", so a test can SIGKILL it with requests in flight). GET /stats returns
``{"served", "received", "in_flight", "max_in_flight"}``. The chosen port is written to
``--port-file`` once the socket listens; ``--port`` reuses a port (a restart after a kill).
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--serve", type=int, default=-1, help="answers before hanging; -1 = no limit")
    parser.add_argument("--delay-s", type=float, default=0.0)
    args = parser.parse_args()

    lock = threading.Lock()
    stats = {"served": 0, "received": 0, "in_flight": 0, "max_in_flight": 0}
    hang = threading.Event()  # never set: held requests wait until the process dies

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the openai client (httpx) expects

        def log_message(self, *a):
            pass

        def _send(self, status: int, payload: dict) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()

        def do_GET(self):
            with lock:
                snapshot = dict(stats)
            self._send(200, snapshot)

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with lock:
                stats["received"] += 1
                over = 0 <= args.serve <= stats["served"] + stats["in_flight"]
                stats["in_flight"] += 1
                stats["max_in_flight"] = max(stats["max_in_flight"], stats["in_flight"])
            if over:
                hang.wait()
            if args.delay_s:
                time.sleep(args.delay_s)
            last = str(body["messages"][-1]["content"])[-60:]
            choices = [
                {"index": i, "finish_reason": "stop",
                 "message": {"role": "assistant", "content": f"variant {i} of: {last}"}}
                for i in range(int(body.get("n", 1)))
            ]
            self._send(200, {"id": "x", "object": "chat.completion", "created": 0,
                             "model": body.get("model", ""), "choices": choices})
            with lock:
                stats["in_flight"] -= 1
                stats["served"] += 1

    ThreadingHTTPServer.allow_reuse_address = True
    ThreadingHTTPServer.daemon_threads = True
    httpd = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    tmp = f"{args.port_file}.tmp"
    with open(tmp, "w") as f:
        f.write(str(httpd.server_address[1]))
    os.replace(tmp, args.port_file)
    httpd.serve_forever()


if __name__ == "__main__":
    main()
