"""Compose and Kubernetes files, checked offline: against their published schemas, and against the
service's own pre-flight with the environment they give it. No container is started here."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from cds_service.config import Settings, load_settings
from cds_service.preflight import review
from cds_service.serving import gunicorn_options

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker" / "compose.yaml"
KUBERNETES = ROOT / "deploy" / "kubernetes"
SECRETS = ("POSTGRES_PASSWORD", "CYTOPENIA_AUDIT_KEY", "CYTOPENIA_PUBLIC_BASE_URL")
KUBERNETES_VERSION = "1.37.0"


def kubernetes_documents() -> dict[str, dict]:
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    return {name: yaml.safe_load((KUBERNETES / name).read_text()) for name in kustomization["resources"]}


def test_compose_file_matches_the_compose_specification():
    check = Path(sys.executable).with_name("check-jsonschema")
    result = subprocess.run(
        [str(check), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_container_scripts_pass_shellcheck():
    """The image build, its smoke check and the secrets script run as root on operators' machines."""
    shellcheck = Path(sys.executable).with_name("shellcheck")
    scripts = sorted(str(p) for p in (ROOT / "docker").glob("*.sh"))
    result = subprocess.run([str(shellcheck), *scripts], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_asks_for_every_secret_and_ships_none():
    text = COMPOSE.read_text()
    for name in SECRETS:
        assert f"${{{name}:?" in text, f"{name} must be required, not defaulted"
    assert ":-change-me" not in text and "password" not in text.lower().replace("postgres_password", "")


def test_the_secrets_script_writes_every_secret_privately(tmp_path):
    shutil.copy(ROOT / "docker" / "compose-secrets.sh", tmp_path)
    subprocess.run(["bash", str(tmp_path / "compose-secrets.sh"), "https://cds.example.org"], check=True)
    written = dict(line.split("=", 1) for line in (tmp_path / ".env").read_text().splitlines())
    assert set(written) == set(SECRETS)
    assert (
        len(written["CYTOPENIA_AUDIT_KEY"]) >= 48 and written["CYTOPENIA_PUBLIC_BASE_URL"] == "https://cds.example.org"
    )
    assert (tmp_path / ".env").stat().st_mode & 0o077 == 0
    again = subprocess.run(["bash", str(tmp_path / "compose-secrets.sh"), "https://x.example"], capture_output=True)
    assert again.returncode != 0, "an existing .env (whose password the database keeps) must not be overwritten"


def _preflight(monkeypatch, config_file: Path, environment: dict[str, str]):
    for name in ("CYTOPENIA_DEV", "CYTOPENIA_CONFIG", "CYTOPENIA_WORKERS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return review(load_settings(config_file))


def test_the_compose_service_passes_the_pre_flight(monkeypatch):
    service = yaml.safe_load(COMPOSE.read_text())["services"]["cds"]
    environment = {
        name: value.replace("${POSTGRES_PASSWORD:?run docker/compose-secrets.sh first}", "secret")
        for name, value in service["environment"].items()
        if name != "CYTOPENIA_CONFIG"
    } | {"CYTOPENIA_AUDIT_KEY": "k", "CYTOPENIA_PUBLIC_BASE_URL": "https://cds.example.org"}
    verdict = _preflight(monkeypatch, ROOT / "docker" / "cytopenia-cds.toml", environment)
    assert verdict.errors == ()


@pytest.mark.parametrize("name", list(kubernetes_documents()))
def test_kubernetes_manifests_match_the_kubernetes_schemas(name):
    kubernetes_validate.validate(kubernetes_documents()[name], KUBERNETES_VERSION, strict=True)


def _pod(kind: str) -> dict:
    documents = kubernetes_documents().values()
    return next(d for d in documents if d["kind"] == kind)["spec"]["template"]["spec"]


@pytest.mark.parametrize("kind", ["Deployment", "Job"])
def test_pods_run_as_a_non_root_user_without_privileges(kind):
    pod = _pod(kind)
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 10001
    for container in pod["containers"]:
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False and context["readOnlyRootFilesystem"] is True
        assert context["capabilities"]["drop"] == ["ALL"]


def test_the_service_has_probes_and_leaves_the_schema_to_the_migration_job(monkeypatch, tmp_path):
    [container] = _pod("Deployment")["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    [job] = _pod("Job")["containers"]
    assert job["args"] == ["migrate"]
    config = next(d for d in kubernetes_documents().values() if d["kind"] == "ConfigMap")["data"]
    toml = config["cytopenia-cds.toml"]
    assert tomllib.loads(toml)["migrate_on_start"] is False
    (tmp_path / "site.toml").write_text(toml)
    environment = {
        "CYTOPENIA_DATABASE_URL": "postgresql+psycopg://app@db/cds",
        "CYTOPENIA_REDIS_URL": "redis://redis:6379/0",
        "CYTOPENIA_AUDIT_KEY": "k",
    }
    assert {e["name"] for e in container["env"]} == {"CYTOPENIA_CONFIG", "CYTOPENIA_WORKERS", *environment}
    environment["CYTOPENIA_WORKERS"] = next(e["value"] for e in container["env"] if e["name"] == "CYTOPENIA_WORKERS")
    assert _preflight(monkeypatch, tmp_path / "site.toml", environment).errors == ()


def test_the_service_runs_as_many_workers_on_a_large_host_as_on_a_small_one():
    """The default is one worker per CPU the process may use. A pod without a CPU limit sees every CPU of
    its node, and a compose host may have dozens: on a 64-core machine that outgrows the pod's memory and
    PostgreSQL's default 100 connections (each worker holds one per thread)."""
    threads = gunicorn_options(Settings(dev=True))["threads"]
    deployment = next(d for d in kubernetes_documents().values() if d["kind"] == "Deployment")
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    workers = int(next(e["value"] for e in container["env"] if e["name"] == "CYTOPENIA_WORKERS"))
    assert deployment["spec"]["replicas"] * workers * threads <= 100
    compose = yaml.safe_load(COMPOSE.read_text())["services"]["cds"]["environment"]
    assert int(compose["CYTOPENIA_WORKERS"]) * threads <= 100
