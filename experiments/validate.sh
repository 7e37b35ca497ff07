#!/bin/sh
# validate.sh (`make validate`): measure the simulator against the real
# backend. Packs the shipped model's experts (models/tinymix/experts.pack,
# once), calibrates this machine (results/devices.local.ini, section
# this-machine: a fresh calibration each time, since a shared machine drifts),
# then runs the grid of experiments/validate.ini (every configuration
# offloaded, then replayed in the simulator) into results/validate.db, writes
# the table to results/validate.txt and the figure to results/validation.png.
# BUILD names the build folder (set by the Makefile; default build).
set -eu
BUILD=${BUILD:-build}
M=$BUILD/moesim
die() { echo "validate: $*" >&2; exit 1; }
[ -x "$M" ] || die "$M not found; run 'make' first"
mkdir -p results
rm -f results/validate.db
"$M" model info models/tinymix/experts.pack >/dev/null 2>&1 ||
    "$M" model pack models/tinymix -o models/tinymix/experts.pack || die "packing failed"
echo "validate: calibrating this machine twice (results/devices.local.ini)"
"$M" calibrate --model models/tinymix --name this-machine-first >/dev/null || die "calibration failed"
"$M" calibrate --model models/tinymix || die "calibration failed"
# How far two calibrations in a row agree: the figures the predictions use
# (one expert read idle and busy, per token compute), first vs second.
awk -v blk="$("$M" model info models/tinymix/experts.pack | awk '$1 == "expert_bytes" { print $2; exit }')" '
    /^\[/ { sec = $0 } / = / { v[sec, $1] = $3 }
    END {
        a = "[this-machine-first]"; b = "[this-machine]"
        split("io io_busy dense_us_per_token expert_us_per_token attn_ns_per_ctx head_us", k, " ")
        printf "validate: calibration spread (|first - second| / second):"
        for (i = 1; i <= 6; i++) {
            if (k[i] == "io" || k[i] == "io_busy") {
                x = v[a, k[i] "_latency_us"] + blk / (v[a, k[i] "_bandwidth_GBps"] * 1e3)
                y = v[b, k[i] "_latency_us"] + blk / (v[b, k[i] "_bandwidth_GBps"] * 1e3)
                name = k[i] "_read_us"
            } else { x = v[a, k[i]]; y = v[b, k[i]]; name = k[i] }
            printf " %s %.1f%%", name, y ? 100 * (x > y ? x - y : y - x) / y : 0
        }
        printf "\n"
    }' results/devices.local.ini | tee results/calibration_spread.txt
echo "validate: running experiments/validate.ini (about 10 minutes)"
"$M" validate --grid experiments/validate.ini --db results/validate.db --experiment validate \
    --offload models/tinymix/experts.pack | tee results/validate.txt || die "the grid failed"
"$M" plot validation --db results/validate.db -o results/validation.png || die "plot failed"
echo "validate: results/validate.txt, results/validate.db, results/validation.png"
