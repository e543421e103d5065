"""A test-only SMART on FHIR EHR: an EHR launch, an authorization server and a FHIR endpoint.

What a real EHR does when a clinician follows a card's `smart` link, reduced to what the app and
the service rely on (SMART App Launch 2.x):
- `GET /ehr/launch?url=…&patient=…&appContext=…` stands for the EHR acting on the card link: it
  mints a launch code and opens the app's launch URL with `iss` and `launch`;
- `GET /fhir/.well-known/smart-configuration` says where to authorize, get tokens and introspect;
- `GET /authorize` checks the client, redirect URI, launch code, `aud` and a PKCE S256 challenge;
- `POST /token` checks the code verifier and answers with `patient` and `appContext`;
- `POST /introspect` (RFC 7662, SMART's introspection) answers the resource server (the service);
- `/fhir/…` proxies reads to the project's real FHIR engine (tests/fhir_server), for the token's
  patient only.
Nothing here is production code; it runs on loopback in a thread.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode

import requests
from flask import Flask, Response, jsonify, redirect, request
from werkzeug.serving import make_server

CLIENT_ID = "cytopenia-cds"
RESOURCE_SERVER = ("cytopenia-cds-service", "introspection-secret")


@dataclass
class Grant:
    patient: str
    scope: str
    app_context: str | None
    client_id: str
    expires: float = 0.0


@dataclass
class SmartEhr:
    fhir_engine: str  # the real FHIR engine's base URL
    redirect_uri: str  # the app page registered for CLIENT_ID
    base: str = ""
    launches: dict[str, dict] = field(default_factory=dict)
    codes: dict[str, dict] = field(default_factory=dict)
    tokens: dict[str, Grant] = field(default_factory=dict)
    seen: list[dict] = field(default_factory=list)  # what each endpoint was asked (no tokens)

    @property
    def iss(self) -> str:
        return f"{self.base}/fhir"

    def revoke_all(self) -> None:
        self.tokens.clear()

    def issue_token(self, patient: str, scope: str, client_id: str = CLIENT_ID, lifetime: float = 3600) -> str:
        """A token as /token would issue it, for refusal tests that need no browser."""
        token = secrets.token_urlsafe(24)
        self.tokens[token] = Grant(patient, scope, None, client_id, time.time() + lifetime)
        return token

    def app(self) -> Flask:
        flask = Flask("smart_ehr")

        @flask.after_request
        def _cors(response: Response) -> Response:
            response.headers["Access-Control-Allow-Origin"] = request.headers.get("Origin", "*")
            response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type, Accept"
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
            return response

        @flask.before_request
        def _preflight():
            return Response(status=204) if request.method == "OPTIONS" else None

        @flask.get("/ehr/launch")
        def ehr_launch():
            launch = secrets.token_urlsafe(12)
            self.launches[launch] = {
                "patient": request.args["patient"],
                "appContext": request.args.get("appContext"),
            }
            self.seen.append({"endpoint": "launch", "appContext": request.args.get("appContext")})
            target = request.args["url"]
            separator = "&" if "?" in target else "?"
            return redirect(f"{target}{separator}{urlencode({'iss': self.iss, 'launch': launch})}")

        @flask.get("/fhir/.well-known/smart-configuration")
        def smart_configuration():
            return jsonify(
                {
                    "issuer": self.base,
                    "authorization_endpoint": f"{self.base}/authorize",
                    "token_endpoint": f"{self.base}/token",
                    "introspection_endpoint": f"{self.base}/introspect",
                    "grant_types_supported": ["authorization_code"],
                    "code_challenge_methods_supported": ["S256"],
                    "token_endpoint_auth_methods_supported": ["none"],
                    "scopes_supported": ["launch", "patient/*.rs"],
                    "response_types_supported": ["code"],
                    "capabilities": ["launch-ehr", "client-public", "context-ehr-patient", "permission-v2"],
                }
            )

        @flask.get("/authorize")
        def authorize():
            args = request.args
            problem = None
            if args.get("response_type") != "code":
                problem = "response_type must be code"
            elif args.get("client_id") != CLIENT_ID:
                problem = "unknown client_id"
            elif args.get("redirect_uri") != self.redirect_uri:
                problem = "redirect_uri is not registered"
            elif args.get("launch") not in self.launches:
                problem = "unknown launch"
            elif args.get("aud") != self.iss:
                problem = "aud is not this FHIR server"
            elif args.get("code_challenge_method") != "S256" or not args.get("code_challenge"):
                problem = "PKCE S256 is required"
            elif "launch" not in args.get("scope", "").split():
                problem = "scope must include launch"
            self.seen.append({"endpoint": "authorize", "problem": problem, "scope": args.get("scope")})
            if problem:
                return Response(problem, status=400)
            launch = self.launches.pop(args["launch"])
            code = secrets.token_urlsafe(16)
            self.codes[code] = {**launch, "challenge": args["code_challenge"], "scope": args["scope"]}
            return redirect(f"{args['redirect_uri']}?{urlencode({'code': code, 'state': args.get('state', '')})}")

        @flask.post("/token")
        def token():
            form = request.form
            grant = self.codes.pop(form.get("code", ""), None)
            verifier = form.get("code_verifier", "")
            digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            problem = None
            if grant is None or form.get("grant_type") != "authorization_code":
                problem = "invalid_grant"
            elif form.get("redirect_uri") != self.redirect_uri or form.get("client_id") != CLIENT_ID:
                problem = "invalid_client"
            elif digest != grant["challenge"]:
                problem = "invalid_grant: PKCE verifier does not match"
            self.seen.append({"endpoint": "token", "problem": problem})
            if problem:
                return jsonify({"error": problem}), 400
            access = self.issue_token(grant["patient"], grant["scope"])
            self.tokens[access].app_context = grant["appContext"]
            answer = {
                "access_token": access,
                "token_type": "Bearer",
                "expires_in": 3600,
                "scope": grant["scope"],
                "patient": grant["patient"],
            }
            if grant["appContext"] is not None:
                answer["appContext"] = grant["appContext"]
            return jsonify(answer)

        @flask.post("/introspect")
        def introspect():
            credentials = request.authorization
            if credentials is None or (credentials.username, credentials.password) != RESOURCE_SERVER:
                return jsonify({"error": "invalid_client"}), 401
            grant = self.tokens.get(request.form.get("token", ""))
            self.seen.append({"endpoint": "introspect", "active": grant is not None})
            if grant is None or grant.expires <= time.time():
                return jsonify({"active": False})
            return jsonify(
                {
                    "active": True,
                    "client_id": grant.client_id,
                    "scope": grant.scope,
                    "patient": grant.patient,
                    "exp": int(grant.expires),
                }
            )

        @flask.get("/fhir/<path:path>")
        def fhir(path: str):
            scheme, _, access = request.headers.get("Authorization", "").partition(" ")
            grant = self.tokens.get(access) if scheme.lower() == "bearer" else None
            if grant is None:
                return jsonify({"resourceType": "OperationOutcome", "issue": [{"code": "login"}]}), 401
            if request.args.get("patient", grant.patient) != grant.patient or (
                path.startswith("Patient/") and path != f"Patient/{grant.patient}"
            ):
                return jsonify({"resourceType": "OperationOutcome", "issue": [{"code": "forbidden"}]}), 403
            query = request.query_string.decode()
            upstream = requests.get(f"{self.fhir_engine}/{path}" + (f"?{query}" if query else ""), timeout=30)
            self.seen.append({"endpoint": "fhir", "path": path.split("/")[0], "status": upstream.status_code})
            body = upstream.text.replace(self.fhir_engine, self.iss)
            return Response(body, status=upstream.status_code, mimetype="application/fhir+json")

        return flask


class Served:
    """A WSGI app on a loopback port in a thread, stopped by `stop()`."""

    def __init__(self, wsgi_app):
        self.server = make_server("127.0.0.1", 0, wsgi_app, threaded=True)
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(10)
