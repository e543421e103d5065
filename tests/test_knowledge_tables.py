"""Every knowledge table is read and checked at start-up; a broken one stops the start, naming file and row.

Codes the tables ship are checked against the verified terminology of the reference pack
(`../shared/reference/terminology.csv`), which is not part of the package.
"""

import csv
import os
import shutil
import subprocess
import sys

import pytest

from cds_service import knowledge_tables
from cds_service.http.health import NotReady, knowledge_loaded
from cds_service.knowledge_tables import KnowledgeError, load_all, read_table
from tests.conftest import ROOT

TERMINOLOGY = ROOT.parent / "shared" / "reference" / "terminology.csv"
LOINC, RXNORM = "http://loinc.org", "http://www.nlm.nih.gov/research/umls/rxnorm"
# Codes read only to recognise what real clients send, with the evidence they send it.
RECOGNISED_FROM_REAL_REQUESTS = {
    (
        RXNORM,
        "197535",
    ): "the CDS Hooks Sandbox's order-sign request (shared/fixtures/sandbox/order-sign-clozapine.json)",
}


def _package(tmp_path, monkeypatch, name: str, text: str) -> str:
    """A throw-away package holding one table, importable for read_table."""
    package = tmp_path / "brokenknowledge"
    (package / "data").mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text("")
    (package / "data" / name).write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "brokenknowledge", raising=False)
    read_table.cache_clear()
    return "brokenknowledge"


@pytest.fixture(autouse=True)
def _fresh_cache():
    yield
    read_table.cache_clear()


def test_every_table_of_every_layer_loads_at_start():
    assert load_all() >= 31


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("name,value,unit,tag,source\nanc,0.5,10*9/L,V1,\n", "line 2: no source"),
        ("name,value,unit,tag,source\nanc,0.5,10*9/L,V1,CTCAE\nplt,lots,10*9/L,V1,CTCAE\n", "line 3: value 'lots'"),
        ("name,value,unit,tag,source\nanc,0.5,furlongs,V1,CTCAE\n", "line 2: unit 'furlongs' is not in the unit"),
        ("name,value,unit,tag,source\nanc,0.5,10*9/L,UNVERIFIED,CTCAE\n", "line 2: unknown tag 'UNVERIFIED'"),
        ("name,value,unit,tag,source\nanc,0.5,10*9/L,V1,CTCAE,extra\n", "line 2: the number of fields differs"),
        ("name,value,unit,tag,source\n", "no rows"),
    ],
)
def test_a_broken_row_is_named_by_file_and_line(tmp_path, monkeypatch, text, problem):
    package = _package(tmp_path, monkeypatch, "limits.csv", text)
    with pytest.raises(KnowledgeError, match="brokenknowledge/data/limits.csv") as raised:
        read_table(package, "limits.csv")
    assert problem in str(raised.value)


def test_a_loader_error_names_the_row_it_was_reading(tmp_path, monkeypatch):
    package = _package(tmp_path, monkeypatch, "bands.csv", "band,label,source\nmild,1,x\nsevere,two,x\n")
    monkeypatch.setattr(knowledge_tables, "PACKAGES", ())
    monkeypatch.setattr(
        knowledge_tables, "_LOADERS", [lambda: [int(row["label"]) for row in read_table(package, "bands.csv")]]
    )
    with pytest.raises(KnowledgeError, match=r"brokenknowledge/data/bands.csv, line 3: ValueError"):
        load_all()


def test_readiness_is_refused_while_a_table_is_broken(tmp_path, monkeypatch):
    package = _package(tmp_path, monkeypatch, "limits.csv", "name,value,source\nanc,low,x\n")
    monkeypatch.setattr(knowledge_tables, "_LOADERS", [lambda: read_table(package, "limits.csv")])
    with pytest.raises(NotReady, match="limits.csv, line 2"):
        knowledge_loaded(None)


@pytest.mark.slow
def test_a_corrupted_clozapine_table_stops_the_server_naming_file_and_row(tmp_path):
    """The packages copied, one number in the clozapine ANC table broken: `serve` refuses to start."""
    for package in ("cds_service", "fhir_mappings", "cards"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    table = tmp_path / "cds_service" / "clinical" / "data" / "clozapine_anc.csv"
    lines = table.read_text().splitlines(keepends=True)
    header = lines[0].rstrip("\n").split(",")
    row = next(csv.reader([lines[2]]))
    row[header.index("anc_below")] = "1,0"  # a decimal comma: not a number
    lines[2] = ",".join(f'"{field}"' for field in row) + "\n"
    table.write_text("".join(lines))
    result = subprocess.run(
        [sys.executable, "-m", "cds_service.cli", "serve", "--dev", "--port", "1"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 3, result.stderr
    assert "cds_service/clinical/data/clozapine_anc.csv, line 3" in result.stderr
    assert "anc_below '1,0' is not a number" in result.stderr


def _verified_codes() -> dict[tuple[str, str], str]:
    with TERMINOLOGY.open(newline="", encoding="utf-8") as handle:
        return {(row["system"], row["code"]): row["tag"] for row in csv.DictReader(handle)}


def _shipped_codes():
    """(table, line, system, code) of every code a table ships."""
    for package in knowledge_tables.PACKAGES:
        for name in knowledge_tables.table_names(package):
            for row in read_table(package, name):
                if (
                    row.get("system")
                    and row.get("code")
                    and row["system"].startswith(
                        ("http://loinc", "http://snomed", "http://hl7.org/fhir/sid/icd-10", RXNORM)
                    )
                ):
                    yield row.table, row.line, row["system"], row["code"]
                elif name == "lab_codes.csv":
                    yield row.table, row.line, LOINC, row["code"]
                elif row.get("rxcui"):
                    yield row.table, row.line, RXNORM, row["rxcui"]


def _verified_by_the_project() -> set[tuple[str, str]]:
    """Codes the project looked up itself in a public source the pack names (issue #12: ICD-10-CM in the
    pack's own CMS file copy, the HL7 IPS pregnancy-status codes); each such row says so and cites it."""
    return {
        (row["system"], row["code"])
        for package in knowledge_tables.PACKAGES
        for name in knowledge_tables.table_names(package)
        for row in read_table(package, name)
        if "verified for issue #12" in row.get("source", "") and row.get("tag") in ("V1", "V2")
    }


@pytest.mark.skipif(not TERMINOLOGY.exists(), reason="../shared/reference is beside every checkout and CI run")
def test_every_shipped_code_is_in_the_verified_terminology():
    verified = _verified_codes() | dict.fromkeys(_verified_by_the_project(), "project")
    unknown = [
        f"{table}:{line} {system}|{code}"
        for table, line, system, code in _shipped_codes()
        if (system, code) not in verified and (system, code) not in RECOGNISED_FROM_REAL_REQUESTS
    ]
    unverified = [
        f"{table}:{line} {code}"
        for table, line, system, code in _shipped_codes()
        if verified.get((system, code)) == "UNVERIFIED"
    ]
    assert not unknown, "codes not in terminology.csv:\n" + "\n".join(unknown)
    assert not unverified
    assert sum(1 for _ in _shipped_codes()) > 100
