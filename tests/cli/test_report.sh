#!/bin/sh
# test_report.sh: `make demo`'s report (experiments/demo.sh, into a temporary
# folder): one self-contained file (every figure embedded, no external image),
# captured and synthetic traces in separate sections, each figure in the
# section of the trace it draws, and key numbers that tell policies apart.
MOESIM=${MOESIM:-build/moesim}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; }
command -v gnuplot >/dev/null && command -v sqlite3 >/dev/null || { fail report_setup "gnuplot or sqlite3 missing"; exit 0; }
if ! OUT="$tmp" BUILD=$(dirname "$MOESIM") sh experiments/demo.sh >"$tmp/log" 2>&1; then
    fail report_demo "$(tail -5 "$tmp/log")"
    exit 0
fi
r=$tmp/report.html
# every <img> is a data: URI, and nothing else is fetched
imgs=$(grep -o '<img[^>]*>' "$r" | grep -c .)
embedded=$(grep -o '<img alt="[a-z_]*" src="data:image/png;base64,[A-Za-z0-9+/=]*">' "$r" | grep -c .)
external=$(grep -Eo '(src|href)="[^"]{0,40}' "$r" | grep -v '="data:' | head -3)
if [ "$imgs" -ge 8 ] && [ "$imgs" = "$embedded" ] && [ -z "$external" ]; then pass report_embedded
else fail report_embedded "$embedded of $imgs images embedded; external: $external"; fi
# sections: captured first (the session), then synthetic (the generated trace)
sec() { awk -v alt="$1" '/<h2>/ { h = $0 } index($0, "alt=\"" alt "\"") { print h; exit }' "$r"; }
if grep -q '<h2>Captured routing' "$r" && grep -q '<h2>Synthetic routing' "$r" &&
   sec hit_rate | grep -q Captured && sec warmup | grep -q Captured &&
   sec topic_switch | grep -q Synthetic && sec time_breakdown | grep -q Synthetic &&
   awk '/<h2>Captured/ { c = NR } /<h2>Synthetic/ { s = NR } /tinymix_session.moetrace/ && !t { t = NR }
        /default.moetrace/ && !d { d = NR } END { exit !(c < t && t < s && s < d) }' "$r"; then
    pass report_sections
else fail report_sections "$(grep -o '<h2>[^<]*' "$r" | tr '\n' ' ')"; fi
# key numbers: each column of the table holds many different values (the old
# rho = 1 column showed 0.303 for 13 of 14 policies), and the values are the
# database's hit rates of those runs
cols=$(awk -F'</?td>' '/^<tr><td>/ { for (i = 4; i <= 8; i += 2) v[i, $i] = 1 }
    END { for (k in v) { split(k, a, SUBSEP); n[a[1]]++ } printf "%d %d %d", n[4], n[6], n[8] }' "$r")
lru8=$(awk -F'</?td>' '$2 == "lru" { print $6 }' "$r")
db8=$(sqlite3 "$tmp/demo.db" "SELECT printf('%.3f', hit_rate) FROM run_summary WHERE experiment = 'policies'
      AND policy = 'lru' AND scope = 'per-layer' AND capacity = 8 AND cold_per_seq = 0")
set -- $cols
if [ "${1:-0}" -ge 10 ] && [ "${2:-0}" -ge 10 ] && [ "${3:-0}" -ge 10 ] && [ -n "$lru8" ] && [ "$lru8" = "$db8" ] &&
   grep -q '<td>pin (oracle)</td>' "$r"; then pass report_key_numbers
else fail report_key_numbers "distinct values per column: $cols; lru at 8: $lru8 (database $db8)"; fi
