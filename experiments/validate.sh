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
echo "validate: calibrating this machine (results/devices.local.ini)"
"$M" calibrate --model models/tinymix || die "calibration failed"
echo "validate: running experiments/validate.ini (a few minutes)"
"$M" validate --grid experiments/validate.ini --db results/validate.db --experiment validate \
    --offload models/tinymix/experts.pack | tee results/validate.txt || die "the grid failed"
"$M" plot validation --db results/validate.db -o results/validation.png || die "plot failed"
echo "validate: results/validate.txt, results/validate.db, results/validation.png"
