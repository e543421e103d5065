"""A FHIR Bulk Data Access client: `$export` with SMART Backend Services auth, resumable.

Kick-off with `Prefer: respond-async` -> 202 + Content-Location; polling that honours Retry-After
(202 in progress, 429 slow down) with capped exponential back-off otherwise; the manifest's files
downloaded with the access token only where `requiresAccessToken` is true. The client assertion is
a JWT signed RS384 or ES384 (by the key's type) with the client's registered private key.

Everything needed to resume (status URL, manifest, finished files) is kept in `export-state.json`
beside the downloads: a failure says what happened and running the same command again carries on
where it stopped, without a second kick-off. No token is ever written to the state or printed.
"""

from __future__ import annotations

import argparse
import email.utils
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
import orjson
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from cds_service.screening.generate import TYPES

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
STATE_FILE = "export-state.json"
START_AGAIN = f"remove {STATE_FILE} beside the downloads to start a new export"


class BulkError(Exception):
    """The export cannot go on; the message says why and whether running again resumes it."""


@dataclass
class ExportState:
    status_url: str | None = None
    manifest: dict[str, Any] | None = None
    done: dict[str, str] = field(default_factory=dict)  # file URL -> local file name

    @classmethod
    def load(cls, path: Path) -> ExportState:
        if not path.exists():
            return cls()
        data = orjson.loads(path.read_bytes())
        return cls(data.get("status_url"), data.get("manifest"), data.get("done") or {})

    def save(self, path: Path) -> None:
        path.write_bytes(orjson.dumps({"status_url": self.status_url, "manifest": self.manifest, "done": self.done}))


def _signing_key(key: PrivateKeyTypes) -> tuple[rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, str]:
    """The key as one JWT can sign with, and its algorithm (RS384 or ES384)."""
    if isinstance(key, rsa.RSAPrivateKey):
        return key, "RS384"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key, "ES384"
    raise BulkError("the private key must be RSA (RS384) or EC P-384 (ES384)")


def retry_after(response: requests.Response, default: float) -> float:
    """Seconds to wait: Retry-After in seconds or as an HTTP date, else the back-off default."""
    value = response.headers.get("Retry-After")
    if not value:
        return default
    if value.strip().isdigit():
        return float(value)
    try:
        return max(0.0, (email.utils.parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return default


def _outcome_text(response: requests.Response) -> str:
    try:
        issues = response.json().get("issue") or ()
        return "; ".join(i.get("diagnostics") or (i.get("details") or {}).get("text") or "" for i in issues) or ""
    except ValueError:
        return response.text[:200]


class ExportClient:
    def __init__(
        self,
        base_url: str,
        client_id: str | None = None,
        private_key: bytes | None = None,
        key_id: str | None = None,
        scope: str = "system/*.rs",
        types: tuple[str, ...] = TYPES,
        read_timeout: float = 120.0,
        max_wait: float = 6 * 3600,
        max_server_errors: int = 8,  # in a row, backing off 1 s doubling to 60 s: about 3 minutes
    ):
        self.base_url = base_url.rstrip("/")
        self.client_id = client_id
        self.key = serialization.load_pem_private_key(private_key, password=None) if private_key else None
        self.key_id = key_id
        self.scope = scope
        self.types = types
        self.read_timeout = read_timeout
        self.max_wait = max_wait
        self.max_server_errors = max_server_errors
        self.session = requests.Session()
        self._token: str | None = None

    # --- SMART Backend Services ---
    def _token_endpoint(self) -> str:
        url = f"{self.base_url}/.well-known/smart-configuration"
        response = self.session.get(url, headers={"Accept": "application/json"}, timeout=(10, 30))
        if response.status_code != 200:
            raise BulkError(f"{url} answered {response.status_code}: cannot find the token endpoint")
        return response.json()["token_endpoint"]

    def _authenticate(self) -> str | None:
        if self.client_id is None or self.key is None:
            return None
        endpoint = self._token_endpoint()
        now = int(time.time())
        payload = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": endpoint,
            "exp": now + 300,
            "jti": str(uuid.uuid4()),
        }
        key, algorithm = _signing_key(self.key)
        assertion = jwt.encode(
            payload,
            key,
            algorithm=algorithm,
            headers={"kid": self.key_id, "typ": "JWT"} if self.key_id else {"typ": "JWT"},
        )
        response = self.session.post(
            endpoint,
            data={
                "grant_type": "client_credentials",
                "scope": self.scope,
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": assertion,
            },
            timeout=(10, 30),
        )
        if response.status_code != 200:
            raise BulkError(
                f"the token endpoint refused the client ({response.status_code}): {_outcome_text(response)}"
            )
        self._token = response.json()["access_token"]
        return self._token

    def _request(self, method: str, url: str, authorised: bool = True, **kwargs: Any) -> requests.Response:
        """One request; a 401 gets a fresh token once (backend tokens expire, often within minutes)."""
        for attempt in range(2):
            headers = dict(kwargs.pop("headers", {}) or {})
            if authorised and self.client_id:
                token = self._token if self._token and attempt == 0 else self._authenticate()
                headers["Authorization"] = f"Bearer {token}"
            kwargs["headers"] = headers
            response = self.session.request(method, url, **kwargs)
            if response.status_code != 401 or not authorised or not self.client_id:
                return response
            self._token = None
        raise BulkError(f"{url} refused a fresh access token (401): {_outcome_text(response)}")

    # --- $export ---
    def kick_off(self) -> str:
        url = f"{self.base_url}/Patient/$export"
        response = self._request(
            "GET",
            url,
            params={"_type": ",".join(self.types)},
            headers={"Accept": "application/fhir+json", "Prefer": "respond-async"},
            timeout=(10, 60),
        )
        if response.status_code != 202 or "Content-Location" not in response.headers:
            raise BulkError(f"$export kick-off answered {response.status_code}: {_outcome_text(response)}")
        return response.headers["Content-Location"]

    def poll(self, status_url: str, progress: bool) -> dict[str, Any]:
        from tqdm import tqdm

        waited, delay, errors = 0.0, 1.0, 0
        with tqdm(desc="$export", bar_format="{desc}: {postfix} [{elapsed}]", disable=not progress) as bar:
            while True:
                response = self._request("GET", status_url, headers={"Accept": "application/json"}, timeout=(10, 60))
                if response.status_code == 200:
                    return response.json()
                if response.status_code in (202, 429):
                    bar.set_postfix_str(response.headers.get("X-Progress", "in progress"))
                    pause = retry_after(response, delay)
                    delay = min(delay * 2, 60.0)
                elif response.status_code >= 500:
                    errors += 1
                    if errors > self.max_server_errors:
                        raise BulkError(
                            f"the export status endpoint answered {response.status_code} {errors} times in a row "
                            f"({_outcome_text(response)}); the export is kept: run the same command again to resume "
                            "polling"
                        )
                    pause = retry_after(response, delay)
                    delay = min(delay * 2, 60.0)
                elif response.status_code in (404, 410):
                    raise BulkError(f"the server no longer knows this export ({response.status_code}); {START_AGAIN}")
                else:
                    raise BulkError(f"the export failed ({response.status_code}): {_outcome_text(response)}")
                waited += pause
                if waited > self.max_wait:
                    raise BulkError(f"the export was not ready after {self.max_wait:g} s; run again to keep waiting")
                time.sleep(pause)

    def download(self, item: dict[str, Any], target: Path, authorised: bool, progress: bool) -> None:
        """Streams one file to `target`; only a complete file gets its final name."""
        from tqdm import tqdm

        partial = target.with_name(target.name + ".part")
        try:
            with self._request(
                "GET",
                item["url"],
                authorised=authorised,
                headers={"Accept": "application/fhir+ndjson"},
                stream=True,
                timeout=(10, self.read_timeout),
            ) as response:
                if response.status_code in (404, 410):  # a rerun would ask for the same file again
                    raise BulkError(
                        f"download of {item['url']} answered {response.status_code} ({_outcome_text(response)}): the "
                        f"server no longer has this export's files; {START_AGAIN}"
                    )
                if response.status_code != 200:
                    raise BulkError(
                        f"download of {item['url']} answered {response.status_code}: {_outcome_text(response)}"
                    )
                size = int(response.headers.get("Content-Length") or 0) or None
                with (
                    partial.open("wb") as handle,
                    tqdm(total=size, desc=target.name, unit="B", unit_scale=True, disable=not progress) as bar,
                ):
                    for chunk in response.iter_content(1 << 16):
                        handle.write(chunk)
                        bar.update(len(chunk))
        except requests.RequestException as error:
            raise BulkError(
                f"download of {item['url']} stopped ({type(error).__name__}); finished files are kept: run the "
                "same command again to resume"
            ) from None
        partial.replace(target)

    def export(self, folder: Path, progress: bool = True) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        state_path = folder / STATE_FILE
        state = ExportState.load(state_path)
        if state.manifest is None:
            if state.status_url is None:
                # A new export: files an earlier one left here would be screened with it.
                for leftover in [*folder.glob("[0-9][0-9][0-9][0-9]-*.ndjson"), *folder.glob("*.ndjson.part")]:
                    leftover.unlink()
                state.status_url = self.kick_off()
                state.save(state_path)
            state.manifest = self.poll(state.status_url, progress)
            state.save(state_path)
        authorised = bool(state.manifest.get("requiresAccessToken"))
        for index, item in enumerate(state.manifest.get("output") or ()):
            if item["url"] in state.done:
                continue
            name = f"{index:04d}-{item.get('type', 'Resource')}.ndjson"
            self.download(item, folder / name, authorised, progress)
            state.done[item["url"]] = name
            state.save(state_path)
        return folder


def client_from_arguments(args: argparse.Namespace) -> ExportClient:
    key = args.private_key.read_bytes() if args.private_key else None
    if (args.client_id is None) != (key is None):
        raise BulkError("--client-id and --private-key go together (SMART Backend Services)")
    return ExportClient(args.source, args.client_id, key, args.key_id, args.scope)
