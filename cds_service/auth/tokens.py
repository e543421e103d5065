"""Verifying one CDS Hooks JWT (spec §Security, and the CDS Hooks best-practice checks) against a trusted client."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from jwt import PyJWK

from cds_service.auth.keys import KeyNotFound, KeySet
from cds_service.auth.replay import ReplayCache
from cds_service.config import ClientConfig

REQUIRED_CLAIMS = ["iss", "aud", "exp", "iat", "jti"]
KEY_TYPES = {"RS": "RSA", "PS": "RSA", "ES": "EC"}


class Rejected(Exception):
    """Why a token was refused: for the log only, never for the caller."""


@dataclass(frozen=True, slots=True)
class TrustedClient:
    config: ClientConfig
    keys: KeySet

    @property
    def issuer(self) -> str:
        return self.config.issuer


@dataclass(frozen=True, slots=True)
class Policy:
    leeway_seconds: int
    max_lifetime_seconds: int


def _unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as error:
        raise Rejected(f"malformed token ({type(error).__name__})") from None
    return header, claims


def _client_for(claims: dict[str, Any], clients: Mapping[str, TrustedClient]) -> TrustedClient:
    issuer = claims.get("iss")
    if not isinstance(issuer, str) or issuer not in clients:
        raise Rejected(f"unregistered issuer {str(issuer)[:200]!r}")
    return clients[issuer]


def _check_header(header: dict[str, Any], client: TrustedClient) -> tuple[str, str]:
    if header.get("typ") != "JWT":
        raise Rejected(f"header typ is {str(header.get('typ'))[:20]!r}, not 'JWT'")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise Rejected("header has no kid")
    alg = header.get("alg")
    if alg not in client.config.algorithms:
        raise Rejected(
            f"alg {str(alg)[:20]!r} is not among {client.config.algorithms} configured for {client.issuer!r}"
        )
    jku = header.get("jku")
    if jku is not None and jku not in client.config.accepted_jku:
        raise Rejected(f"jku {str(jku)[:200]!r} is not configured for {client.issuer!r} (never fetched)")
    return kid, alg


def verify(
    token: str, audience: str, clients: Mapping[str, TrustedClient], policy: Policy, replay: ReplayCache
) -> tuple[TrustedClient, dict[str, Any]]:
    """The client and the verified claims, or Rejected. The replay cache is consulted last, so a
    token that fails any other check does not use up its jti."""
    header, unverified = _unverified(token)
    client = _client_for(unverified, clients)
    kid, alg = _check_header(header, client)
    try:
        key = client.keys.key(kid)
    except KeyNotFound as error:
        raise Rejected(str(error)) from None
    if not _key_fits(key, alg):
        raise Rejected(f"key {kid[:80]!r} ({key.key_type}) cannot verify {alg}")
    try:
        claims = jwt.decode(
            token,
            key.key,
            algorithms=[alg],
            audience=audience,
            issuer=client.issuer,
            leeway=policy.leeway_seconds,
            options={"require": REQUIRED_CLAIMS},
        )
    except jwt.PyJWTError as error:
        raise Rejected(f"{type(error).__name__}: {error}") from None
    _check_times(claims, policy)
    tenant = claims.get("tenant")
    if tenant is not None and not isinstance(tenant, str):
        raise Rejected("tenant is not a string (CDS Hooks 2.0 defines it as one)")
    if client.config.tenants and tenant not in client.config.tenants:
        raise Rejected(f"tenant {str(tenant)[:200]!r} is not allowed for {client.issuer!r}")
    jti = claims["jti"]
    if not isinstance(jti, str) or not jti:
        raise Rejected("jti is not a non-empty string")
    ttl = int(claims["exp"] - time.time()) + policy.leeway_seconds
    if not replay.first_use(client.issuer, jti, ttl):
        raise Rejected("jti already used (replay)")
    return client, claims


def _key_fits(key: PyJWK, alg: str) -> bool:
    """Judged by the key type, not the JWK's optional `alg` member: PyJWT reads an RSA JWK without `alg` as
    RS256, yet EHRs publish such keys for RS384. PyJWT itself refuses an EC key of the wrong curve."""
    return key.key_type == KEY_TYPES.get(alg[:2])


def _check_times(claims: dict[str, Any], policy: Policy) -> None:
    """PyJWT refuses a past exp and a future nbf or iat, but reads numeric strings as numbers; RFC 7519
    makes them NumericDate (JSON numbers), so anything else is malformed. An overlong lifetime is ours to
    refuse, as it would keep the jti in the replay cache for as long."""
    for name in ("exp", "iat", "nbf"):
        value = claims.get(name)
        if (name in claims and type(value) not in (int, float)) or value != value:
            raise Rejected(f"{name} is not a number (RFC 7519 NumericDate)")
    if claims["exp"] - claims["iat"] > policy.max_lifetime_seconds:
        raise Rejected(f"token lifetime exceeds {policy.max_lifetime_seconds} s")
