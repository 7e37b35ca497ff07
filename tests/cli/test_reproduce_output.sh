#!/bin/sh
# test_reproduce_output.sh: `moesim reproduce` output forms on a small
# experiment: the table, --csv and --json hold the same rows; counts per
# claim and the totals add up, fitted rows apart; exactly the rows whose
# trace `moesim trace fit` made match the very value checked are flagged
# fitted by construction; the table fits its width; option errors.
MOESIM=${MOESIM:-build/moesim}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# f: fitted at rho 1, 2 to LRU 0.5, 0.75 and Belady 0.7, 0.9; g and the long
# name: generated, fitted to nothing
"$MOESIM" trace fit -o "$tmp/f.moetrace" --layers 4 --experts 8 --top-k 2 --rho 1,2 --lru 0.5,0.75 \
    --belady 0.7,0.9 --seqs 3 --fit-seqs 3 --seq-len 64 --max-iter 15 --model tiny-fit >/dev/null 2>&1 &&
"$MOESIM" trace gen -o "$tmp/g.moetrace" --steps 200 --layers 4 --experts 8 --top-k 2 --seq-len 64 \
    --no-weights --seed 3 >/dev/null 2>&1 &&
cp "$tmp/g.moetrace" "$tmp/a_trace_with_a_name_long_enough_to_wrap_the_metric_column.moetrace" ||
    { echo "FAIL reproduce_output_setup: trace fit / gen"; exit 0; }
cat >"$tmp/repro_out.ini" <<INI
[experiment]
name = out
title = Output forms
source = https://example.org/test

[check fit-lru]
kind = lrc
trace = $tmp/f.moetrace
policy = lru
rho = 1,2
published = 0.5,0.75
tolerance = 1
source = https://example.org/a

[check fit-lru-other]
kind = lrc
trace = $tmp/f.moetrace
policy = lru
rho = 1,2
published = 0.3,0.75
tolerance = 0.01
source = https://example.org/b

[check fit-belady-rho3]
kind = lrc
trace = $tmp/f.moetrace
policy = belady
rho = 1,3
published = 0.7,0.95
source = https://example.org/c

[check fit-lfu]
kind = lrc
trace = $tmp/f.moetrace
policy = lfu
rho = 1
published = 0.5
source = https://example.org/d

[check order]
kind = lrc_order
traces = $tmp/*.moetrace
better = belady
worse = lru
rho = 1,2
metric = Belady >= LRU
source = https://example.org/e

[check order-rho3]
kind = lrc_order
traces = $tmp/*.moetrace
better = belady
worse = lru
rho = 1,3
metric = Belady >= LRU at 1, 3
source = https://example.org/f

[check tiers]
kind = mlx_tiers
counts = 5,15,30,30,48
bits = 16,8,4,3,2
experts = 128
published_bits = 3.1
published_saving = 0.23
source = https://example.org/g
INI
"$MOESIM" reproduce "$tmp/repro_out.ini" >"$tmp/table" 2>"$tmp/err" &&
"$MOESIM" reproduce --width 400 "$tmp/repro_out.ini" >"$tmp/wide" 2>>"$tmp/err" &&
"$MOESIM" reproduce --width 80 "$tmp/repro_out.ini" >"$tmp/narrow" 2>>"$tmp/err" &&
"$MOESIM" reproduce --csv "$tmp/repro_out.ini" >"$tmp/csv" 2>>"$tmp/err" &&
"$MOESIM" reproduce --json "$tmp/repro_out.ini" >"$tmp/json" 2>>"$tmp/err" ||
    { echo "FAIL reproduce_output_run: $(cat "$tmp/err")"; exit 0; }

# Fitted exactly where the trace was fitted to the value compared: both
# fit-lru rows, fit-lru-other at rho 2 only (0.3 at rho 1 is not the
# target), fit-belady-rho3 at rho 1 only (no target at 3), never LFU, and
# the order on f alone (not at rho 3: no target there). The table marks
# those verdicts, and only those, with '*'.
want='fit-lru|lrc|lru hit rate rho=1
fit-lru|lrc|lru hit rate rho=2
fit-lru-other|lrc|lru hit rate rho=2
fit-belady-rho3|lrc|belady hit rate rho=1
order|lrc_order|f: Belady >= LRU'
got=$(python3 -c 'import csv,sys
for r in csv.DictReader(open(sys.argv[1])):
    if r["fitted"] == "1": print("|".join((r["claim"], r["kind"], r["metric"].strip())))
    elif r["fitted"] != "0": print("bad fitted value", r["fitted"])' "$tmp/csv")
stars=$(grep -Ec ' (PASS|FAIL)\* ' "$tmp/wide")
if [ "$got" = "$want" ] && [ "$stars" -eq 5 ] && grep -q '^fitted by construction (not evidence): 5 rows: ' "$tmp/table" &&
   grep -q '^order (lrc_order): \* = fitted by construction' "$tmp/wide"; then
    echo "PASS reproduce_fitted_flags"
else
    echo "FAIL reproduce_fitted_flags: fitted rows '$got', $stars starred"
fi

# The same rows in the three forms: the wide table's cells (metric,
# published, ours, error, verdict with '*' iff fitted, and the note's text)
# against the CSV's, and the JSON's fields against the CSV's.
if python3 - "$tmp/wide" "$tmp/csv" "$tmp/json" <<'PY'
import csv, json, re, sys
table, rows, js = open(sys.argv[1]).read().split("\n"), list(csv.DictReader(open(sys.argv[2]))), json.load(open(sys.argv[3]))
cells, notes = [], {}
for line in table:
    if line == "claims": break
    m = re.match(r"^  \[(\d+)\] (.*)$", line)
    if m: notes[m.group(1)] = m.group(2); continue
    if line.startswith("  ") and not line.startswith("   ") and not line.startswith("  metric "):
        cells.append(re.split(r" {2,}", line.strip()))
assert len(cells) == len(rows) == len(js["rows"]) > 0, (len(cells), len(rows), len(js["rows"]))
for c, r, j in zip(cells, rows, js["rows"]):
    want = [r["metric"], r["published"], r["ours"], r["error"], r["verdict"] + ("*" if r["fitted"] == "1" else "")]
    assert c[:5] == want, (c, want)
    assert notes[c[5]] == r["reason"], (notes[c[5]], r["reason"])
    for k in ("experiment", "claim", "kind", "metric", "published", "ours", "error", "verdict", "reason", "source"):
        assert j[k] == r[k], (k, j[k], r[k])
    assert j["fitted"] == (r["fitted"] == "1")
    for k in ("published_value", "ours_value"):
        assert (j[k] is None) == (r[k] == ""), (k, j[k], r[k])
        if j[k] is not None: assert abs(j[k] - float(r[k])) <= 1e-9 * max(1, abs(j[k])), (k, j[k], r[k])
# values behind the texts: lrc rows print 3 decimals of the same numbers
for r in rows:
    if r["kind"] == "lrc" and r["ours"] != "-":
        assert "%.3f" % float(r["ours_value"]) == r["ours"] and "%.3f" % float(r["published_value"]) == r["published"], r
PY
then echo "PASS reproduce_forms_agree"; else echo "FAIL reproduce_forms_agree"; fi

# Counts add up: per claim PASS + FAIL + NOT COMPARABLE = rows in each
# group; claims sum to the totals; reproductions + fitted = all = CSV rows;
# the (wide) table's claim and total lines say the same as the JSON. By hand:
# 16 rows (2 + 2 + 2 + 1 + 3 x 2 + 3), 5 fitted.
if python3 - "$tmp/wide" "$tmp/csv" "$tmp/json" <<'PY'
import csv, json, re, sys
table, rows, js = open(sys.argv[1]).read(), list(csv.DictReader(open(sys.argv[2]))), json.load(open(sys.argv[3]))
def phrase(c, what=""):
    return "%d %s%s: %d PASS, %d FAIL, %d NOT COMPARABLE" % (c["rows"], "row" if c["rows"] == 1 else "rows", what,
                                                          c["pass"], c["fail"], c["not_comparable"])
tot = {"reproductions": dict.fromkeys(("rows", "pass", "fail", "not_comparable"), 0)}
tot["fitted"] = dict(tot["reproductions"])
for c in js["claims"]:
    for g in ("reproductions", "fitted"):
        x = c[g]
        assert x["pass"] + x["fail"] + x["not_comparable"] == x["rows"], c
        for k in x: tot[g][k] += x[k]
        n = sum(1 for r in rows if r["claim"] == c["claim"] and r["fitted"] == ("1" if g == "fitted" else "0"))
        assert n == x["rows"], (c, n)
    parts = [phrase(c["reproductions"])] if c["reproductions"]["rows"] else []
    if c["fitted"]["rows"]: parts.append(phrase(c["fitted"], " fitted by construction"))
    assert ("  %s/%s: %s\n" % (c["experiment"], c["claim"], "; ".join(parts))) in table, c
assert tot == {g: js["totals"][g] for g in tot}, (tot, js["totals"])
assert js["totals"]["rows"] == len(rows) == 16 == tot["reproductions"]["rows"] + tot["fitted"]["rows"]
assert tot["fitted"]["rows"] == 5
assert "\nreproductions: %s\n" % phrase(js["totals"]["reproductions"]) in table
assert "\nfitted by construction (not evidence): %s\n" % phrase(js["totals"]["fitted"]) in table
assert table.endswith("\nall: 16 rows\n")
PY
then echo "PASS reproduce_counts_add_up"; else echo "FAIL reproduce_counts_add_up"; fi

# Widths: no line past 100 (default) or 80 columns; the long metric wraps
# under itself at 100, and stays on one line at 400.
long=$(awk 'length($0) > 100' "$tmp/table" | head -1)
long80=$(awk 'length($0) > 80' "$tmp/narrow" | head -1)
if [ -z "$long" ] && [ -z "$long80" ] && grep -q '^  a_trace_with_a_name_long_enough' "$tmp/table" &&
   grep -Eq '^    [a-z_]*column: Belady >= LRU' "$tmp/table" &&
   grep -q '^  a_trace_with_a_name_long_enough_to_wrap_the_metric_column: Belady >= LRU  ' "$tmp/wide"; then
    echo "PASS reproduce_width"
else
    echo "FAIL reproduce_width: '$long' '$long80'"
fi

# Option errors: exit 2 with the reason, nothing on standard output.
ok=1
"$MOESIM" reproduce --csv --json "$tmp/repro_out.ini" >"$tmp/o" 2>"$tmp/e"
[ $? -eq 2 ] && grep -q 'choose one' "$tmp/e" && [ ! -s "$tmp/o" ] || ok=0
"$MOESIM" reproduce --width 60 "$tmp/repro_out.ini" >"$tmp/o" 2>"$tmp/e"
[ $? -eq 2 ] && grep -q 'at least 80 columns' "$tmp/e" && [ ! -s "$tmp/o" ] || ok=0
"$MOESIM" reproduce --width x "$tmp/repro_out.ini" >"$tmp/o" 2>"$tmp/e"
[ $? -ne 0 ] && grep -q -- '--width' "$tmp/e" && [ ! -s "$tmp/o" ] || ok=0
[ $ok = 1 ] && echo "PASS reproduce_option_errors" || echo "FAIL reproduce_option_errors: $(cat "$tmp/e")"
