"""Keys the tests generate and tokens they mint, the way an EHR would sign CDS Hooks calls."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import get_default_algorithms

EHR_ISSUER = "https://ehr.test"
BASE_URL = "https://cds.test"
SERVICE_PATH = "/cds-services/cytopenia-review"


@dataclass(frozen=True)
class SigningKey:
    alg: str
    kid: str
    private: Any

    @classmethod
    def generate(cls, alg: str, kid: str | None = None) -> SigningKey:
        curves = {"ES256": ec.SECP256R1, "ES384": ec.SECP384R1}
        private = ec.generate_private_key(curves[alg]()) if alg in curves else rsa.generate_private_key(65537, 2048)
        return cls(alg, kid or f"{alg.lower()}-{uuid.uuid4()}", private)

    def public_jwk(self) -> dict[str, Any]:
        jwk = json.loads(get_default_algorithms()[self.alg].to_jwk(self.private.public_key()))
        return {**jwk, "kid": self.kid, "alg": self.alg, "use": "sig"}

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def mint(self, claims: dict[str, Any], **header: Any) -> str:
        """`typ=None` leaves typ out (PyJWT drops an empty one); other None values leave their member out."""
        headers = {"kid": self.kid, "typ": "JWT", **header}
        headers = {
            k: ("" if k == "typ" and v is None else v) for k, v in headers.items() if v is not None or k == "typ"
        }
        return jwt.encode(claims, self.private, algorithm=self.alg, headers=headers)


def write_jwks(path: Path, *keys: SigningKey) -> Path:
    path.write_text(json.dumps({"keys": [k.public_jwk() for k in keys]}), encoding="utf-8")
    return path


def claims(aud: str = BASE_URL + SERVICE_PATH, iss: str = EHR_ISSUER, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"iss": iss, "aud": aud, "exp": now + 300, "iat": now, "jti": str(uuid.uuid4())}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    return ".".join([_b64(json.dumps(header).encode()), _b64(json.dumps(payload).encode()), _b64(signature)])


def hs256_with_secret(secret: bytes, header: dict[str, Any], payload: dict[str, Any]) -> str:
    """The classic key-confusion forgery: HMAC keyed with the verifier's public key (PyJWT refuses to mint it)."""
    signing_input = ".".join(unsigned(header, payload).split(".")[:2])
    return signing_input + "." + _b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
