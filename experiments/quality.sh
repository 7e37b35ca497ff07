#!/bin/sh
# quality.sh (`make quality`): what the speed levers cost in model quality.
# Runs the grid of experiments/quality.ini (every precision scheme resident,
# every capacity x miss mode x pinning offloaded, on the held-out text of each
# domain) into results/quality.db, writes the table to results/quality.txt
# the per-domain bits table to results/quality_bits.txt and the
# speed-quality figure to results/quality_pareto.png.
# BUILD names the build folder (set by the Makefile; default build).
set -eu
BUILD=${BUILD:-build}
M=$BUILD/moesim
die() { echo "quality: $*" >&2; exit 1; }
[ -x "$M" ] || die "$M not found; run 'make' first"
mkdir -p results
rm -f results/quality.db
"$M" model info models/tinymix/experts.pack >/dev/null 2>&1 ||
    "$M" model pack models/tinymix -o models/tinymix/experts.pack || die "packing failed"
"$M" model info models/tinymix/experts-q2.pack >/dev/null 2>&1 ||
    "$M" model pack models/tinymix -o models/tinymix/experts-q2.pack --dtype q2 || die "packing failed"
echo "quality: running experiments/quality.ini (several minutes)"
"$M" quality --grid experiments/quality.ini --db results/quality.db --experiment quality \
    --offload models/tinymix/experts.pack >results/quality.txt || die "the grid failed"
"$M" plot quality --db results/quality.db --experiment quality -o results/quality_pareto.png || die "plot failed"
# the summary: each configuration's mean over the texts
# the summary: each configuration's mean over the texts
sqlite3 -header -column results/quality.db "
  SELECT c.value AS configuration, count(*) AS texts, printf('%.4f', avg(d.value)) AS delta_nats_per_byte,
         printf('%.4f', avg(k.value)) AS kl_mean, printf('%.1f', 100 * avg(t.value)) AS top1_pct,
         printf('%.0f', avg(r.value)) AS tok_s, printf('%.3f', avg(rep.value)) AS repetition
  FROM run_config c
  JOIN metrics d ON d.run_id = c.run_id AND d.name = 'delta_nats_per_byte'
  JOIN metrics k ON k.run_id = c.run_id AND k.name = 'kl_mean'
  JOIN metrics t ON t.run_id = c.run_id AND t.name = 'top1_agreement'
  JOIN metrics r ON r.run_id = c.run_id AND r.name = 'tok_s'
  JOIN metrics rep ON rep.run_id = c.run_id AND rep.name = 'repetition'
  WHERE c.key = 'configuration' GROUP BY c.value ORDER BY min(c.run_id)" >results/quality_summary.txt ||
    die "summary failed"
# per domain: nats per byte lost by uniform 8/4/3/2-bit experts
sqlite3 -header -column results/quality.db "
  SELECT replace(replace(t.value, rtrim(t.value, replace(t.value, '_', '')), ''), '.txt', '') AS domain,
    max(CASE WHEN c.value = 'uniform:bits=16' THEN printf('%.4f', f.value) END) AS full_nats_per_byte,
    max(CASE WHEN c.value = 'uniform:bits=8' THEN printf('%+.4f', d.value) END) AS q8,
    max(CASE WHEN c.value = 'uniform:bits=4' THEN printf('%+.4f', d.value) END) AS q4,
    max(CASE WHEN c.value = 'uniform:bits=3' THEN printf('%+.4f', d.value) END) AS q3,
    max(CASE WHEN c.value = 'uniform:bits=2' THEN printf('%+.4f', d.value) END) AS q2
  FROM run_config c JOIN run_config t ON t.run_id = c.run_id AND t.key = 'text'
  JOIN metrics d ON d.run_id = c.run_id AND d.name = 'delta_nats_per_byte'
  JOIN metrics f ON f.run_id = c.run_id AND f.name = 'nats_per_byte_full'
  WHERE c.key = 'constraint' GROUP BY t.value ORDER BY t.value" >results/quality_bits.txt || die "bits table failed"
echo "quality: results/quality_bits.txt (8/4/3/2 bits per domain)"
echo "quality: results/quality.txt, results/quality_summary.txt, results/quality.db, results/quality_pareto.png"
