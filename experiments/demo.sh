#!/bin/sh
# demo.sh (`make demo`): sweep experiments/policies.ini (every policy x rho,
# both scopes, on the topic-switching session captured from the shipped model)
# plus a few runs on the synthetic Mixtral-shaped trace for the other figures
# (cold per sequence, a device profile with prefetching), draw every figure
# with `moesim plot` and write results/report.html embedding them.
# BUILD names the build folder (set by the Makefile; default build).
set -eu
BUILD=${BUILD:-build}
M=$BUILD/moesim
DB=results/demo.db
die() { echo "demo: $*" >&2; exit 1; }

[ -x "$M" ] || die "$M not found; run 'make' first"
command -v gnuplot >/dev/null || die "gnuplot is not installed (run 'sudo make deps')"
command -v sqlite3 >/dev/null || die "the sqlite3 command is not installed (run 'sudo make deps')"
# The headline trace was captured by the real backend (traces/capture.sh); the
# synthetic one has Mixtral-8x7B's geometry and 18 sequences, which the
# device-profile and cold-start figures need.
trace=traces/tinymix_session.moetrace
synth=traces/default.moetrace
for f in "$trace" "$synth"; do [ -f "$f" ] || die "$f is missing"; done
# Figures and the table select the session by content hash, so runs left in
# results/demo.db from an older capture under the same path never mix in.
hash=$("$M" trace info "$trace" | awk '$1 == "hash" { print $2 }')
[ -n "$hash" ] || die "cannot read the content hash of $trace"
mkdir -p results "$BUILD/demo"

echo "demo: sweeping experiments/policies.ini into $DB"
"$M" sweep experiments/policies.ini --db "$DB" || die "sweep failed"

# Extra runs for the warm-up / timing / prefetch figures (same database).
extra=$BUILD/demo/extra.ini
cat >"$extra" <<INI
[experiment]
name = demo-extra
[traces]
default = $synth
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
default = $synth
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
plot hit_rate hit-rate "Hit rate vs cache size per policy (per-layer caches, warm). Belady's offline optimum (dashed) is the ceiling any online policy can reach." --experiment policies --scope per-layer --trace "$hash"
plot hit_rate_global hit-rate "The same in global scope: one pool of (layer, expert) keys; capacity is in experts over all layers (rho x layers x top-k)." --experiment policies --scope global --trace "$hash"
plot warmup warmup "Hit rate in windows of steps through the session at 8 of 32 experts per layer: the prompt switches from prose to C to the Bible, then the model generates." --experiment policies --scope per-layer --capacity 8 --trace "$hash"
plot layer_heatmap layer-heatmap "Per-layer hit rate at 8 of 32 experts per layer, one row per policy: whether some layers are harder to cache than others." --experiment policies --scope per-layer --capacity 8 --trace "$hash"
plot popularity popularity "Share of each layer's activations taken by each expert in the captured session: skew is what caching exploits." --trace "$trace"
plot topic_switch topic-switch "Synthetic Mixtral-shaped trace: warm cache (solid) vs cache emptied at every sequence start (dashed, dotted lines mark starts) at 4 experts per layer: the cost of a cold start." --experiment demo-extra --capacity 4 --trace "$synth"
plot time_breakdown time-breakdown "Synthetic Mixtral-shaped trace, simulated time per token on the rtx-3060 profile (Mixtral-8x7B sizes) at 4 experts per layer: compute, stalls on misses and late prefetches; diamonds = I/O busy time." --experiment demo-timing --trace "$synth"
plot prefetch prefetch "Synthetic Mixtral-shaped trace: prefetch precision and recall vs lookahead distance (recall divides by the experts actually needed)." --experiment demo-timing --policy lru --trace "$synth"
# Speed against quality, measured by `make quality` (minutes, so not here):
# drawn when its database exists.
quality_note="<p>Speed against quality: run <code>make quality</code> (several minutes), then <code>make demo</code> again, for the Pareto figure of what each lever costs.</p>"
if [ -f results/quality.db ] &&
   "$M" plot quality --db results/quality.db --experiment quality -o results/demo_quality.png >/dev/null 2>"$BUILD/demo/plot.err"; then
    figs="${figs}quality|Measured on the shipped model (make quality, results/quality.db): decode tok/s against the nats per byte lost on held-out text, one point per configuration (precision scheme resident; or capacity, miss mode and pinning offloaded), the frontier in red. Waiting for every miss loses nothing; 8-bit experts almost nothing.
"
    quality_note=""
fi

# Key numbers: hit rate per policy at rho = 1, 2, 3 (per-layer k, 2k, 3k experts).
k=$("$M" trace info "$trace" | awk '$1 == "top_k" { print $2 }')
rows=$(sqlite3 -separator '|' "$DB" "
    SELECT CASE WHEN instr(policy, ':') THEN substr(policy, 1, instr(policy, ':') - 1) ELSE policy END,
        printf('%.3f', MAX(CASE WHEN capacity = $k THEN hit_rate END)),
        printf('%.3f', MAX(CASE WHEN capacity = 2 * $k THEN hit_rate END)),
        printf('%.3f', MAX(CASE WHEN capacity = 3 * $k THEN hit_rate END))
    FROM run_summary
    WHERE experiment = 'policies' AND scope = 'per-layer' AND cold_per_seq = 0 AND status = 'done'
      AND trace_hash = '$hash'
    GROUP BY policy ORDER BY MAX(CASE WHEN capacity = 2 * $k THEN hit_rate END) DESC")
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
<table><tr><th>policy</th><th>$k experts/layer (&rho;=1)</th><th>$((2 * k)) (&rho;=2)</th><th>$((3 * k)) (&rho;=3)</th></tr>
HTML
    echo "$rows" | awk -F'|' 'NF { printf "<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>\n", $1, $2, $3, $4 }'
    echo "</table>"
    echo "$quality_note"
    printf '%s' "$figs" | while IFS='|' read -r name text; do
        [ -n "$name" ] || continue
        printf '<figure><img src="demo_%s.png" alt="%s"><figcaption>%s</figcaption></figure>\n' "$name" "$name" "$text"
    done
    echo "</body></html>"
} >"$html"

echo "demo: results database  $DB  (moesim results list --db $DB)"
echo "demo: report            $html ($(printf '%s' "$figs" | grep -c . ) figures)"
