"""`cytopenia-cds screen` on a small population made from the Synthea fixtures."""

from __future__ import annotations

import csv
import gzip
import re
import shutil
import subprocess
import sys
import tomllib
import uuid
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cds_service.cli import main
from cds_service.clinical.knowledge import SITE_THRESHOLDS
from cds_service.screening.cli import NEEDS
from cds_service.screening.evaluate import COLUMNS, screen_patient
from cds_service.screening.ingest import MAX_LINE, connect, ingest
from cds_service.screening.outputs import compare_worklists
from cds_service.screening.run import Options, candidates_by_bucket, screen
from tests.screening_support import AS_OF, BAD_LINES, PATIENTS, resources_by_patient, small_population, with_bad_input

pytestmark = pytest.mark.slow  # whole screening runs over generated populations


@pytest.fixture(scope="module")
def population(tmp_path_factory) -> Path:
    return small_population(tmp_path_factory.mktemp("population"))


@pytest.fixture(scope="module")
def screened(population, tmp_path_factory) -> Path:
    source = tmp_path_factory.mktemp("with-bad-input")
    shutil.copytree(population, source, dirs_exist_ok=True)
    with_bad_input(source)
    out = tmp_path_factory.mktemp("screen")
    code = main(
        [
            "screen",
            str(source),
            "--out",
            str(out),
            "--as-of",
            AS_OF.isoformat(),
            "--fhir",
            "Flag",
            "--processes",
            "2",
            "--no-progress",
        ]
    )
    assert code == 0
    return out


def test_the_sites_configuration_applies_as_in_the_hooks(population, tmp_path):
    """A site that raised the default platelet lower limit sees the thrombocytopenias its hooks would show."""
    config = tmp_path / "site.toml"
    config.write_text("[thresholds]\ndefault_lln_platelets = 400\n", encoding="utf-8")
    counts = {}
    try:
        for name, extra in (("cited", []), ("site", ["--config", str(config)])):
            out = tmp_path / name
            arguments = ["screen", str(population), "--out", str(out), "--as-of", AS_OF.isoformat(), "--no-progress"]
            assert main([*arguments, "--processes", "1", *extra]) == 0
            with (out / "worklist.csv").open(encoding="utf-8") as handle:
                counts[name] = sum(r["finding"] == "thrombocytopenia" for r in csv.DictReader(handle))
    finally:
        SITE_THRESHOLDS.set({})  # the command installs the site's values in this process
    assert counts["site"] > counts["cited"]


def _summary(out: Path) -> dict:
    return orjson.loads((out / "summary.json").read_bytes())


def test_every_patient_is_screened_or_rejected_with_a_reason(screened):
    summary = _summary(screened)
    assert summary["patients_in"] == PATIENTS
    assert summary["screened"] + len(summary["rejected"]) == PATIENTS


def test_bad_input_is_counted_and_named_without_stopping_the_run(screened):
    summary = _summary(screened)
    counts = summary["bad_input"]
    assert counts["not JSON"] == 2  # a line of prose and a line cut off at the end of the file
    assert counts["resource of a type the screen does not read"] == 1
    assert counts["refers to no Patient in the export"] == 1
    assert counts["unknown unit"] == 1
    examples = summary["bad_input_examples"]
    assert any(e.startswith("Extra.ndjson:1 ") for e in examples["not JSON"])
    assert any("furlongs" in e for e in examples["unknown unit"])
    assert set(BAD_LINES) <= set(counts)


def test_worklist_lists_graded_findings_with_why_and_what_next(screened):
    with (screened / "worklist.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == COLUMNS
    graded = [r for r in rows if r["finding"] == "neutropenia" and r["grade"] in ("3", "4")]
    assert graded and all(r["indicator"] == "warning" and r["why"] and r["suggested_action"] for r in graded)
    assert any(r["finding"] == "febrile_neutropenia" and r["indicator"] == "critical" for r in rows)
    assert any(r["finding"] == "clozapine" and "ANC due" in r["why"] for r in rows)
    assert any(r["finding"] == "tki_held_not_restarted" for r in rows)
    assert (screened / "worklist.parquet").stat().st_size > 0
    assert (screened / "findings-by-grade.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_flags_carry_the_worklist_words_as_code_text_only(screened):
    flags = [orjson.loads(line) for line in (screened / "Flag.ndjson").read_bytes().splitlines()]
    assert flags
    assert all(f["resourceType"] == "Flag" and set(f["code"]) == {"text"} for f in flags)
    assert all(f["subject"]["reference"].startswith("Patient/") for f in flags)


def test_worklists_compare_by_their_rows_not_their_order(screened, tmp_path):
    """The benchmark's engine check: rows in another order are the same worklist; a changed row shows on both sides."""
    with (screened / "worklist.csv").open(newline="", encoding="utf-8") as handle:
        header, *rows = list(csv.reader(handle))
    changed = [*rows[1:], [*rows[0][:3], "9", *rows[0][4:]]]
    for name, body in (("reordered", rows[::-1]), ("changed", changed)):
        (tmp_path / name).mkdir()
        with (tmp_path / name / "worklist.csv").open("w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows([header, *body])
    reordered = compare_worklists(tmp_path / "reordered", screened)
    assert reordered.equal() and reordered.rows == len(rows) > 1
    difference = compare_worklists(tmp_path / "changed", screened)
    assert not difference.equal()
    assert difference.only_first == [(*rows[0][:3], "9", *rows[0][4:])]
    assert difference.only_second == [tuple(rows[0])]


@pytest.mark.parametrize("shift", [timedelta(0), timedelta(days=-20), timedelta(days=3), timedelta(days=400)])
def test_prefilter_keeps_every_patient_a_rule_flags(population, tmp_path, shift):
    """The property: for every patient of the corpus, a finding implies the prefilter kept the patient."""
    as_of = AS_OF + shift
    con = connect(tmp_path)
    ingested = ingest(population, tmp_path, con)
    kept = {p for patients in candidates_by_bucket(con, ingested.parquet, as_of).values() for p in patients}
    flagged = {p for p, resources in resources_by_patient(population).items() if screen_patient(p, resources, as_of)}
    assert flagged, "the corpus must give the property something to hold"
    assert flagged - kept == set()


def test_prefilter_keeps_a_clozapine_patient_whose_anc_is_normal_but_overdue(population, tmp_path):
    con = connect(tmp_path)
    ingested = ingest(population, tmp_path, con)
    kept = {p for patients in candidates_by_bucket(con, ingested.parquet, AS_OF).values() for p in patients}
    overdue = [
        p
        for p, resources in resources_by_patient(population).items()
        if [r.finding for r in screen_patient(p, resources, AS_OF)] == ["clozapine"]
    ]
    assert overdue and set(overdue) <= kept


CODES = {
    "6690-2": "count",
    "751-8": "count",
    "770-8": "percent",
    "30451-9": "count",
    "731-0": "count",
    "718-7": "hemoglobin",
    "777-3": "count",
    "8310-5": "temperature",
}
UNITS = {
    "count": ["10*3/uL", "10*9/L", "/uL", "cells/uL", "K/uL"],
    "percent": ["%"],
    "hemoglobin": ["g/dL", "g/L", "mmol/L"],
    "temperature": ["Cel", "[degF]"],
}
observation = st.fixed_dictionaries(
    {
        "code": st.sampled_from(sorted(CODES)),
        "value": st.floats(0, 3000, allow_nan=False).map(lambda v: round(v, 2)),
        "unit_index": st.integers(0, 4),
        "hours_before": st.integers(-30, 24 * 60),
        "low": st.one_of(st.none(), st.floats(0, 200, allow_nan=False).map(lambda v: round(v, 1))),
    }
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    observations=st.lists(observation, min_size=1, max_size=6),
    sex=st.sampled_from(["male", "female"]),
    born=st.sampled_from(["2019-06-01", "1990-03-01", "1950-01-01"]),
    order=st.sampled_from([None, "clozapine", "imatinib", "oxaliplatin"]),
)
def test_prefilter_never_drops_a_generated_patient_a_rule_flags(tmp_path, observations, sex, born, order):
    """The same property on made-up results around every cut-off, unit and reference range."""
    from cds_service.screening.generate import _drug

    patient = {"resourceType": "Patient", "id": "p1", "gender": sex, "birthDate": born}
    resources = [patient]
    for index, o in enumerate(observations):
        dimension = CODES[o["code"]]
        unit = UNITS[dimension][o["unit_index"] % len(UNITS[dimension])]
        element = {
            "resourceType": "Observation",
            "id": f"o{index}",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": o["code"]}]},
            "subject": {"reference": "Patient/p1"},
            "effectiveDateTime": (AS_OF - timedelta(hours=o["hours_before"])).isoformat(),
            "valueQuantity": {"value": o["value"], "unit": unit, "code": unit},
        }
        if o["low"] is not None:
            element["referenceRange"] = [{"low": {"value": o["low"], "unit": unit}}]
        resources.append(element)
    if order:
        resources.append(
            {
                "resourceType": "MedicationRequest",
                "id": "m1",
                "status": "active",
                "intent": "order",
                "medicationCodeableConcept": _drug(order),
                "subject": {"reference": "Patient/p1"},
                "authoredOn": (AS_OF - timedelta(days=100)).isoformat(),
            }
        )
    folder = tmp_path / uuid.uuid4().hex
    (folder / "in").mkdir(parents=True)
    (folder / "in" / "all.ndjson").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in resources))
    con = connect(folder)
    ingested = ingest(folder / "in", folder, con)
    kept = {p for patients in candidates_by_bucket(con, ingested.parquet, AS_OF).values() for p in patients}
    con.close()
    if screen_patient("p1", resources, AS_OF):
        assert "p1" in kept


def test_gzipped_ndjson_gives_the_same_worklist(population, tmp_path):
    compressed = tmp_path / "gz"
    compressed.mkdir()
    for path in population.glob("*.ndjson"):
        (compressed / f"{path.name}.gz").write_bytes(gzip.compress(path.read_bytes()))
    options = Options(as_of=AS_OF, processes=1, progress=False, chart=False)
    screen(compressed, tmp_path / "from-gz", options)
    screen(population, tmp_path / "from-plain", options)
    assert (tmp_path / "from-gz" / "worklist.csv").read_text() == (tmp_path / "from-plain" / "worklist.csv").read_text()


def test_a_line_too_long_to_read_names_its_file_and_the_other_files_are_screened(population, tmp_path):
    source = tmp_path / "with-a-huge-line"
    shutil.copytree(population, source)
    (source / "Huge.ndjson").write_bytes(b'{"resourceType": "Basic", "note": "' + b"x" * (MAX_LINE + 10) + b'"}\n')
    summary = screen(source, tmp_path / "out", Options(as_of=AS_OF, processes=1, progress=False, chart=False))
    assert summary.bad_input["file could not be read"] == 1
    assert summary.bad_input_examples["file could not be read"][0].startswith("Huge.ndjson")
    assert summary.patients_in == PATIENTS and summary.balanced()


def test_observations_no_hook_reads_still_give_their_lab_rows(tmp_path):
    """The ingest keeps parsed fields only for Observations that can give a lab row: a hook reads them, or they
    carry components, or a lab code no prefetch asks for (systolic pressure on its own). Each kind still gives
    its row; an Observation with none of these gives none."""
    source = tmp_path / "source"
    source.mkdir()

    def observation(ident: str, code: str, **fields: object) -> dict:
        return {
            "resourceType": "Observation",
            "id": ident,
            "status": "final",
            "subject": {"reference": "Patient/p1"},
            "effectiveDateTime": "2021-01-30T08:00:00+00:00",
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            **fields,
        }

    def quantity(value: float, unit: str) -> dict:
        return {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}

    resources = [
        {"resourceType": "Patient", "id": "p1"},
        observation("read", "718-7", valueQuantity=quantity(9.0, "g/dL")),
        observation("systolic", "8480-6", valueQuantity=quantity(85, "mm[Hg]")),
        observation(
            "panel",
            "72166-2",
            component=[
                {
                    "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
                    "valueQuantity": quantity(8.5, "g/dL"),
                }
            ],
        ),
        observation("heart-rate", "8867-4", valueQuantity=quantity(80, "/min")),
    ]
    (source / "all.ndjson").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in resources))
    out = tmp_path / "out"
    con = connect(out)
    parquet = ingest(source, out, con).parquet
    labs = con.execute(
        f"SELECT id, analyte, value FROM read_parquet('{parquet}/labs/*/*.parquet') ORDER BY id"
    ).fetchall()
    assert labs == [
        ("panel", "hemoglobin", 8.5),
        ("read", "hemoglobin", 9.0),
        ("systolic", "systolic_blood_pressure", 85.0),
    ]


@pytest.mark.parametrize(("engine", "extras"), [("duckdb", "screen"), ("spark", "spark")])
def test_without_its_extra_the_screen_says_what_to_install_before_any_work(tmp_path, engine, extras):
    """The service's image installs no screening engine: the command names the extra, not an ImportError."""
    source, out = tmp_path / "source", tmp_path / "out"
    source.mkdir()
    not_installed = "import sys; sys.modules['duckdb'] = None; sys.modules['pyspark'] = None"
    run = f"{not_installed}; from cds_service.cli import main; sys.exit(main(sys.argv[1:]))"
    result = subprocess.run(
        [sys.executable, "-c", run, "screen", str(source), "--out", str(out), "--engine", engine],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert f"pip install 'cytopenia-cds[{extras}]'" in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()


def test_the_modules_checked_are_the_extras_pyproject_installs():
    """`NEEDS` names modules; pyproject.toml names distributions: the same names here, kept from drifting."""
    extras = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    for modules, extra in NEEDS.values():
        installed = {re.split(r"[<>=\[; ]", requirement, maxsplit=1)[0].lower() for requirement in extras[extra]}
        assert set(modules) == installed, extra
