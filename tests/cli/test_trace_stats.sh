#!/bin/sh
# test_trace_stats.sh: `moesim trace stats` on a generated trace: tables,
# JSON, the SQLite run, and clear failures (missing file, bad lists).
MOESIM=${MOESIM:-build/moesim}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
set -- trace stats
if ! "$MOESIM" trace gen -o "$tmp/g.moetrace" --steps 200 --layers 3 --experts 8 --top-k 2 \
        --seq-len 64 --lookahead 1 --seed 5 >/dev/null 2>"$tmp/err"; then
    echo "SKIP test_trace_stats: moesim trace gen failed: $(cat "$tmp/err")"
    exit 0
fi

if "$MOESIM" "$@" "$tmp/g.moetrace" --m 2,4 --rho 1,2 >"$tmp/out" 2>"$tmp/err"; then
    ok=1
    for p in "expert popularity" "reuse distance" "lookahead predictability" "SRP(m)" "SCH(m, rho)" \
             "cache hit rate, moe-lrc mode" "belady" "LRU hit rate per layer"; do
        grep -qF "$p" "$tmp/out" || { echo "FAIL trace_stats_tables: output lacks '$p'"; ok=0; break; }
    done
    [ $ok = 1 ] && echo "PASS trace_stats_tables"
else
    echo "FAIL trace_stats_tables: exit $?: $(cat "$tmp/err")"
fi

if "$MOESIM" "$@" "$tmp/g.moetrace" --json --m 4 >"$tmp/json" 2>"$tmp/err"; then
    if command -v python3 >/dev/null 2>&1; then
        if python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["layers"]==3; assert d["lrc"]["srp"][0]["m"]==4; assert 0<=d["lookahead"]["recall"]<=1; assert len(d["lru_mrc_per_layer"]["hit_rate"])==9' "$tmp/json"; then
            echo "PASS trace_stats_json"
        else
            echo "FAIL trace_stats_json: $(head -c 300 "$tmp/json")"
        fi
    else
        grep -q '"lrc"' "$tmp/json" && echo "PASS trace_stats_json" || echo "FAIL trace_stats_json"
    fi
else
    echo "FAIL trace_stats_json: $(cat "$tmp/err")"
fi

# SQLite: one run of experiment trace-stats; storing again replaces it
if "$MOESIM" "$@" "$tmp/g.moetrace" --db "$tmp/r.db" --m 4 >/dev/null 2>"$tmp/err" &&
   "$MOESIM" "$@" "$tmp/g.moetrace" --db "$tmp/r.db" --m 4 >/dev/null 2>>"$tmp/err"; then
    if command -v sqlite3 >/dev/null 2>&1; then
        n=$(sqlite3 "$tmp/r.db" "select count(*) from runs where experiment='trace-stats'")
        v=$(sqlite3 "$tmp/r.db" "select count(*) from metrics where name='srp_m4' and value>0 and value<=1")
        l=$(sqlite3 "$tmp/r.db" "select count(distinct layer) from layer_metrics where name='gini'")
        if [ "$n" = 1 ] && [ "$v" = 1 ] && [ "$l" = 3 ]; then echo "PASS trace_stats_db"
        else echo "FAIL trace_stats_db: runs=$n srp=$v layers=$l"; fi
    else
        echo "PASS trace_stats_db"
    fi
else
    echo "FAIL trace_stats_db: $(cat "$tmp/err")"
fi

# failures: a missing file is named, bad lists are refused, exit status 1
"$MOESIM" "$@" "$tmp/nosuch.moetrace" >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ $rc = 1 ] && grep -qF "nosuch.moetrace" "$tmp/err"; then echo "PASS trace_stats_missing_file"
else echo "FAIL trace_stats_missing_file: exit $rc: $(cat "$tmp/err")"; fi
"$MOESIM" "$@" "$tmp/g.moetrace" --m 2,x >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ $rc = 1 ] && grep -qF -- "--m" "$tmp/err"; then echo "PASS trace_stats_bad_list"
else echo "FAIL trace_stats_bad_list: exit $rc: $(cat "$tmp/err")"; fi
"$MOESIM" "$@" >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ $rc = 2 ] && grep -qF "usage" "$tmp/err"; then echo "PASS trace_stats_usage"
else echo "FAIL trace_stats_usage: exit $rc"; fi
