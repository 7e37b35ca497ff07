#!/bin/sh
# test_sweep_axes.sh: the issue-4 options on `moesim sweep`'s command line
# (--prefetch, --device, --model, --split ...) expand like an experiment
# file's keys, land in each run's identity, and equal `moesim run`'s numbers.
MOESIM=${MOESIM:-build/moesim}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
T=traces/default.moetrace
"$MOESIM" sweep --trace $T --policies lru,lfu --capacities 2,4 --prefetch none,gate:ahead=1,n=2 \
    --device rtx-3060 --model Mixtral-8x7B --db "$tmp/a.db" >/dev/null 2>"$tmp/err"
n=$(sqlite3 "$tmp/a.db" "select count(*) from runs where status = 'done'")
[ "$n" = 8 ] && echo "PASS sweep_axes_expand" || echo "FAIL sweep_axes_expand: $n runs, expected 2 x 2 x 2 = 8 ($(cat "$tmp/err"))"
n=$(sqlite3 "$tmp/a.db" "select count(*) from runs where config_text like '%prefetch=gate:ahead=1,n=2%' and config_text like '%device=%'")
[ "$n" = 4 ] && echo "PASS sweep_axes_identity" || echo "FAIL sweep_axes_identity: $n runs name the prefetcher and device, expected 4"
# the same configuration through `moesim run` gives the same tok/s
want=$("$MOESIM" run --trace $T --policy lru --capacity 2 --prefetch gate:ahead=1,n=2 --device rtx-3060 \
    --model Mixtral-8x7B --json | sed 's/.*"tok_s":\([0-9.e+-]*\).*/\1/')
got=$(sqlite3 "$tmp/a.db" "select printf('%.6f', m.value) from runs r join metrics m on m.run_id = r.id
    where m.name = 'tok_s' and r.config_text like '%capacity=2%' and r.config_text like '%policy=lru%'
    and r.config_text like '%prefetch=gate%'")
w=$(printf '%.6f' "$want")
[ -n "$got" ] && [ "$got" = "$w" ] && echo "PASS sweep_axes_equals_run" || echo "FAIL sweep_axes_equals_run: sweep $got, run $w"
"$MOESIM" sweep --trace traces/tinymix_session.moetrace --policies lru --capacities 8 --split adapmoe \
    --db "$tmp/b.db" >/dev/null 2>&1
n=$(sqlite3 "$tmp/b.db" "select count(*) from runs where config_text like '%split=adapmoe:profile=oracle%'")
[ "$n" = 1 ] && echo "PASS sweep_axes_split" || echo "FAIL sweep_axes_split: $n runs carry the split"
"$MOESIM" sweep --trace $T --policies lru --capacities 2 --prefetch bogus --db "$tmp/c.db" >/dev/null 2>"$tmp/err"
rc=$?
if [ $rc = 2 ] && grep -q "unknown prefetcher 'bogus'" "$tmp/err" && [ ! -f "$tmp/c.db" ]; then echo "PASS sweep_axes_bad_prefetch"
else echo "FAIL sweep_axes_bad_prefetch: rc $rc, $(cat "$tmp/err")"; fi
