"""The gunicorn worker `cytopenia-cds serve` runs: gthread, with each request read whole before a thread takes it.

gunicorn's threaded worker hands a connection to a thread as soon as its first byte arrives; a client that
then trickles a byte every few seconds, or stalls after one header line, holds that thread, and twice as
many such clients as threads stop the service. Here the worker's event loop reads the request head and
body (Content-Length or chunked) without blocking, and only a complete request reaches a thread. A request
not complete within `Deadlines.request_read_seconds` is dropped. Memory is bounded by gunicorn's
`worker_connections` times the request size cap; a reverse proxy in front still does this job better
(see docs/operations-resilience.md).
"""

from __future__ import annotations

import errno
import re
import selectors
import socket
import time
from functools import partial

from gunicorn import http
from gunicorn.workers.gthread import TConn, ThreadWorker

HEAD_END = b"\r\n\r\n"
HEAD_LIMIT = 64 * 1024  # past this without an end of head, gunicorn's own limits answer 400
CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)[ \t]*(?=\r\n)", re.IGNORECASE)
CHUNKED = re.compile(rb"\r\ntransfer-encoding:[^\r]*chunked", re.IGNORECASE)
EXPECT_CONTINUE = re.compile(rb"\r\nexpect:[ \t]*100-continue", re.IGNORECASE)
CHUNK_SIZE = re.compile(rb"([0-9a-fA-F]+)[^\r\n]*\r\n")


def _chunked_body_complete(body: bytes) -> bool:
    position = 0
    while True:
        size = CHUNK_SIZE.match(body, position)
        if size is None:
            return False
        length = int(size.group(1), 16)
        position = size.end()
        if length == 0:
            return body.find(b"\r\n\r\n", position - 2) >= 0  # trailers, then the empty line
        position += length + 2
        if position > len(body):
            return False


def request_complete(data: bytes, max_body_bytes: int) -> bool:
    """Whether `data` holds a whole first request, or enough for the app to answer it (413, 417, 400)."""
    end = data.find(HEAD_END)
    if end < 0:
        return len(data) > HEAD_LIMIT
    head, body = data[: end + 2], data[end + 4 :]
    if EXPECT_CONTINUE.search(head):
        return True  # the client waits for "100 Continue", which the thread sends
    if CHUNKED.search(head):
        return len(body) > max_body_bytes or _chunked_body_complete(body)
    length = CONTENT_LENGTH.search(head)
    wanted = int(length.group(1)) if length else 0
    return wanted > max_body_bytes or len(body) >= wanted


class WholeRequestWorker(ThreadWorker):
    """Threads run only complete requests; reading them is the event loop's job."""

    read_seconds = 10.0
    max_body_bytes = 8 * 1024 * 1024
    LEAVE_SECONDS = 0.001  # an idle worker blocked in its poll wakes well within this

    def load_wsgi(self) -> None:
        super().load_wsgi()
        settings = self.wsgi.config["SETTINGS"]
        self.read_seconds = settings.deadlines.request_read_seconds
        self.max_body_bytes = settings.max_request_bytes

    def accept(self, listener: socket.socket) -> None:
        """Every worker wakes for a new connection, and the first to call accept takes it: one already
        awake serving its connections would take connections arriving together (wrk's, or a load balancer's
        pool) while another worker idles, leaving it half the CPUs. A worker with a connection being read or
        served leaves a new one `LEAVE_SECONDS` for an idle worker first; if none takes it, it accepts."""
        if self.nr_conns > len(self.keepalived_conns):
            self.leave_to_an_idle_worker()
        try:
            client, address = listener.accept()
        except OSError as error:
            if error.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        self.enqueue_req(TConn(self.cfg, client, address, listener.getsockname()))

    def leave_to_an_idle_worker(self) -> None:
        """Give an idle worker, woken for the same connection, the moment to accept it first."""
        time.sleep(self.LEAVE_SECONDS)

    def enqueue_req(self, conn: TConn) -> None:
        """Every way a connection reaches the thread pool passes here: new, kept alive, or with read-ahead."""
        if self.cfg.is_ssl or getattr(conn, "request_complete", False):
            conn.request_complete = False
            super().enqueue_req(conn)
            return
        if conn.parser is None:
            conn.parser = http.get_parser(self.cfg, conn.sock, conn.client)
        conn.received = bytearray(conn.parser.unreader.take_buffered())
        conn.data_ready = True
        if request_complete(conn.received, self.max_body_bytes):
            self._hand_over(conn)
            return
        conn.sock.setblocking(False)
        conn.timeout = time.monotonic() + self.read_seconds
        self.pending_conns.append(conn)  # gunicorn's murder_pending closes it at the deadline
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._receive, conn))

    def _receive(self, conn: TConn, client: socket.socket) -> None:
        try:
            data = client.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            conn.received += data
            if not request_complete(conn.received, self.max_body_bytes):
                return
        self.poller.unregister(client)
        self.pending_conns.remove(conn)
        if not data:
            self.nr_conns -= 1
            conn.close()
            return
        self._hand_over(conn)

    def _hand_over(self, conn: TConn) -> None:
        conn.parser.unreader.unread(bytes(conn.received))
        conn.received = bytearray()
        conn.request_complete = True
        self.enqueue_req(conn)
