"""A stub OpenAI-compatible chat server for tests: POST /v1/chat/completions on 127.0.0.1.

Each request gets ``n`` choices, choice ``k`` saying ``reply(prompt, k)`` where ``prompt`` is the
last message's content. A ``fault`` hook, called with the request's arrival number (0, 1, ...)
before it is answered, may sleep or block, and returns ``(status, body bytes)`` to send instead of
the answer, or None. GET /stats returns ``stats``. The server runs in a daemon thread; the backend,
privacy and end-to-end tests use it in-process, tests/reliability/openai_server.py as a process.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Reply = Callable[[str, int], str]
Fault = Callable[[int], tuple[int, bytes] | None]


def completion(body: dict, reply: Reply) -> dict:
    """The chat.completion object answering the request ``body``."""
    prompt = str(body["messages"][-1]["content"])
    choices = [
        {"index": k, "finish_reason": "stop", "message": {"role": "assistant", "content": reply(prompt, k)}}
        for k in range(int(body.get("n", 1)))
    ]
    return {"id": "c", "object": "chat.completion", "created": 0, "model": body.get("model", ""), "choices": choices}


class ChatServer:
    """The stub server on 127.0.0.1 (``port`` 0: a free one); a context manager that closes it.

    ``requests`` holds each request's JSON body and Authorization header in arrival order;
    ``stats`` counts requests received, answered (served) and in flight, and the most in flight.
    """

    def __init__(self, reply: Reply, fault: Fault | None = None, port: int = 0):
        self.reply, self.fault = reply, fault
        self.requests: list[dict] = []
        self.stats = {"received": 0, "served": 0, "in_flight": 0, "max_in_flight": 0}
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), _handler_for(self))
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def answer(self, body: dict, auth: str | None) -> tuple[int, bytes]:
        """Record one request, then run the fault hook (counted in flight) and the reply."""
        with self.lock:
            index = len(self.requests)
            self.requests.append({"body": body, "auth": auth})
            self.stats["received"] += 1
            self.stats["in_flight"] += 1
            self.stats["max_in_flight"] = max(self.stats["max_in_flight"], self.stats["in_flight"])
        replaced = self.fault(index) if self.fault else None
        return replaced or (200, json.dumps(completion(body, self.reply)).encode())

    def done(self, answered: bool) -> None:
        """A request has left: answered, or failed (a client gone, an error in a hook)."""
        with self.lock:
            self.stats["in_flight"] -= 1
            self.stats["served"] += answered

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> ChatServer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _handler_for(server: ChatServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the openai client (httpx) expects

        def log_message(self, *args):  # keep test output quiet
            pass

        def do_GET(self):
            with server.lock:
                data = json.dumps(server.stats).encode()
            self._send(200, data)

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            answered = False
            try:
                self._send(*server.answer(body, self.headers.get("Authorization")))
                answered = True
            finally:
                server.done(answered)

        def _send(self, status: int, data: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()

    return Handler
