#!/bin/sh
# validate_scale.sh (`make validate-scale`): the simulator against the real
# backend at real expert sizes (experiments/validate_scale.ini says what and
# why). Writes the models once under $MOESIM_SCALE_DIR (default
# /var/tmp/moesim-scale, about 24 GiB), calibrates this machine on each
# (results/devices.local.ini, sections scale-olmoe and scale-mixtral), runs
# each section's grid into results/validate_scale.db and the tables to
# results/validate_scale.txt, and checks each offloaded run's peak RSS
# against dense weights + cache + 10% + one layer's scratch slots + 64 MiB.
# BUILD names the build folder (set by the Makefile; default build).
set -eu
BUILD=${BUILD:-build}
M=$BUILD/moesim
DIR=${MOESIM_SCALE_DIR:-/var/tmp/moesim-scale}
die() { echo "validate-scale: $*" >&2; exit 1; }
[ -x "$M" ] || die "$M not found; run 'make' first"
mkdir -p "$DIR" results
synth() { # NAME ARGS...: write the model once
    name=$1; shift
    [ -f "$DIR/$name/experts.pack" ] && "$M" model info "$DIR/$name/experts.pack" >/dev/null 2>&1 && return 0
    echo "validate-scale: writing $DIR/$name"
    "$M" model synth "$@" -o "$DIR/$name" --force || die "model synth $name failed"
}
synth OLMoE-1B-7B-synth --geometry OLMoE-1B-7B
synth Mixtral-8x7B-synth4 --geometry Mixtral-8x7B --keep-layers 4
sed "s|@SCALE@|$DIR|g" experiments/validate_scale.ini >"$DIR/validate_scale.ini"
out=results/validate_scale.txt
rm -f results/validate_scale.db
: >"$out"
for sec in olmoe mixtral; do
    model=$(sed -n "/^\[$sec\]/,/^\[/s|^model = ||p" "$DIR/validate_scale.ini")
    echo "validate-scale: calibrating on $model (results/devices.local.ini [scale-$sec])"
    "$M" calibrate --model "$model" --name "scale-$sec" --dir "$DIR" >/dev/null || die "calibration failed"
    echo "validate-scale: [$sec]" | tee -a "$out"
    "$M" validate --grid "$DIR/validate_scale.ini" --section "$sec" --db results/validate_scale.db | tee -a "$out" ||
        die "validate [$sec] failed"
    # memory: the largest capacity of the grid, alone in a process
    cap=$(sed -n "/^\[$sec\]/,/^\[/s|^capacities = .* ||p" "$DIR/validate_scale.ini")
    route=$(sed -n "/^\[$sec\]/,/^\[/s|^route_from = ||p" "$DIR/validate_scale.ini")
    trunc=$(sed -n "/^\[$sec\]/,/^\[/s|^route_truncate = 1|--route-truncate|p" "$DIR/validate_scale.ini")
    "$M" infer --model "$model" --offload "$model/experts.pack" --route-from "$route" $trunc --route-steps 8 \
        --capacity "$cap" 2>&1 >/dev/null | grep "memory:" | tee -a "$out" |
        awk -v sec="$sec" '
            function bytes(v, u) { return v * (u == "KiB" ? 1024 : u == "MiB" ? 1048576 : u == "GiB" ? 1073741824 : 1) }
            { sub(";", "", $7); rss = bytes($6, $7); d = bytes($10, $11); c = bytes($14, $15); s = bytes($22, $23)
              bound = (d + c) * 1.1 + s + 64 * 1048576
              printf "validate-scale: [%s] peak RSS %.2f GiB, bound %.2f GiB: %s\n", sec, rss / 2^30, bound / 2^30,
                     rss <= bound ? "within" : "OVER"
              exit rss <= bound ? 0 : 1 }' | tee -a "$out"
done
echo "validate-scale: tables in $out, runs in results/validate_scale.db"
