"""`screen` from a FHIR base URL: Bulk Data $export with SMART Backend Services, and its failures."""

from __future__ import annotations

import csv
from pathlib import Path

import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from cds_service.cli import main
from cds_service.screening.bulk import STATE_FILE, BulkError, ExportClient
from cds_service.screening.run import Options, screen
from tests.bulk_export_server import BulkServer, running
from tests.screening_support import AS_OF, PATIENTS, small_population

pytestmark = pytest.mark.slow  # a Bulk Data server and whole screening runs


def _keys(private) -> tuple[bytes, bytes]:
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem, public


RSA_PRIVATE, RSA_PUBLIC = _keys(rsa.generate_private_key(public_exponent=65537, key_size=2048))
EC_PRIVATE, EC_PUBLIC = _keys(ec.generate_private_key(ec.SECP384R1()))


@pytest.fixture(scope="module")
def population(tmp_path_factory) -> Path:
    return small_population(tmp_path_factory.mktemp("population"))


@pytest.fixture
def server(population):
    with running(BulkServer(population, {"rs-client": RSA_PUBLIC, "es-client": EC_PUBLIC})) as bulk:
        yield bulk


def _client(server: BulkServer, client_id="rs-client", key=RSA_PRIVATE, **options) -> ExportClient:
    return ExportClient(server.base, client_id, key, "test-key", **options)


def _rows(out: Path) -> list[dict]:
    with (out / "worklist.csv").open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_screen_from_a_url_exports_then_gives_the_worklist_of_the_same_files(server, population, tmp_path):
    key = tmp_path / "client.pem"
    key.write_bytes(RSA_PRIVATE)
    out = tmp_path / "from-url"
    code = main(
        [
            "screen",
            server.base,
            "--out",
            str(out),
            "--as-of",
            AS_OF.isoformat(),
            "--client-id",
            "rs-client",
            "--private-key",
            str(key),
            "--key-id",
            "test-key",
            "--no-progress",
            "--processes",
            "2",
        ]
    )
    assert code == 0
    assert orjson.loads((out / "summary.json").read_bytes())["patients_in"] == PATIENTS
    direct = tmp_path / "from-folder"
    screen(population, direct, Options(as_of=AS_OF, processes=2, progress=False, chart=False))
    assert _rows(out) == _rows(direct)
    assert server.kickoffs == 1


def test_es384_client_assertion_is_accepted_and_polling_honours_429_and_202(server, tmp_path):
    folder = _client(server, "es-client", EC_PRIVATE).export(tmp_path / "export", progress=False)
    assert sorted(p.name for p in folder.glob("*.ndjson"))[0].endswith("AllergyIntolerance.ndjson")
    job = next(iter(server.polls))
    assert server.polls[job] == server.polls_before_ready + 1  # 429, then 202 with progress, then the manifest


def test_an_expired_token_is_replaced_once(server, tmp_path):
    server.faults.add("first_token_expired")
    _client(server).export(tmp_path / "export", progress=False)
    assert server.tokens_issued >= 2


def test_tokens_that_never_work_give_a_clear_error(server, tmp_path):
    server.faults.add("expire_tokens")
    with pytest.raises(BulkError, match="refused a fresh access token"):
        _client(server).export(tmp_path / "export", progress=False)


def test_500_while_polling_stops_with_a_clear_error_and_a_rerun_resumes_without_a_new_kickoff(server, tmp_path):
    server.faults.add("status_500")
    server.status_errors = 10
    client = _client(server, max_server_errors=1)
    with pytest.raises(BulkError, match="answered 500 2 times.*run the same command again"):
        client.export(tmp_path / "export", progress=False)
    assert orjson.loads((tmp_path / "export" / STATE_FILE).read_bytes())["status_url"]
    server.status_errors = 0
    _client(server).export(tmp_path / "export", progress=False)
    assert server.kickoffs == 1


def test_server_errors_for_a_few_polls_are_ridden_out(server, tmp_path):
    """The SMART reference server (smart-on-fhir/bulk-data-server) answers an export with a simulated
    transient error 500 "transient ... Please try again" for about 6 s of polls: the default client waits."""
    server.faults.add("status_500")
    server.status_errors, server.status_error_retry_after = 5, "0"
    folder = _client(server).export(tmp_path / "export", progress=False)
    assert server.status_errors == 0 and server.kickoffs == 1
    assert sorted(p.name for p in folder.glob("*.ndjson"))


def test_expired_files_say_to_start_a_new_export_not_to_run_again(server, tmp_path):
    server.faults.add("files_expired")
    with pytest.raises(BulkError, match=f"answered 410.*no longer has this export's files; remove {STATE_FILE}"):
        _client(server).export(tmp_path / "export", progress=False)


def test_a_new_export_in_the_same_folder_leaves_no_file_of_the_earlier_one(server, tmp_path):
    """After an expired export the command says to remove the state file; the next export's manifest may
    list fewer files, and a leftover `0009-Observation.ndjson` would be screened with it."""
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "0009-Observation.ndjson").write_text('{"resourceType": "Observation", "id": "old"}\n')
    (folder / "0001-Patient.ndjson.part").write_text("{")
    (folder / "notes.txt").write_text("kept")
    _client(server).export(folder, progress=False)
    names = sorted(p.name for p in folder.iterdir())
    assert "0009-Observation.ndjson" not in names and not any(n.endswith(".part") for n in names)
    exported = [n for n in names if n.endswith(".ndjson")]
    assert "notes.txt" in names and len(exported) == len(list(server.source.iterdir()))


def test_a_truncated_ndjson_line_is_counted_and_named_and_the_rest_screened(server, tmp_path):
    server.faults.add("truncate")
    folder = _client(server).export(tmp_path / "export", progress=False)
    summary = screen(folder, tmp_path / "out", Options(as_of=AS_OF, processes=1, progress=False, chart=False))
    assert summary.bad_input["not JSON"] == 1
    assert "Observation.ndjson" in summary.bad_input_examples["not JSON"][0]
    assert summary.balanced() and summary.patients_in == PATIENTS


def test_a_file_that_never_finishes_times_out_clearly_and_a_rerun_fetches_only_what_is_missing(server, tmp_path):
    server.faults.add("hang")
    with pytest.raises(BulkError, match="stopped.*run the\\s+same command again"):
        _client(server, read_timeout=5).export(tmp_path / "export", progress=False)
    state = orjson.loads((tmp_path / "export" / STATE_FILE).read_bytes())
    assert state["done"] and not any("Observation" in name for name in state["done"].values())
    server.faults.discard("hang")
    folder = _client(server).export(tmp_path / "export", progress=False)
    assert not list(folder.glob("*.part"))
    assert (folder / "0004-Observation.ndjson").read_bytes() == (server.source / "Observation.ndjson").read_bytes()
    assert server.kickoffs == 1
