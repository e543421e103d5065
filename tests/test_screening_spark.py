"""`--engine spark` in local[2] gives the DuckDB engine's worklist and counts (run by `make test-spark`)."""

from __future__ import annotations

import shutil

import orjson
import pytest

from cds_service.cli import main
from cds_service.screening.outputs import compare_worklists
from cds_service.screening.run import Options, screen
from tests.screening_support import AS_OF, PATIENTS, small_population, with_bad_input

pytestmark = pytest.mark.spark
pytest.importorskip("pyspark")


def test_spark_and_duckdb_give_the_same_worklist_and_the_same_bad_input_counts(tmp_path):
    source = with_bad_input(small_population(tmp_path / "population"))
    duck = screen(source, tmp_path / "duckdb", Options(as_of=AS_OF, processes=2, progress=False))
    arguments = ["screen", str(source), "--out", str(tmp_path / "spark"), "--as-of", AS_OF.isoformat()]
    assert main([*arguments, "--engine", "spark", "--spark-master", "local[2]", "--no-progress"]) == 0
    comparison = compare_worklists(tmp_path / "spark", tmp_path / "duckdb")
    assert comparison.equal(), comparison
    assert (tmp_path / "spark" / "worklist.csv").read_text() == (tmp_path / "duckdb" / "worklist.csv").read_text()
    spark = orjson.loads((tmp_path / "spark" / "summary.json").read_bytes())
    assert spark["patients_in"] == duck.patients_in == PATIENTS
    assert spark["screened"] + len(spark["rejected"]) == PATIENTS
    assert spark["candidates"] == duck.candidates
    assert spark["bad_input"] == duck.bad_input
    assert spark["findings"] == duck.findings
    for layout in ("resources", "labs", "medications", "conditions", "problems"):
        assert list((tmp_path / "spark" / "parquet" / layout).rglob("*.parquet")), layout
    shutil.rmtree(tmp_path / "spark" / "parquet")
