"""The data dictionary (docs/DATA.md): generated from records/schema.py, true of the committed tables, and its
example runs and agrees with the report's own statistics."""
import contextlib
import io
import os
import re

import pytest

from pipeline import docs
from records.schema import DOCS, TABLES, with_later_columns
from records.store import RunStore
from tests.conftest import ROOT, cli

COMMITTED = sorted(p for p in (ROOT / "results").glob("*/*.parquet"))


def test_the_committed_data_dictionary_is_the_generated_one():
    r = cli("data-doc")
    assert r.returncode == 0 and r.stdout == docs.documentation()
    assert (ROOT / "docs" / "DATA.md").read_text() == r.stdout, "run: python -m pipeline data-doc > docs/DATA.md"


def test_every_table_and_column_is_documented_once():
    text = docs.documentation()
    for name, schema in TABLES.items():
        t = DOCS[name]
        assert [c.name for c in t.columns] == schema.names and set(t.key) <= set(schema.names)
        assert all(c.doc.strip() for c in t.columns), name
        assert f"## {name}.parquet" in text
        for c in t.columns:
            assert re.search(rf"^\| `{c.name}` \| {re.escape(str(c.type))} \|", text, re.M), (name, c.name)


@pytest.mark.parametrize("path", COMMITTED, ids=[f"{p.parent.name}/{p.stem}" for p in COMMITTED])
def test_the_declared_key_identifies_the_rows_of_committed_tables(path):
    df = RunStore(path.parent).read(path.stem)  # as every reader sees it (columns added later filled in)
    key = list(DOCS[path.stem].key)
    assert not df.duplicated(key).any(), f"{path}: {key} repeats"


def test_a_table_written_before_a_column_existed_reads_with_it_filled_in():
    import pyarrow as pa
    old = pa.table({c: pa.array([], t) for c, t in zip(TABLES["resources"].names, TABLES["resources"].types,
                                                       strict=True) if c not in ("rank", "gpu_index", "attempt")})
    old = pa.concat_tables([old, pa.Table.from_pylist([dict.fromkeys(old.column_names, 1.0) | {"stage": "train"}],
                                                      schema=old.schema)])
    new = with_later_columns("resources", old)
    assert new.schema.equals(TABLES["resources"]) and new.column("rank").to_pylist() == [0]
    assert new.column("gpu_index").to_pylist() == [None] and new.column("attempt").to_pylist() == [1]
    with pytest.raises(KeyError):  # a column every table has is never invented
        with_later_columns("resources", old.drop_columns(["cpu_pct"])).select(TABLES["resources"].names)


def test_the_example_runs_and_agrees_with_the_report(monkeypatch):
    from analysis.facts import report_facts
    monkeypatch.chdir(ROOT)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(docs.EXAMPLE, "DATA.md example", "exec"), {})
    printed = out.getvalue()
    facts = report_facts(ROOT / "results", os.path.basename(docs.EXAMPLE_RUN)).headline
    shown = dict(re.findall(r"^(\w+)\s+([0-9.]+)$", printed, re.M))
    assert {m: float(v) for m, v in shown.items()} == {m: round(a.value, 3) for m, a in facts.accuracy.items()}
    assert f"\n{facts.counts()['corrected']} corrected rows\n" in "\n" + printed
