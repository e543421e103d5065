"""A test-only FHIR Bulk Data server (no Bulk Data server installs from the registries reachable here).

It follows the Bulk Data Access IG as far as a client sees it: SMART Backend Services token endpoint
(client assertion JWT, RS384/ES384, `aud` = token URL, one-time `jti`), `$export` kick-off that needs
`Prefer: respond-async` and answers 202 + Content-Location, status polling with 202 + X-Progress +
Retry-After and a 429 when polled too eagerly, a manifest with `requiresAccessToken`, and
token-protected NDJSON files. `faults` switches on the failures real servers have: tokens that
expire at once, 500s while polling, a truncated last line, a file that never finishes, files
that expired.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import jwt
import orjson

from tests.misbehaving_fhir import send


@dataclass
class BulkServer:
    source: Path
    clients: dict[str, bytes]  # client id -> public key PEM
    faults: set[str] = field(default_factory=set)
    polls_before_ready: int = 2
    status_errors: int = 0  # with fault "status_500": how many 500s before the status endpoint recovers
    status_error_retry_after: str | None = None  # a Retry-After on those 500s (a server restarting says when)
    base: str = ""
    kickoffs: int = 0
    tokens_issued: int = 0
    seen_jti: set[str] = field(default_factory=set)
    tokens: dict[str, float] = field(default_factory=dict)  # token -> expiry (epoch seconds)
    polls: dict[str, int] = field(default_factory=dict)
    release: threading.Event = field(default_factory=threading.Event)

    def outcome(self, text: str) -> bytes:
        return orjson.dumps(
            {
                "resourceType": "OperationOutcome",
                "issue": [{"severity": "error", "code": "processing", "diagnostics": text}],
            }
        )

    def token_valid(self, header: str | None) -> bool:
        token = (header or "").removeprefix("Bearer ")
        return self.tokens.get(token, 0) > time.time()

    def issue_token(self, form: dict[str, list[str]]) -> tuple[int, bytes]:
        if form.get("client_assertion_type") != ["urn:ietf:params:oauth:client-assertion-type:jwt-bearer"]:
            return 400, orjson.dumps({"error": "invalid_request"})
        assertion = form.get("client_assertion", [""])[0]
        try:
            client_id = jwt.decode(assertion, options={"verify_signature": False})["iss"]
            claims = jwt.decode(
                assertion,
                self.clients[client_id],
                algorithms=["RS384", "ES384"],
                audience=f"{self.base}/token",
                issuer=client_id,
                options={"require": ["exp", "jti", "sub"]},
            )
        except (KeyError, jwt.PyJWTError) as error:
            return 401, orjson.dumps({"error": "invalid_client", "error_description": str(error)})
        if claims["sub"] != client_id or claims["jti"] in self.seen_jti:
            return 401, orjson.dumps({"error": "invalid_client", "error_description": "sub or jti"})
        self.seen_jti.add(claims["jti"])
        token = secrets.token_urlsafe(24)
        lifetime = (
            0
            if "expire_tokens" in self.faults or ("first_token_expired" in self.faults and self.tokens_issued == 0)
            else 300
        )
        self.tokens[token] = time.time() + lifetime
        self.tokens_issued += 1
        return 200, orjson.dumps(
            {"access_token": token, "token_type": "bearer", "expires_in": 300, "scope": form.get("scope", [""])[0]}
        )

    def manifest(self, job: str) -> bytes:
        output = [
            {"type": path.stem, "url": f"{self.base}/files/{job}/{path.name}", "count": path.read_bytes().count(b"\n")}
            for path in sorted(self.source.glob("*.ndjson"))
        ]
        return orjson.dumps(
            {
                "transactionTime": "2021-02-01T00:00:00Z",
                "request": f"{self.base}/Patient/$export",
                "requiresAccessToken": True,
                "output": output,
                "error": [],
            }
        )


def _handler(server: BulkServer):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # the tests read answers, not access logs
            pass

        def _send(self, status: int, body: bytes, content_type="application/fhir+json", headers=None):
            send(self, status, body, content_type, headers)

        def do_POST(self):
            if self.path != "/token":
                return self._send(404, server.outcome("not found"))
            length = int(self.headers.get("Content-Length") or 0)
            status, body = server.issue_token(parse_qs(self.rfile.read(length).decode()))
            self._send(status, body, "application/json")

        def do_GET(self):
            path = urlsplit(self.path).path
            if path == "/.well-known/smart-configuration":
                return self._send(
                    200,
                    orjson.dumps(
                        {
                            "token_endpoint": f"{server.base}/token",
                            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
                            "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
                            "capabilities": ["client-confidential-asymmetric"],
                        }
                    ),
                    "application/json",
                )
            if not server.token_valid(self.headers.get("Authorization")):
                return self._send(401, server.outcome("access token missing, invalid or expired"))
            if path == "/Patient/$export":
                if self.headers.get("Prefer") != "respond-async":
                    return self._send(400, server.outcome("Prefer: respond-async is required"))
                server.kickoffs += 1
                job = secrets.token_hex(8)
                server.polls[job] = 0
                return self._send(202, b"", headers={"Content-Location": f"{server.base}/status/{job}"})
            if path.startswith("/status/"):
                return self._status(path.rsplit("/", 1)[-1])
            if path.startswith("/files/"):
                return self._file(path.rsplit("/", 1)[-1])
            return self._send(404, server.outcome("not found"))

        def _status(self, job: str):
            if job not in server.polls:
                return self._send(404, server.outcome("unknown export"))
            if "status_500" in server.faults and server.status_errors > 0:
                server.status_errors -= 1
                after = server.status_error_retry_after
                return self._send(
                    500, server.outcome("export worker crashed"), headers={"Retry-After": after} if after else None
                )
            server.polls[job] += 1
            if server.polls[job] == 1:
                return self._send(429, server.outcome("polled too often"), headers={"Retry-After": "1"})
            if server.polls[job] <= server.polls_before_ready:
                return self._send(202, b"", headers={"X-Progress": f"{50 * server.polls[job]}%", "Retry-After": "0"})
            return self._send(200, server.manifest(job), "application/json")

        def _file(self, name: str):
            if "files_expired" in server.faults:  # what the SMART reference server answers after an hour
                return self._send(410, server.outcome("the file expired"))
            body = (server.source / name).read_bytes()
            if "truncate" in server.faults and name.startswith("Observation"):
                body = body.rstrip(b"\n")[:-40] + b"\n"
            if "hang" in server.faults and name.startswith("Observation"):
                self.send_response(200)
                self.send_header("Content-Type", "application/fhir+ndjson")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                server.release.wait(120)
                return None
            return self._send(200, body, "application/fhir+ndjson")

    return Handler


@contextmanager
def running(server: BulkServer) -> Iterator[BulkServer]:
    http = ThreadingHTTPServer(("127.0.0.1", 0), _handler(server))
    http.daemon_threads = True
    server.base = f"http://127.0.0.1:{http.server_address[1]}"
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.release.set()
        http.shutdown()
        http.server_close()
