#!/bin/sh
# demo.sh (`make demo`): sweep experiments/policies.ini (every policy x rho
# 0.5..4, both scopes) plus a few runs for the other figures (cold per
# sequence, a device profile with prefetching), draw every figure with
# `moesim plot` and write results/report.html embedding them.
# BUILD names the build folder (set by the Makefile; default build).
set -eu
BUILD=${BUILD:-build}
M=$BUILD/moesim
DB=results/demo.db
die() { echo "demo: $*" >&2; exit 1; }

[ -x "$M" ] || die "$M not found; run 'make' first"
command -v gnuplot >/dev/null || die "gnuplot is not installed (run 'sudo make deps')"
command -v sqlite3 >/dev/null || die "the sqlite3 command is not installed (run 'sudo make deps')"
trace=traces/default.moetrace
[ -f "$trace" ] || die "$trace is missing"
mkdir -p results "$BUILD/demo"

echo "demo: sweeping experiments/policies.ini into $DB"
"$M" sweep experiments/policies.ini --db "$DB" || die "sweep failed"

# Extra runs for the warm-up / timing / prefetch figures (same database).
extra=$BUILD/demo/extra.ini
cat >"$extra" <<INI
[experiment]
name = demo-extra
[traces]
default = $trace
[sweep]
policies     = lru, s3fifo, belady
rho          = 2
cold_per_seq = off, on
INI
"$M" sweep "$extra" --db "$DB" >/dev/null || die "extra sweep failed"
timing=$BUILD/demo/timing.ini
cat >"$timing" <<INI
[experiment]
name = demo-timing
[traces]
default = $trace
[sweep]
policies = lru, lfu, s3fifo
rho      = 2
device   = rtx-3060
model    = Mixtral-8x7B
prefetch = none, gate:ahead=1,n=2, gate:ahead=2,n=2, transition:hops=1, transition:hops=2
INI
"$M" sweep "$timing" --db "$DB" >/dev/null || die "timing sweep failed"

figs=""
plot() { # NAME KIND EXPLANATION [args...]
    name=$1 kind=$2 text=$3
    shift 3
    if "$M" plot "$kind" --db "$DB" -o "results/demo_$name.png" "$@" >/dev/null 2>"$BUILD/demo/plot.err"; then
        figs="$figs$name|$text
"
    else
        echo "demo: plot $kind skipped: $(cat "$BUILD/demo/plot.err")" >&2
    fi
}
plot hit_rate hit-rate "Hit rate vs cache size per policy (per-layer caches, warm). Belady's offline optimum (dashed) is the ceiling any online policy can reach." --experiment policies --scope per-layer
plot hit_rate_global hit-rate "The same in global scope: one pool of (layer, expert) keys; capacity is in experts over all layers (rho x layers x top-k)." --experiment policies --scope global
plot warmup warmup "Hit rate in windows of steps through the trace at 4 experts per layer: how fast each policy warms up and how stable it stays." --experiment policies --scope per-layer --capacity 4
plot layer_heatmap layer-heatmap "Per-layer hit rate at 4 experts per layer, one row per policy: whether some layers are harder to cache than others." --experiment policies --scope per-layer --capacity 4
plot popularity popularity "Share of each layer's activations taken by each expert (from the trace): skew is what caching exploits." --trace "$trace"
plot topic_switch topic-switch "Warm cache (solid) vs cache emptied at every sequence start (dashed, dotted lines mark starts) at 4 experts per layer: the cost of a cold start." --experiment demo-extra --capacity 4
plot time_breakdown time-breakdown "Simulated time per token on the rtx-3060 profile (Mixtral-8x7B sizes) at 4 experts per layer: compute, stalls on misses and late prefetches; diamonds = I/O busy time." --experiment demo-timing
plot prefetch prefetch "Prefetch precision and recall vs lookahead distance (recall divides by the experts actually needed)." --experiment demo-timing --policy lru

# Key numbers: hit rate per policy at rho = 1, 2, 3 (per-layer 2, 4, 6 experts).
rows=$(sqlite3 -separator '|' "$DB" "
    SELECT CASE WHEN instr(policy, ':') THEN substr(policy, 1, instr(policy, ':') - 1) ELSE policy END,
        printf('%.3f', MAX(CASE WHEN capacity = 2 THEN hit_rate END)),
        printf('%.3f', MAX(CASE WHEN capacity = 4 THEN hit_rate END)),
        printf('%.3f', MAX(CASE WHEN capacity = 6 THEN hit_rate END))
    FROM run_summary WHERE experiment = 'policies' AND scope = 'per-layer' AND cold_per_seq = 0 AND status = 'done'
    GROUP BY policy ORDER BY MAX(CASE WHEN capacity = 4 THEN hit_rate END) DESC")
shape=$("$M" trace info "$trace" | awk '$1 == "layers" || $1 == "experts" || $1 == "top_k" || $1 == "steps" { printf "%s %s, ", $1, $2 }')
ver=$(git describe --always --dirty 2>/dev/null || echo unknown)

html=results/report.html
{
    cat <<HTML
<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>moesim report</title>
<style>body{font-family:sans-serif;max-width:1150px;margin:2em auto;color:#222}
figure{margin:2em 0}figcaption{margin-top:.4em;color:#444}img{max-width:100%;border:1px solid #ddd}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25em .7em;text-align:right}
th:first-child,td:first-child{text-align:left}</style></head><body>
<h1>moesim report</h1>
<p>Trace <code>$trace</code> (${shape%, }), database <code>$DB</code>, moesim $ver.
Hit rate = unique (step, layer, expert) activations served from the cache; replay semantics in README.md.</p>
<h2>Key numbers: hit rate, per-layer caches, warm</h2>
<table><tr><th>policy</th><th>2 experts/layer (&rho;=1)</th><th>4 (&rho;=2)</th><th>6 (&rho;=3)</th></tr>
HTML
    echo "$rows" | awk -F'|' 'NF { printf "<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>\n", $1, $2, $3, $4 }'
    echo "</table>"
    printf '%s' "$figs" | while IFS='|' read -r name text; do
        [ -n "$name" ] || continue
        printf '<figure><img src="demo_%s.png" alt="%s"><figcaption>%s</figcaption></figure>\n' "$name" "$name" "$text"
    done
    echo "</body></html>"
} >"$html"

echo "demo: results database  $DB  (moesim results list --db $DB)"
echo "demo: report            $html ($(printf '%s' "$figs" | grep -c . ) figures)"
