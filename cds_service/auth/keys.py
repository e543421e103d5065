"""A client's public keys: a file loaded at start-up, or a URL fetched with a cache and a refresh limit."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from jwt import PyJWK, PyJWKClient, PyJWKSet
from jwt.exceptions import PyJWKClientError, PyJWKSetError

from cds_service.compute_turn import waiting

CACHE_SECONDS = 300  # keys rotate rarely; five minutes is PyJWKClient's own default
# An unknown kid refetches the set at most this often, so tokens with random kids cannot make us hammer the EHR.
REFRESH_INTERVAL_SECONDS = 60
FETCH_TIMEOUT_SECONDS = 5


class KeyNotFound(Exception):
    """No usable key for this kid (after any refresh the limit permits), or the key set is unreachable."""


class KeySet(Protocol):
    def key(self, kid: str) -> PyJWK: ...


def _find(keys: PyJWKSet, kid: str) -> PyJWK | None:
    return next((k for k in keys.keys if k.key_id == kid), None)


class FileKeySet:
    """Keys the integrator placed on disk; read once, so a bad file stops the server at start-up."""

    def __init__(self, path: Path):
        try:
            self._keys = PyJWKSet.from_json(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError, PyJWKSetError) as error:
            raise ValueError(f"cannot load a JWK Set from {path}: {error}") from None

    def key(self, kid: str) -> PyJWK:
        if (found := _find(self._keys, kid)) is None:
            raise KeyNotFound(f"no key with kid {kid[:80]!r} in the configured key file")
        return found


class _KeySetClient(PyJWKClient):
    """Only an actual fetch hands this process's turn on; a cached key set is read without waiting."""

    def fetch_data(self) -> Any:
        with waiting():
            return super().fetch_data()


class UrlKeySet:
    """The client's published JWK Set, cached; refetched when a token names a kid we have not seen."""

    def __init__(self, url: str, clock: Callable[[], float] = time.monotonic):
        self.url = url
        self._client = _KeySetClient(url, cache_jwk_set=True, lifespan=CACHE_SECONDS, timeout=FETCH_TIMEOUT_SECONDS)
        self._clock = clock
        self._last_refresh = float("-inf")
        self._lock = threading.Lock()

    def key(self, kid: str) -> PyJWK:
        try:
            if (found := _find(self._client.get_jwk_set(), kid)) is not None:
                return found
            with self._lock:
                if self._clock() - self._last_refresh < REFRESH_INTERVAL_SECONDS:
                    raise KeyNotFound(f"unknown kid {kid[:80]!r}; key set refreshed recently, not refetched")
                self._last_refresh = self._clock()
            found = _find(self._client.get_jwk_set(refresh=True), kid)
        except (PyJWKClientError, PyJWKSetError) as error:
            raise KeyNotFound(f"key set {self.url} unavailable: {error}") from None
        if found is None:
            raise KeyNotFound(f"unknown kid {kid[:80]!r} even after refreshing the key set")
        return found
