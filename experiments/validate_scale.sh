#!/bin/sh
# validate_scale.sh (`make validate-scale`): the simulator against the real
# backend at real expert sizes (experiments/validate_scale.ini says what and
# why). Writes the models once under $MOESIM_SCALE_DIR (default
# /var/tmp/moesim-scale, about 24 GiB; a dense pack for a section with
# stream_dense), calibrates this machine on each (results/devices.local.ini,
# each section's device, once per run; the report goes into the table), runs
# each section's grid into results/validate_scale.db and the tables to
# results/validate_scale.txt, and checks each offloaded run's peak RSS
# against dense weights + cache + 10% + one layer's scratch slots + 64 MiB.
# BUILD names the build folder (set by the Makefile; default build).
# SECTIONS="mixtral" (make validate-scale SECTIONS=mixtral) re-runs only the
# sections named and keeps the others' tables in results/validate_scale.txt.
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
calibrated=""
out=results/validate_scale.txt
ALL="olmoe mixtral olmoe-stream"
SECTIONS=${SECTIONS:-$ALL}
for sec in $SECTIONS; do
    case " $ALL " in *" $sec "*) ;; *) die "SECTIONS: no section [$sec] (sections: $ALL)" ;; esac
done
[ "$SECTIONS" = "$ALL" ] && rm -f results/validate_scale.db
rm -f "$DIR"/validate_scale.*.part # an interrupted run's parts must not be spliced in below
for sec in $SECTIONS; do
    out_sec="$DIR/validate_scale.$sec.part" # outside the repository until spliced in
    : >"$out_sec"
    model=$(sed -n "/^\[$sec\]/,/^\[/s|^model = ||p" "$DIR/validate_scale.ini")
    # The disk of a VM can be a file in its host's page cache: a first
    # O_DIRECT pass over a freshly written pack ran at ~1.2 GB/s here, the
    # next at ~3 GB/s. Runs read the same experts again and again and
    # calibrate times a scratch file it has read once, so the pack is read
    # once too: every figure then describes the same (warm) device.
    echo "validate-scale: reading $model/experts.pack once"
    dd if="$model/experts.pack" of=/dev/null bs=64M iflag=direct 2>/dev/null ||
        dd if="$model/experts.pack" of=/dev/null bs=64M 2>/dev/null || die "cannot read $model/experts.pack"
    key() { sed -n "/^\[$sec\]/,/^\[/s|^$1 = ||p" "$DIR/validate_scale.ini"; }
    device=$(key device)
    stream=$(key stream_dense)
    if [ -n "$stream" ] && ! "$M" model info "$model/dense.pack" >/dev/null 2>&1; then
        "$M" model pack "$model" --dense || die "cannot write $model/dense.pack"
    fi
    echo "validate-scale: [$sec]" | tee -a "$out_sec"
    # one calibration per device per run (sections of one model share it);
    # its report goes into the table, where the anchoring can be read
    case " $calibrated " in
    *" $device "*) echo "validate-scale: device $device as calibrated above" | tee -a "$out_sec" ;;
    *)
        echo "validate-scale: calibrating on $model (results/devices.local.ini [$device])"
        "$M" calibrate --model "$model" --name "$device" --dir "$DIR" 2>/dev/null | sed 's/^/calibrate: /' |
            tee -a "$out_sec" >/dev/null
        grep -q "^calibrate: wrote \[$device\]" "$out_sec" || die "calibration failed"
        calibrated="$calibrated $device" ;;
    esac
    "$M" validate --grid "$DIR/validate_scale.ini" --section "$sec" --db results/validate_scale.db | tee -a "$out_sec" ||
        die "validate [$sec] failed"
    # memory: the largest capacity of the grid, alone in a process
    cap=$(key capacities | sed 's/.* //')
    route=$(key route_from)
    trunc=$(key route_truncate | sed 's/^1$/--route-truncate/')
    "$M" infer --model "$model" --offload "$model/experts.pack" --route-from "$route" $trunc --route-steps 8 \
        --capacity "$cap" ${stream:+--stream-dense=$stream} 2>&1 >/dev/null | grep "memory:" | tee -a "$out_sec" |
        awk -v sec="$sec" '
            function bytes(v, u) { return v * (u == "KiB" ? 1024 : u == "MiB" ? 1048576 : u == "GiB" ? 1073741824 : 1) }
            { sub(";", "", $7); rss = bytes($6, $7); d = bytes($10, $11); c = bytes($14, $15); s = bytes($22, $23)
              b = NF >= 29 ? bytes($28, $29) : 0 # --stream-dense: its layer buffers
              bound = (d + c) * 1.1 + s + b + 64 * 1048576
              printf "validate-scale: [%s] peak RSS %.2f GiB, bound %.2f GiB: %s\n", sec, rss / 2^30, bound / 2^30,
                     rss <= bound ? "within" : "OVER"
              exit rss <= bound ? 0 : 1 }' | tee -a "$out_sec"
done
# the tables in section order: re-run sections from their new part, the
# others as the previous results file had them
for sec in $ALL; do
    if [ -f "$DIR/validate_scale.$sec.part" ]; then cat "$DIR/validate_scale.$sec.part"
    elif [ -f "$out" ]; then
        awk -v h="validate-scale: [$sec]" '/^validate-scale: \[[a-z0-9_-]*\]$/ { on = ($0 == h) } on' "$out"
    fi
done >"$out.tmp"
mv "$out.tmp" "$out"
for sec in $SECTIONS; do rm -f "$DIR/validate_scale.$sec.part"; done
echo "validate-scale: tables in $out, runs in results/validate_scale.db"
