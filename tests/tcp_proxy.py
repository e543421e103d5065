"""A TCP proxy the test owns, between the service and a shared Redis or PostgreSQL: cutting it simulates
losing the dependency without touching the real one (which other tests and people are using)."""

from __future__ import annotations

import socket
import threading


class TcpProxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1"):
        self.target = (target_host, target_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connected = threading.Event()
        self.connected.set()
        self.stalled = False
        self._held: list[socket.socket] = []
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.stalled:
                self._held.append(client)  # accepted, never answered: a host that drops packets
                continue
            if not self.connected.is_set():
                client.close()  # the dependency is "down": connections are refused at once
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                if not self.stalled:
                    sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                self._close(end)

    def _close(self, end: socket.socket) -> None:
        with self._lock:
            self._open.discard(end)
        try:
            end.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        end.close()

    def cut(self) -> None:
        """Every open connection reset, every new one refused, until `restore`."""
        self.connected.clear()
        with self._lock:
            ends = list(self._open)
        for end in ends:
            self._close(end)

    def stall(self) -> None:
        """Connections stay open and new ones are accepted, but nothing gets through, in either direction."""
        self.stalled = True

    def restore(self) -> None:
        self.stalled = False
        for held in self._held:
            held.close()
        self._held.clear()
        self.connected.set()

    def close(self) -> None:
        self.restore()
        self.cut()
        self.listener.close()
