"""One GET to a FHIR server, guarded: the address, the deadline, the size. No redirect is followed here.

The transport is an interface (`Transport`) so the client's logic (redirects, statuses, paging) can be
tested against a fake; the real one, `GuardedTransport`, is what the fault tests run against a
misbehaving server. Every request carries connect and read timeouts no longer than what is left of
the hook call's deadline, and the body is read in chunks against that deadline and a byte cap, so a
slow, endless or huge answer costs at most the deadline plus one read timeout in a worker thread,
never a hung worker. The connected peer address is checked after each connect (not just the DNS
answer), so DNS rebinding cannot reach a private address.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ReadTimeoutError

from cds_service.config import Settings
from cds_service.data_access.fhir_errors import AddressRefused, TimedOut, TooLarge, Unreachable

CHUNK = 64 * 1024
# urllib3 logs every request line at DEBUG, patient ids in the query included: keep PHI out of logs.
logging.getLogger("urllib3.connectionpool").setLevel(logging.WARNING)


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds for one query: wall-clock deadline (monotonic seconds), timeouts and size of the answer."""

    deadline: float
    deadline_ms: int
    connect_s: float
    read_s: float
    pages: int
    entries: int
    bytes: int

    @classmethod
    def from_settings(cls, settings: Settings, started: float) -> Limits:
        return cls(
            deadline=started + settings.fhir_deadline_ms / 1000,
            deadline_ms=settings.fhir_deadline_ms,
            connect_s=settings.fhir_connect_timeout_ms / 1000,
            read_s=settings.fhir_read_timeout_ms / 1000,
            pages=settings.fhir_max_pages,
            entries=settings.fhir_max_entries,
            bytes=settings.fhir_max_bytes,
        )

    def remaining(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimedOut(self.deadline_ms)
        return left


@dataclass(frozen=True, slots=True)
class Answer:
    """What one GET brought back; `content_type` is the media type alone, lower-case."""

    status: int
    content_type: str = ""
    location: str | None = None
    body: bytes = b""


class Transport(Protocol):
    def get(self, url: str, headers: Mapping[str, str], limits: Limits, budget: int) -> Answer:
        """One GET, redirects not followed; raises TimedOut, Unreachable, AddressRefused or TooLarge."""
        ...


def _peer_allowed(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


class _PeerCheck:
    """Refuses the connection when the peer is private, loopback or link-local (unless allowed)."""

    allow_private = False

    def _new_conn(self) -> socket.socket:
        sock: socket.socket = super()._new_conn()  # type: ignore[misc]  # a mixin: urllib3's connection is next in the MRO
        if not self.allow_private and not _peer_allowed(sock.getpeername()[0]):
            sock.close()
            raise AddressRefused()
        return sock


class _GuardedAdapter(HTTPAdapter):
    def __init__(self, allow_private: bool):
        self._pools = {
            scheme: type(
                pool.__name__,
                (pool,),
                {"ConnectionCls": type(conn.__name__, (_PeerCheck, conn), {"allow_private": allow_private})},
            )
            for scheme, pool, conn in (
                ("http", HTTPConnectionPool, HTTPConnection),
                ("https", HTTPSConnectionPool, HTTPSConnection),
            )
        }
        super().__init__(pool_connections=8, pool_maxsize=16, max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = self._pools


def _read_body(response: requests.Response, limits: Limits, budget: int) -> bytes:
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > budget:
        raise TooLarge(limits.bytes)
    chunks, size = [], 0
    for chunk in response.iter_content(CHUNK):
        size += len(chunk)
        if size > budget:
            raise TooLarge(limits.bytes)
        chunks.append(chunk)
        limits.remaining()
    return b"".join(chunks)


class GuardedTransport:
    """requests with a pooled Session, no proxies or netrc from the environment, the peer address checked."""

    def __init__(self, allow_private: bool):
        self.session = requests.Session()
        self.session.trust_env = False
        adapter = _GuardedAdapter(allow_private)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)

    def get(self, url: str, headers: Mapping[str, str], limits: Limits, budget: int) -> Answer:
        reconnected = False
        while True:
            left = limits.remaining()
            timeout = (min(limits.connect_s, left), min(limits.read_s, left))
            try:
                with self.session.get(
                    url, headers=dict(headers), timeout=timeout, stream=True, allow_redirects=False
                ) as response:
                    content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
                    location = response.headers.get("Location") if response.is_redirect else None
                    body = b"" if location is not None else _read_body(response, limits, budget)
                    return Answer(response.status_code, content_type, location, body)
            except requests.Timeout:
                raise TimedOut(limits.deadline_ms) from None
            except requests.ConnectionError as error:
                if any(isinstance(cause, ReadTimeoutError) for cause in error.args):  # a body read that stalled
                    raise TimedOut(limits.deadline_ms) from None
                if reconnected:  # one new connection is worth a try: servers close idle pooled ones
                    raise Unreachable(error) from None
                reconnected = True
            except requests.RequestException as error:
                raise Unreachable(error) from None
