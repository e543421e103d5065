"""Small HTTP servers on loopback that misbehave the way real FHIR servers do (fault injection)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Answer = Callable[[BaseHTTPRequestHandler], None]


def send(
    handler: BaseHTTPRequestHandler,
    status: int,
    body: bytes,
    content_type: str = "application/fhir+json",
    headers: dict[str, str] | None = None,
) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(body)


def fhir(document: dict, status: int = 200) -> Answer:
    return lambda h: send(h, status, json.dumps(document).encode())


def slow(seconds: float, then: Answer) -> Answer:
    def answer(handler):
        time.sleep(seconds)
        then(handler)

    return answer


def dripping(total_bytes: int, every_s: float) -> Answer:
    """Sends a body one byte at a time: each read is quick, the whole never ends in time."""

    def answer(handler):
        handler.send_response(200)
        handler.send_header("Content-Type", "application/fhir+json")
        handler.send_header("Content-Length", str(total_bytes))
        handler.end_headers()
        for _ in range(total_bytes):
            handler.wfile.write(b" ")
            handler.wfile.flush()
            time.sleep(every_s)

    return answer


def huge(megabytes: int, declare_length: bool) -> Answer:
    def answer(handler):
        handler.send_response(200)
        handler.send_header("Content-Type", "application/fhir+json")
        if declare_length:
            handler.send_header("Content-Length", str(megabytes * 1024 * 1024))
        handler.end_headers()
        chunk = b" " * (1024 * 1024)
        for _ in range(megabytes):
            handler.wfile.write(chunk)

    return answer


def endless_next(handler: BaseHTTPRequestHandler) -> None:
    """Every page holds one resource of the type asked for and a `next` link to one more page."""
    resource_type, _, query = handler.path.strip("/").partition("?")
    page = int(query.rsplit("page=", 1)[-1]) if "page=" in query else 0
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "link": [{"relation": "next", "url": f"http://{handler.headers['Host']}/{resource_type}?page={page + 1}"}],
        "entry": [
            {"resource": {"resourceType": resource_type, "id": f"r{page}", "subject": {"reference": "Patient/p1"}}}
        ],
    }
    send(handler, 200, json.dumps(bundle).encode())


class _Handler(BaseHTTPRequestHandler):
    answers: dict[str, Answer] = {}
    seen: list[dict] = []

    def do_GET(self):
        self.seen.append({"path": self.path, "authorization": self.headers.get("Authorization")})
        resource_path = self.path.split("?", 1)[0].strip("/")
        answer = (
            self.answers.get(resource_path) or self.answers.get(resource_path.split("/", 1)[0]) or self.answers.get("*")
        )
        try:
            if answer is None:
                send(
                    self, 404, b'{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"not-found"}]}'
                )
            else:
                answer(self)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args):
        pass


@contextmanager
def serving(answers: dict[str, Answer]) -> Iterator[tuple[str, list[dict]]]:
    """Serve `answers` by resource path ('Patient/p1', 'Observation', or '*'); yields (base URL, requests seen)."""
    seen: list[dict] = []
    handler = type("Handler", (_Handler,), {"answers": answers, "seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def refused_base() -> str:
    """A loopback URL where nothing listens: connecting is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"
