"""test_results.py: the export schema and python/moesim/results.py.

  - the schema is one list: Python's SCHEMA equals core/results_schema.def
    entry for entry, and docs/results-schema.md equals `results export --schema`
    row for row;
  - `results export --csv` writes exactly that header, for two different
    databases;
  - load_results on a database made by `moesim sweep` (timed, prefetching,
    mixed-precision, skipping, speculating runs, capacities in experts, bytes
    and percent) and `moesim trace stats --db` equals the CSV export cell for
    cell, with --experiment too; replay runs leave other_config and
    other_metrics empty (trace stats' parameterised metrics go there);
  - hand-checked values: a one-layer trace whose LRU hits are counted by hand;
  - a missing file, a non-moesim database and a damaged one raise
    ResultsError naming the file, and nothing is created.
"""
import csv
import os
import re
import sqlite3

from harness import ROOT, case, ensure, moesim, run, tmp
import moesim as ms


def def_entries():
    text = open(os.path.join(ROOT, "core", "results_schema.def")).read()
    cols = re.findall(r'^COL\("([^"]*)", (\w+), "([^"]*)", (\w+), "([^"]*)", "((?:[^"\\]|\\.)*)"\)', text, re.M)
    return [(n, src.lower(), key, typ.lower()) for n, src, key, typ, _, _ in cols]


def doc_rows():
    rows = []
    for line in open(os.path.join(ROOT, "docs", "results-schema.md")):
        if line.startswith("| ") and not line.startswith("| column |"):
            rows.append(tuple(c.strip() for c in line.strip().strip("|").split(" | ")))
    return rows


def schema_rows():
    out = moesim("results", "export", "--schema").stdout.splitlines()
    ensure(out[0] == "column\ttype\tunit\tmeaning", f"--schema header {out[0]!r}")
    return [tuple(line.split("\t")) for line in out[1:]]


@case
def schema_is_one_list():
    d = def_entries()
    ensure(len(d) == len(ms.SCHEMA) and len(d) > 100, f"{len(d)} COL lines in the .def, {len(ms.SCHEMA)} in Python")
    for a, b in zip(d, ms.SCHEMA):
        ensure(a == b, f"results_schema.def {a} vs python {b}")
    s = schema_rows()
    ensure([r[0] for r in s] == list(ms.COLUMNS), "export --schema names differ from Python's COLUMNS")
    ensure([r[1] for r in s] == [c[3] for c in ms.SCHEMA], "export --schema types differ from Python's")
    docs = doc_rows()
    ensure(len(docs) == len(s), f"docs/results-schema.md has {len(docs)} rows, the schema {len(s)}")
    for a, b in zip(docs, s):
        ensure(a == b, f"docs/results-schema.md row {a} vs export --schema {b}")
    ensure(len(set(ms.COLUMNS)) == len(ms.COLUMNS), "duplicate column names")


def sweep_db():
    db = tmp("sweep.db")
    if os.path.exists(db):
        return db
    prose, dflt = "traces/tinymix_prose.moetrace", "traces/default.moetrace"
    moesim("sweep", "--trace", prose, "--policies", "lru,lfu", "--capacities", "4,8", "--scope", "per-layer,global",
           "--prefetch", "gate:ahead=1,n=2", "--device", "apple-m1-ssd", "--precision", "uniform:bits=4",
           "--skip", "cum=0.9", "--speculate", "--db", db, "--jobs", 1, "--experiment", "timed")
    moesim("sweep", "--trace", dflt, "--policies", "lru", "--capacities", "40%,8GiB", "--cold-per-seq",
           "--on-miss", "skip", "--model", "Mixtral-8x7B", "--device", "t4", "--precision", "mlx-tiers",
           "--db", db, "--jobs", 1, "--experiment", "bytes")
    moesim("sweep", "--trace", dflt, "--policies", "lru", "--capacities", 3, "--split", "fate:shallow=1.5",
           "--db", db, "--jobs", 1)
    moesim("trace", "stats", prose, "--db", db)
    return db


def export_csv(db, *extra):
    out = tmp("r.csv")
    moesim("results", "export", "--db", db, "--csv", "-o", out, *extra)
    with open(out, newline="") as f:
        return list(csv.reader(f))


def cell(v):
    """A Python value as the export writes it."""
    if v is None:
        return ""
    if isinstance(v, float):
        return ms.format_number(v)
    return str(v)


def equal_cell_for_cell(db, rows, table):
    ensure(tuple(table[0]) == ms.COLUMNS, f"{db}: CSV header differs from COLUMNS")
    ensure(len(rows) == len(table) - 1, f"{db}: load_results gave {len(rows)} rows, the export {len(table) - 1}")
    for r, line in zip(rows, table[1:]):
        ensure(list(r) == list(ms.COLUMNS), f"{db}: a row's keys differ from COLUMNS")
        for name, text in zip(ms.COLUMNS, line):
            ensure(cell(r[name]) == text, f"{db}: run {r['id']}, {name}: Python {r[name]!r}, CSV {text!r}")


@case
def load_results_equals_export():
    db = sweep_db()
    rows = ms.load_results(db, frame=False)
    table = export_csv(db)
    equal_cell_for_cell(db, rows, table)
    ensure(len(rows) == 12, f"{len(rows)} runs: expected 8 + 2 + 1 + 1 (trace stats)")
    stats = [r for r in rows if r["analysis"] == "trace-stats"]
    ensure(len(stats) == 1 and "lrc_hit_rate_lru_rho1=" in (stats[0]["other_metrics"] or ""),
           "trace stats' per-rho metrics are not in other_metrics")
    for r in rows:
        ensure(r["other_config"] is None, f"run {r['id']}: other_config {r['other_config']!r}")
        if r["analysis"] is None:
            ensure(r["other_metrics"] is None, f"run {r['id']}: other_metrics {r['other_metrics']!r}")
    # each kind of column was exercised: integers, reals, text, both capacity forms
    by = {(r["experiment"], r["capacity"], r["capacity_bytes"], r["capacity_frac"]) for r in rows}
    ensure(("bytes", None, 8 << 30, None) in by and ("bytes", None, None, 0.4) in by, f"capacities {by}")
    timed = [r for r in rows if r["experiment"] == "timed"]
    ensure(all(isinstance(r["tok_s"], float) and r["tok_s"] > 0 and r["prefetch_precision"] is not None
               and r["speculate"] == 1 and r["skip"] == "cum=0.9,topk_frac=0" for r in timed), "timed rows lack their metrics")
    ensure(all(r["effective_capacity_bytes"] for r in rows if r["experiment"] == "bytes"), "effective_capacity_bytes")
    # --experiment: the same filter on both sides
    equal_cell_for_cell(db, ms.load_results(db, experiment="bytes", frame=False), export_csv(db, "--experiment", "bytes"))


@case
def two_databases_same_columns():
    db2 = tmp("plain.db")
    moesim("sweep", "--trace", "traces/tinymix_c.moetrace", "--policies", "fifo", "--capacities", 2, "--db", db2,
           "--jobs", 1)
    a, b = export_csv(sweep_db())[0], export_csv(db2)[0]
    ensure(a == b == list(ms.COLUMNS), "the two exports' headers differ")
    rows = ms.load_results(db2, frame=False)
    equal_cell_for_cell(db2, rows, export_csv(db2))
    ensure(len(rows) == 1 and rows[0]["policy"] == "fifo" and rows[0]["tok_s"] is None, "plain run")


@case
def hand_checked_values():
    # one layer, 8 experts, top-1, one sequence: experts 0 1 0 2 0 1 under LRU
    # with 2 slots: misses 0 1 (hit 0) 2 (hit 0) 1 -> 2 hits of 6 accesses
    import numpy as np
    t = tmp("hand.moetrace")
    ms.write_trace(t, np.array([0, 1, 0, 2, 0, 1]).reshape(6, 1, 1), n_experts=8)
    db = tmp("hand.db")
    moesim("sweep", "--trace", t, "--policies", "lru", "--capacities", 2, "--db", db, "--jobs", 1,
           "--experiment", "hand")
    r = ms.load_results(db, frame=False)
    ensure(len(r) == 1, f"{len(r)} runs")
    r = r[0]
    got = (r["accesses"], r["hits"], r["misses"], r["hit_rate"], r["compulsory_misses"], r["evictions"])
    ensure(got == (6.0, 2.0, 4.0, 2 / 6, 3.0, 2.0), f"accesses, hits, misses, hit rate, compulsory, evictions {got}")
    ensure((r["policy"], r["capacity"], r["scope"], r["cold_per_seq"], r["seed"], r["experiment"]) ==
           ("lru", 2, "per-layer", 0, 1, "hand"), "config columns")
    ensure((r["trace_layers"], r["trace_experts"], r["trace_top_k"], r["trace_steps"], r["trace_tokens"]) ==
           (1, 8, 1, 6, 6), "trace columns")
    ensure(r["trace_hash"] == ms.open_trace(t).content_hash(), "trace_hash is not the trace's content hash")


@case
def bad_databases_name_the_file():
    missing = tmp("nope.db")
    try:
        ms.load_results(missing)
        raise AssertionError("a missing database loaded")
    except ms.ResultsError as e:
        ensure(str(e).startswith(missing + ": ") and not os.path.exists(missing), f"{e}")
    other = tmp("other.db")
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE t (x)")
    con.commit()
    con.close()
    try:
        ms.load_results(other)
        raise AssertionError("a foreign database loaded")
    except ms.ResultsError as e:
        ensure(str(e) == f"{other}: not a moesim results database", f"{e}")
    text = tmp("text.db")
    with open(text, "w") as f:
        f.write("not sqlite at all" * 100)
    try:
        ms.load_results(text)
        raise AssertionError("a text file loaded")
    except ms.ResultsError as e:
        ensure(str(e).startswith(text + ": "), f"{e}")


@case
def frame_or_list():
    try:
        import pandas  # noqa: F401
    except ImportError:
        print("note frame_or_list: pandas is not installed (optional): checked the list-of-dicts form only")
        rows = ms.load_results(sweep_db())
        ensure(isinstance(rows, list) and isinstance(rows[0], dict), "without pandas: a list of dicts")
        return
    df = ms.load_results(sweep_db())
    rows = ms.load_results(sweep_db(), frame=False)
    ensure(list(df.columns) == list(ms.COLUMNS) and len(df) == len(rows), "DataFrame shape")
    ensure(str(df["capacity"].dtype) == "Int64" and str(df["hit_rate"].dtype) == "float64", "DataFrame dtypes")
    for i, r in enumerate(rows):
        for name in ("id", "policy", "capacity", "hit_rate", "tok_s"):
            v = df[name].iloc[i]
            ensure((r[name] is None and pandas.isna(v)) or v == r[name], f"row {i} {name}: {v!r} vs {r[name]!r}")


run()
