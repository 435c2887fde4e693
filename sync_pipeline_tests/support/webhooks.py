"""A real HTTP server on 127.0.0.1 standing in for Slack, Teams and a plain webhook: it records every post (path,
headers, body bytes) and answers from a script per path — a status (with headers), or a hang."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HANG = -1  # a scripted answer that never comes (the client's read timeout must end it)
HANG_SECONDS = 5.0


@dataclass(frozen=True)
class Post:
    path: str
    body: bytes
    content_type: str


@dataclass
class WebhookServer:
    port: int
    posts: list[Post] = field(default_factory=list)
    script: dict[str, list[tuple[int, dict[str, str]]]] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def answer(self, path: str, *answers: int | tuple[int, dict[str, str]]) -> None:
        """Queue answers for `path` (then 200 for every later post)."""
        self.script.setdefault(path, []).extend(a if isinstance(a, tuple) else (a, {}) for a in answers)

    def to(self, path: str) -> list[Post]:
        return [p for p in self.posts if p.path == path]


@contextmanager
def webhook_server() -> Iterator[WebhookServer]:
    state = WebhookServer(port=0)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            state.posts.append(Post(self.path, body, self.headers.get("Content-Type", "")))
            queued = state.script.get(self.path) or []
            status, headers = queued.pop(0) if queued else (200, {})
            if status == HANG:
                time.sleep(HANG_SECONDS)
                return
            text = b"ok" if status < 400 else b"invalid_token" if status == 404 else b"error"
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(text)))
            self.end_headers()
            self.wfile.write(text)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
