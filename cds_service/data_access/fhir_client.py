"""Reading from the EHR's FHIR server: only a trusted server, only narrow queries, never past the deadline.

Every request carries connect and read timeouts no longer than what is left of the hook call's
deadline, and the body is read in chunks against that deadline and a byte cap, so a slow, endless
or huge answer costs at most the deadline plus one read timeout in a worker thread, never a hung
worker. The connected peer address is checked after each connect (not just the DNS answer), so
DNS rebinding cannot reach a private address. The access token is kept out of repr and logs.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import parse_qsl, urljoin, urlsplit

import orjson
import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from cds_service.auth import Caller
from cds_service.config import Settings
from cds_service.data_access.prefetch import next_link
from cds_service.request import operation_outcome_issues, resources_in

Json = dict[str, Any]
FHIR_JSON = ("application/fhir+json", "application/json", "application/json+fhir")
CHUNK = 64 * 1024
MAX_REDIRECTS = 3
# urllib3 logs every request line at DEBUG, patient ids in the query included: keep PHI out of logs.
logging.getLogger("urllib3.connectionpool").setLevel(logging.WARNING)


class Refused(Exception):
    """The request's fhirServer may not be used; the message is safe to show the EHR."""


class FetchFailed(Exception):
    """The data could not be had from the FHIR server; the message says why, without URL or token."""


@dataclass(frozen=True, slots=True)
class FhirServer:
    """A fhirServer that passed the trust checks, with the token it (and only it) may receive."""

    base: str
    token: str | None = field(default=None, repr=False)

    def owns(self, url: str) -> bool:
        """Same scheme, host and port as the base: the only place the token may go."""
        return _origin(url) == _origin(self.base)

    def headers(self) -> dict[str, str]:
        headers = {"Accept": "application/fhir+json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds for one query: wall-clock deadline (monotonic seconds), timeouts and size of the answer."""

    deadline: float
    connect_s: float
    read_s: float
    pages: int
    entries: int
    bytes: int

    @classmethod
    def from_settings(cls, settings: Settings, started: float) -> Limits:
        return cls(
            deadline=started + settings.fhir_deadline_ms / 1000,
            connect_s=settings.fhir_connect_timeout_ms / 1000,
            read_s=settings.fhir_read_timeout_ms / 1000,
            pages=settings.fhir_max_pages,
            entries=settings.fhir_max_entries,
            bytes=settings.fhir_max_bytes,
        )

    def remaining(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise FetchFailed("not answered in time (deadline reached)")
        return left


@dataclass(frozen=True, slots=True)
class Pages:
    """What paging brought: resources in server order, and why it stopped early (if it did)."""

    resources: tuple[Json, ...]
    incomplete: str | None = None


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or {"https": 443, "http": 80}.get(scheme)


def trusted_server(request: Json, settings: Settings, caller: Caller) -> FhirServer:
    """The request's fhirServer if this client may send us there; otherwise Refused saying why."""
    base = request.get("fhirServer")
    if not isinstance(base, str) or not base:
        raise Refused("the request has no fhirServer")
    base = base.rstrip("/")
    parts = urlsplit(base)
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.username or parts.password:
        raise Refused("fhirServer is not an http(s) base URL")
    if parts.query or parts.fragment:
        raise Refused("fhirServer must not carry a query or fragment")
    if parts.scheme != "https" and not settings.dev:
        raise Refused("fhirServer must use https")
    bound = caller.fhir_servers or tuple(settings.fhir_server_allowlist)
    if bound and not any(_origin(base) == _origin(b) and base.lower() == b.rstrip("/").lower() for b in bound):
        raise Refused("fhirServer is not a FHIR server configured for this client")
    if not bound and not settings.dev:
        raise Refused("no FHIR server is configured for this client")
    authorization = request.get("fhirAuthorization")
    token = authorization.get("access_token") if isinstance(authorization, dict) else None
    return FhirServer(base, token if isinstance(token, str) and token else None)


def _peer_allowed(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


class _PeerCheck:
    """Refuses the connection when the peer is private, loopback or link-local (unless allowed)."""

    allow_private = False

    def _new_conn(self):
        sock = super()._new_conn()
        if not self.allow_private and not _peer_allowed(sock.getpeername()[0]):
            sock.close()
            raise FetchFailed("fhirServer resolves to a private, loopback or link-local address")
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

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = self._pools


@cache
def session(allow_private: bool) -> requests.Session:
    """One pooled Session per process (and per address policy); no proxies or netrc from the environment."""
    pooled = requests.Session()
    pooled.trust_env = False
    adapter = _GuardedAdapter(allow_private)
    pooled.mount("https://", adapter)
    pooled.mount("http://", adapter)
    return pooled


def _problem_in(body: bytes) -> str:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return ""
    if isinstance(document, dict) and document.get("resourceType") == "OperationOutcome":
        problems = [i.problem.removeprefix("the EHR reported an error: ") for i in operation_outcome_issues(document)]
        return f": {'; '.join(problems)[:200]}" if problems else ""
    return ""


def _read_body(response: requests.Response, limits: Limits, budget: int) -> bytes:
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > budget:
        raise FetchFailed(f"the answer is larger than the {limits.bytes} bytes allowed")
    chunks, size = [], 0
    for chunk in response.iter_content(CHUNK):
        size += len(chunk)
        if size > budget:
            raise FetchFailed(f"the answer is larger than the {limits.bytes} bytes allowed")
        chunks.append(chunk)
        limits.remaining()
    return b"".join(chunks)


def get_json(server: FhirServer, url: str, limits: Limits, allow_private: bool, budget: int) -> tuple[Json, int]:
    """GET one FHIR document from the server (same-origin redirects only); returns it and its size."""
    reconnected = False
    for _ in range(MAX_REDIRECTS + 2):
        left = limits.remaining()
        timeout = (min(limits.connect_s, left), min(limits.read_s, left))
        try:
            with session(allow_private).get(
                url, headers=server.headers(), timeout=timeout, stream=True, allow_redirects=False
            ) as response:
                if response.is_redirect:
                    url = urljoin(url, response.headers.get("Location", ""))
                    if not server.owns(url):
                        raise FetchFailed("the FHIR server redirected to another host; not followed")
                    continue
                body = _read_body(response, limits, budget)
                content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        except requests.Timeout:
            raise FetchFailed("the FHIR server did not answer in time") from None
        except requests.ConnectionError as error:
            if reconnected:  # one new connection is worth a try: servers close idle pooled ones
                raise FetchFailed(f"the FHIR server could not be reached ({type(error).__name__})") from None
            reconnected = True
            continue
        except requests.RequestException as error:
            raise FetchFailed(f"the FHIR server could not be reached ({type(error).__name__})") from None
        if response.status_code in (401, 403):
            why = (
                "the access token was refused"
                if server.token
                else "no access token was sent and the server requires one"
            )
            raise FetchFailed(f"the FHIR server answered HTTP {response.status_code}: {why}")
        if response.status_code != 200:
            raise FetchFailed(f"the FHIR server answered HTTP {response.status_code}{_problem_in(body)}")
        if content_type not in FHIR_JSON:
            raise FetchFailed(f"the FHIR server answered with {content_type or 'no content type'}, not FHIR JSON")
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise FetchFailed("the FHIR server answered with malformed JSON") from None
        if not isinstance(document, dict) or not isinstance(document.get("resourceType"), str):
            raise FetchFailed("the FHIR server answered with something that is not a FHIR resource")
        return document, len(body)
    raise FetchFailed("the FHIR server redirected too often")


def errors_in(document: Json) -> list[str]:
    """The error OperationOutcomes in a resource or Bundle (warnings such as search notes are not errors)."""
    return [
        issue.problem
        for resource in resources_in(document)
        if resource.get("resourceType") == "OperationOutcome"
        for issue in operation_outcome_issues(resource)
    ]


def follow_pages(
    server: FhirServer, url: str | None, limits: Limits, allow_private: bool, pages_read: int = 0
) -> Pages:
    """Read `url` and its `next` links within the page, entry and byte limits (pages_read: already spent)."""
    resources, budget = [], limits.bytes
    while url:
        if not server.owns(url):
            return Pages(tuple(resources), "a next link points to another host; later pages were not read")
        if pages_read >= limits.pages:
            return Pages(tuple(resources), f"more than {limits.pages} pages of results; later pages were not read")
        document, size = get_json(server, url, limits, allow_private, budget)
        budget -= size
        pages_read += 1
        if problems := errors_in(document):
            raise FetchFailed("; ".join(problems)[:300])
        resources.extend(r for r in resources_in(document) if r.get("resourceType") != "OperationOutcome")
        if len(resources) > limits.entries:
            return Pages(
                tuple(resources[: limits.entries]), f"more than {limits.entries} results; the rest were not read"
            )
        url = next_link(document)
    return Pages(tuple(resources))


def resource_type_of(query: str) -> str:
    """`Observation` for `Observation?patient=...`, `Patient` for `Patient/123`."""
    return query.partition("?")[0].partition("/")[0]


def for_this_query(resources: tuple[Json, ...], query: str) -> tuple[Json, ...]:
    """Keep what the query asked for: servers may ignore parameters they do not know, so check ourselves."""
    path, _, search = query.partition("?")
    resource_type, resource_id = resource_type_of(query), path.partition("/")[2]
    kept = [
        r
        for r in resources
        if r.get("resourceType") == resource_type and (not resource_id or r.get("id") == resource_id)
    ]
    params = dict(parse_qsl(search))
    if patient := params.get("patient"):
        kept = [r for r in kept if _refers_to(r, f"Patient/{patient.removeprefix('Patient/')}")]
    if codes := params.get("code"):
        wanted = {tuple(c.split("|", 1)) if "|" in c else (None, c) for c in codes.split(",")}
        kept = [r for r in kept if _has_code(r, wanted)]
    return tuple(kept)


def _refers_to(resource: Json, reference: str) -> bool:
    for element in ("subject", "patient"):
        value = resource.get(element)
        target = value.get("reference") if isinstance(value, dict) else None
        if isinstance(target, str) and (target == reference or target.endswith(f"/{reference}")):
            return True
    return False


def _has_code(resource: Json, wanted: set[tuple[str | None, str]]) -> bool:
    concept = resource.get("code")
    codings = concept.get("coding") if isinstance(concept, dict) else None
    for coding in codings or ():
        if isinstance(coding, dict) and (
            (coding.get("system"), coding.get("code")) in wanted or (None, coding.get("code")) in wanted
        ):
            return True
    return False
