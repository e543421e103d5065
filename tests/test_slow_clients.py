"""Slow and idle clients cannot starve the service: with twice as many half-sent connections as the server
has threads (some trickling a byte every 2 s, some stalled after one header line, some silent), probes and
a hook call still answer well inside the bound (before: nothing for 30 s, until gunicorn killed the workers)."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import requests

from cds_service.config import Settings
from cds_service.serving import gunicorn_options
from cds_service.worker import request_complete
from tests.conftest import EXAMPLES
from tests.served import Server

pytestmark = pytest.mark.server
WORKERS = 2
BOUND_SECONDS = 10  # generous: an unstarved server answers in milliseconds
EXAMPLE = (EXAMPLES / "patient-view-neutropenia.json").read_bytes()
HEAD = b"POST /cds-services/cytopenia-review HTTP/1.1\r\nHost: cds.test\r\nContent-Type: application/json\r\n"


class HalfSent:
    """Connections that never finish their request: trickling, stalled after a header line, or silent."""

    def __init__(self, port: int, count: int):
        self.stop = threading.Event()
        self.sockets = [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]
        for index, connection in enumerate(self.sockets):
            kind = ("trickle", "stall", "silent")[index % 3]
            if kind == "stall":
                connection.sendall(HEAD)
            elif kind == "trickle":
                threading.Thread(target=self._trickle, args=(connection,), daemon=True).start()

    def _trickle(self, connection: socket.socket) -> None:
        try:
            connection.sendall(HEAD + b"X-Slow: ")
            while not self.stop.wait(2):
                connection.sendall(b"a")
        except OSError:
            pass  # the server gave up on us: that is allowed

    def close(self) -> None:
        self.stop.set()
        for connection in self.sockets:
            connection.close()


def test_half_sent_connections_do_not_starve_probes_or_hook_calls(tmp_path):
    threads = WORKERS * gunicorn_options(Settings(dev=True)).get("threads", 1)
    server = Server(tmp_path, "--dev", workers=WORKERS)
    slow = HalfSent(server.port, 2 * threads)
    try:
        time.sleep(3)  # let the tricklers send a byte or two, so every kind is mid-request
        started = time.monotonic()
        probe = requests.get(server.url + "/healthz", timeout=BOUND_SECONDS)
        call = requests.post(
            server.url + "/cds-services/cytopenia-review",
            data=EXAMPLE,
            headers={"Content-Type": "application/json"},
            timeout=BOUND_SECONDS,
        )
        elapsed = time.monotonic() - started
    except requests.Timeout:
        pytest.fail(f"starved: no answer within {BOUND_SECONDS} s; server output:\n{server.output()[-4000:]}")
    finally:
        slow.close()
        server.stop()
    assert probe.status_code == 200 and call.status_code == 200, server.output()[-4000:]
    assert elapsed < 2 * BOUND_SECONDS


@pytest.mark.parametrize(
    ("data", "complete"),
    [
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\n", False),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", True),
        (HEAD + b"Content-Length: 4\r\n\r\n{}", False),
        (HEAD + b"Content-Length: 4\r\n\r\n{  }", True),
        (HEAD + b"Content-Length: 999999999\r\n\r\n", True),  # over the cap: the app answers 413 at once
        (HEAD + b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n", False),
        (HEAD + b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", True),
        (HEAD + b"Expect: 100-continue\r\nContent-Length: 2\r\n\r\n", True),  # waits for our "100 Continue"
    ],
)
def test_a_request_reaches_a_thread_only_when_whole(data, complete):
    assert request_complete(data, max_body_bytes=1024) is complete
