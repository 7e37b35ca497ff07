#!/bin/sh
# test_offload.sh: offloaded execution (`infer --offload`), `validate` and
# `calibrate` on the shipped model.
#  - the offloaded run prints the resident run's text, byte for byte, in every
#    scope, I/O mode and with a prefetcher;
#  - its measured cache counts equal the simulator's replay of the trace it
#    captured, exactly (four policies, per-layer and global scope, and with the
#    gate prefetcher through its prediction log);
#  - cache states save, load (a warm start: more hits, the same text) and are
#    replayed alike by the simulator;
#  - bad packs and unsupported options fail naming the file or option and
#    write no trace; calibrate writes and updates profile sections; validate
#    reports exact counts and stores both runs linked by one validation id.
# A 100-byte prompt and 24 generated tokens keep each run well under a second.
MOESIM=${MOESIM:-build/moesim}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; fails=1; }

# run CMD...: exit status in $rc, stdout in $tmp/out, stderr in $tmp/err
run() { "$@" >"$tmp/out" 2>"$tmp/err"; rc=$?; }
has() { grep -qF -- "$2" "$tmp/$1"; }

model=models/tinymix
eb=110592                                   # bytes of one bf16 tinymix expert
head -c 100 "$model/golden/heldout_prose.txt" >"$tmp/p.txt"
INFER="$MOESIM infer --model $model --prompt-file $tmp/p.txt --max-tokens 24 --threads 2"

run "$MOESIM" model pack "$model" -o "$tmp/t.pack"
if [ $rc -ne 0 ]; then fail offload_setup_pack "rc $rc: $(cat "$tmp/err")"; exit 1; fi
# A file system without O_DIRECT (tmpfs) says so: then every run reads buffered.
IO=""
run "$MOESIM" model verify "$tmp/t.pack" --io direct
if [ $rc -ne 0 ]; then
    echo "info: O_DIRECT unavailable in $tmp, using --io buffered: $(cat "$tmp/err")"
    IO="--io buffered"
fi

# counts PREFIX: parse infer's measured summary in $tmp/err into PREFIX_acc,
# PREFIX_hits, PREFIX_byp, PREFIX_mib, PREFIX_dmib, PREFIX_pmib
counts() {
    set -- "$1" $(sed -n 's/^moesim infer: offloaded, .*: \([0-9]*\) accesses, \([0-9]*\) hits ([0-9.]*%), \([0-9]*\) not cached; read \([0-9.]*\) MiB (\([0-9.]*\) demand, \([0-9.]*\) prefetch)$/\1 \2 \3 \4 \5 \6/p' "$tmp/err")
    eval "$1_acc=\${2:-none} $1_hits=\${3:-none} $1_byp=\${4:-none} $1_mib=\${5:-none} $1_dmib=\${6:-none} $1_pmib=\${7:-none}"
}
# jnum FILE KEY: the number of "KEY" in a flat JSON object (moesim run --json)
jnum() { tr ',{}' '\n\n\n' <"$1" | sed -n "s/^\"$2\":\([-0-9.e+]*\)$/\1/p" | head -1; }
# jget FILE OBJECT KEY: KEY inside the flat object OBJECT (validate --json)
jget() { sed -n "s/.*\"$2\":{\([^}]*\)}.*/\1/p" "$1" | tr ',' '\n' | sed -n "s/^\"$3\":\([-0-9.e+]*\|null\)$/\1/p"; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }

# ---- the same text as the resident run ------------------------------------------------
run $INFER
cp "$tmp/out" "$tmp/resident.out"
if [ $rc -eq 0 ] && [ "$(wc -c <"$tmp/resident.out")" -ge 10 ]; then pass offload_resident_runs
else fail offload_resident_runs "rc $rc, $(wc -c <"$tmp/resident.out") bytes: $(cat "$tmp/err")"; fi

same_text() { # NAME OPTIONS...
    name=$1; shift
    run $INFER --offload "$tmp/t.pack" $IO "$@"
    if [ $rc -eq 0 ] && cmp -s "$tmp/out" "$tmp/resident.out" && has err "moesim infer: offloaded, "; then pass "$name"
    else fail "$name" "rc $rc; stdout $(od -An -c "$tmp/out" | head -2 | tr -s ' ') vs resident $(od -An -c "$tmp/resident.out" | head -2 | tr -s ' '): $(head -3 "$tmp/err")"; fi
}
same_text offload_text_per_layer --capacity 4
same_text offload_text_global --capacity 40 --scope global
same_text offload_text_prefetch --capacity 4 --prefetch gate:ahead=1
same_text offload_text_tiny_cache --capacity 1 --io-threads 2 --threads 1
same_text offload_text_io_buffered --capacity 4 --io buffered
same_text offload_text_io_mmap --capacity 4 --io mmap

# the captured routing (experts and gate weights of every token) is the resident
# run's: the offloaded run prefills in steps of 32 tokens, so the resident one does too
run $INFER --prefill-chunk 32 --trace-out "$tmp/res.moetrace"
run $INFER --offload "$tmp/t.pack" $IO --capacity 4 --trace-out "$tmp/off.moetrace"
"$MOESIM" trace export "$tmp/res.moetrace" -o "$tmp/res.csv" 2>"$tmp/err1"
"$MOESIM" trace export "$tmp/off.moetrace" -o "$tmp/off.csv" 2>>"$tmp/err1"
if [ $rc -eq 0 ] && [ "$(wc -l <"$tmp/off.csv")" -gt 1000 ] && cmp -s "$tmp/res.csv" "$tmp/off.csv" &&
   "$MOESIM" trace info "$tmp/off.moetrace" | grep -q "offloaded=1"; then pass offload_trace_equals_resident
else fail offload_trace_equals_resident "rc $rc, $(wc -l <"$tmp/off.csv" 2>&1) rows, $(cmp "$tmp/res.csv" "$tmp/off.csv" 2>&1) $(cat "$tmp/err" "$tmp/err1")"; fi

# --offload auto packs DIR/experts.pack once (a directory of links: the checkout stays clean)
mkdir "$tmp/tm"
ln -s "$PWD/$model/config.json" "$PWD/$model/model.safetensors" "$tmp/tm/"
run $MOESIM infer --model "$tmp/tm" --prompt-file "$tmp/p.txt" --max-tokens 24 --threads 2 --offload auto --capacity 4 $IO
ok=0
if [ $rc -eq 0 ] && cmp -s "$tmp/out" "$tmp/resident.out" && has err "packing the experts" && cmp -s "$tmp/tm/experts.pack" "$tmp/t.pack"; then
    run $MOESIM infer --model "$tmp/tm" --prompt-file "$tmp/p.txt" --max-tokens 24 --threads 2 --offload auto --capacity 4 $IO
    [ $rc -eq 0 ] && cmp -s "$tmp/out" "$tmp/resident.out" && ! has err "packing" && ok=1
fi
if [ $ok = 1 ]; then pass offload_auto_packs_once; else fail offload_auto_packs_once "rc $rc: $(cat "$tmp/err")"; fi

# ---- measured counts = the simulator's replay of the captured trace -------------------------
for pol in lru lfu s3fifo lcp; do
    for cfg in "2 per-layer" "8 per-layer" "40 global"; do
        set -- $cfg
        cap=$1 scope=$2 name="offload_counts_${pol}_${scope}_$cap"
        rm -f "$tmp/g.moetrace"
        run $INFER --offload "$tmp/t.pack" $IO --policy $pol --capacity $cap --scope $scope --trace-out "$tmp/g.moetrace"
        counts m
        if [ $rc -ne 0 ] || [ "$m_acc" = none ]; then fail "$name" "infer rc $rc: $(cat "$tmp/err")"; continue; fi
        run "$MOESIM" run --trace "$tmp/g.moetrace" --policy $pol --capacity $cap --scope $scope --json
        s_acc=$(jnum "$tmp/out" accesses) s_hits=$(jnum "$tmp/out" hits) s_byp=$(jnum "$tmp/out" bypasses)
        want_mib=$(mib $(( (m_acc - m_hits) * eb )))
        if [ $rc -eq 0 ] && [ "$m_acc" -gt 0 ] && [ "$s_acc" = "$m_acc" ] && [ "$s_hits" = "$m_hits" ] &&
           [ "$s_byp" = "$m_byp" ] && [ "$m_mib" = "$want_mib" ] && [ "$m_pmib" = 0.0 ]; then
            pass "$name"
        else
            fail "$name" "measured $m_acc accesses $m_hits hits $m_byp not cached $m_mib MiB (want $want_mib); simulated $s_acc $s_hits $s_byp (rc $rc $(cat "$tmp/err"))"
        fi
    done
done

# the gate prefetcher: its prediction log replays to the same hits and bytes,
# and the simulator's own gate prefetcher on the captured lookahead agrees
run $INFER --offload "$tmp/t.pack" $IO --capacity 4 --prefetch gate:ahead=1 --lookahead 1 \
    --prefetch-log "$tmp/pf.log" --trace-out "$tmp/pf.moetrace"
counts p
if [ $rc -eq 0 ] && [ "$p_acc" != none ] && [ "$(head -1 "$tmp/pf.log")" = "# moesim prefetch log v1" ] &&
   [ "$(grep -cv '^#' "$tmp/pf.log")" -gt 0 ] && [ "$p_pmib" != 0.0 ]; then pass offload_prefetch_log_written
else fail offload_prefetch_log_written "rc $rc, prefetch $p_pmib MiB: $(head -2 "$tmp/pf.log" 2>&1) $(cat "$tmp/err")"; fi
run "$MOESIM" run --trace "$tmp/pf.moetrace" --capacity 4 --prefetch "log:file=$tmp/pf.log" --json
cp "$tmp/out" "$tmp/log.json"
l_hits=$(jnum "$tmp/log.json" hits) l_bytes=$(jnum "$tmp/log.json" bytes_read) l_dem=$(jnum "$tmp/log.json" bytes_demand)
l_byp=$(jnum "$tmp/log.json" bypasses) l_acc=$(jnum "$tmp/log.json" accesses)
if [ $rc -eq 0 ] && [ -n "$l_bytes" ] && [ "$l_acc" = "$p_acc" ] && [ "$l_hits" = "$p_hits" ] && [ "$l_byp" = "$p_byp" ] &&
   [ "$(mib "$l_bytes")" = "$p_mib" ] && [ "$(mib "$l_dem")" = "$p_dmib" ]; then pass offload_prefetch_log_replay
else fail offload_prefetch_log_replay "measured $p_acc/$p_hits/$p_byp, $p_mib MiB ($p_dmib demand); log replay $l_acc/$l_hits/$l_byp, $(mib "${l_bytes:-0}") MiB ($(mib "${l_dem:-0}")) rc $rc $(cat "$tmp/err")"; fi
run "$MOESIM" run --trace "$tmp/pf.moetrace" --capacity 4 --prefetch gate:ahead=1 --json
g_hits=$(jnum "$tmp/out" hits) g_bytes=$(jnum "$tmp/out" bytes_read) g_iss=$(jnum "$tmp/out" prefetch_issued)
if [ $rc -eq 0 ] && [ -n "$g_bytes" ] && [ "$g_hits" = "$l_hits" ] && [ "$g_bytes" = "$l_bytes" ] &&
   [ "$g_iss" = "$(jnum "$tmp/log.json" prefetch_issued)" ] && [ "$g_hits" -gt "$(jnum "$tmp/log.json" compulsory_misses)" ]; then
    pass offload_prefetch_gate_replay
else fail offload_prefetch_gate_replay "gate on the trace: $g_hits hits, $g_bytes bytes, $g_iss issued; log: $l_hits, $l_bytes (rc $rc $(cat "$tmp/err"))"; fi

# ---- cache state ------------------------------------------------------------------------
run $INFER --offload "$tmp/t.pack" $IO --capacity 8 --save-state "$tmp/s.state" --trace-out "$tmp/c.moetrace"
counts cold
n_lines=$(grep -c '^[0-9][0-9]* [0-9][0-9]*$' "$tmp/s.state" 2>/dev/null)
n_bad=$(sed 1,2d "$tmp/s.state" 2>/dev/null | awk '!($1 >= 0 && $1 < 6 && $2 >= 0 && $2 < 32 && NF == 2)' | wc -l)
if [ $rc -eq 0 ] && [ "$(sed -n 1p "$tmp/s.state")" = "# moesim cache state v1" ] && [ "$(sed -n 2p "$tmp/s.state")" = "geometry 6 32" ] &&
   [ "$n_lines" -gt 0 ] && [ "$n_lines" -le 48 ] && [ "$n_bad" -eq 0 ] &&
   [ "$(sed 1,2d "$tmp/s.state" | sort -u | wc -l)" -eq "$n_lines" ] && cmp -s "$tmp/out" "$tmp/resident.out"; then
    pass offload_state_saved
else fail offload_state_saved "rc $rc, $n_lines expert lines, $n_bad bad: $(head -3 "$tmp/s.state" 2>&1) $(cat "$tmp/err")"; fi
run $INFER --offload "$tmp/t.pack" $IO --capacity 8 --load-state "$tmp/s.state" --save-state "$tmp/w.state" --trace-out "$tmp/w.moetrace"
counts warm
if [ $rc -eq 0 ] && cmp -s "$tmp/out" "$tmp/resident.out" && [ "$warm_hits" != none ] && [ "$cold_hits" != none ] &&
   [ "$warm_acc" = "$cold_acc" ] && [ "$warm_hits" -gt "$cold_hits" ]; then pass offload_state_warm_start
else fail offload_state_warm_start "rc $rc, cold $cold_hits hits of $cold_acc, warm $warm_hits of $warm_acc: $(cat "$tmp/err")"; fi
# the simulator with the same state, where `moesim run` takes --load-state and
# --save-state: the same hits, and the same saved state, line for line (the
# same resident experts in the same least-recently-used order)
if "$MOESIM" run --help | grep -q -- "--load-state" && "$MOESIM" run --help | grep -q -- "--save-state"; then
    run "$MOESIM" run --trace "$tmp/c.moetrace" --capacity 8 --save-state "$tmp/c_sim.state" --json
    if [ $rc -eq 0 ] && [ "$(jnum "$tmp/out" hits)" = "$cold_hits" ] && cmp -s "$tmp/c_sim.state" "$tmp/s.state"; then pass offload_state_run_saves_same
    else fail offload_state_run_saves_same "measured $cold_hits hits, replay $(jnum "$tmp/out" hits); $(cmp "$tmp/c_sim.state" "$tmp/s.state" 2>&1) (rc $rc $(cat "$tmp/err"))"; fi
    run "$MOESIM" run --trace "$tmp/w.moetrace" --capacity 8 --load-state "$tmp/s.state" --save-state "$tmp/w_sim.state" --json
    if [ $rc -eq 0 ] && [ "$(jnum "$tmp/out" hits)" = "$warm_hits" ] && cmp -s "$tmp/w_sim.state" "$tmp/w.state"; then pass offload_state_run_replay
    else fail offload_state_run_replay "measured $warm_hits hits, replay $(jnum "$tmp/out" hits); $(cmp "$tmp/w_sim.state" "$tmp/w.state" 2>&1) (rc $rc $(cat "$tmp/err"))"; fi
else echo "SKIP offload_state_run_replay: moesim run has no --load-state/--save-state"; fi
# state errors name the file and the line
printf '# moesim cache state v1\ngeometry 2 8\n0 1\n' >"$tmp/geo.state"
run $INFER --offload "$tmp/t.pack" $IO --capacity 8 --load-state "$tmp/geo.state" --trace-out "$tmp/x.moetrace"
if [ $rc -eq 1 ] && has err "$tmp/geo.state:2: state of 2 layers x 8 experts, the model has 6 x 32" && [ ! -e "$tmp/x.moetrace" ]; then
    pass offload_state_bad_geometry
else fail offload_state_bad_geometry "rc $rc: $(cat "$tmp/err")"; fi
: >"$tmp/afile"
run $INFER --offload "$tmp/t.pack" $IO --capacity 8 --save-state "$tmp/afile/s.state" --trace-out "$tmp/x.moetrace"
if [ $rc -eq 1 ] && has err "$tmp/afile/s.state" && [ ! -e "$tmp/x.moetrace" ]; then pass offload_state_unwritable
else fail offload_state_unwritable "rc $rc, trace left: $(ls "$tmp/x.moetrace" 2>&1): $(cat "$tmp/err")"; fi

# ---- bad input: non-zero, the file or option named, no trace written ----------------------------
bad() { # NAME OPTIONS... -- NEEDLE...
    name=$1; shift
    opts=""
    while [ "$1" != "--" ]; do opts="$opts $1"; shift; done
    shift
    rm -f "$tmp/x.moetrace"
    run $INFER $IO $opts --trace-out "$tmp/x.moetrace"
    if [ $rc -eq 0 ] || [ $rc -ge 128 ]; then fail "$name" "exit $rc: $(head -3 "$tmp/err")"; return; fi
    if [ -e "$tmp/x.moetrace" ]; then fail "$name" "the trace was written"; return; fi
    for n in "$@"; do
        if ! has err "$n"; then fail "$name" "message lacks '$n': $(cat "$tmp/err")"; return; fi
    done
    pass "$name"
}
bad offload_err_missing_pack --offload $tmp/none.pack --capacity 4 -- "$tmp/none.pack: cannot open"
head -c 100000 "$tmp/t.pack" >"$tmp/short.pack"
bad offload_err_truncated_pack --offload $tmp/short.pack --capacity 4 -- "$tmp/short.pack: truncated"
# one byte changed in the block of an expert the run reads: the last one of the
# saved state (resident at the end, so read on demand)
cl=2 ce=17
if tail -1 "$tmp/s.state" 2>/dev/null | grep -q '^[0-5] [0-9][0-9]*$'; then set -- $(tail -1 "$tmp/s.state"); cl=$1 ce=$2; fi
cp "$tmp/t.pack" "$tmp/bad.pack"
off=$((12288 + (cl * 32 + ce) * eb + 5000))
b=$(od -An -tu1 -j $off -N1 "$tmp/bad.pack" | tr -d ' ')
printf "\\$(printf %03o $(((b + 1) % 256)))" | dd of="$tmp/bad.pack" bs=1 seek=$off conv=notrunc 2>/dev/null
bad offload_err_corrupt_block --offload $tmp/bad.pack --capacity 4 -- "$tmp/bad.pack: layer $cl expert $ce: checksum"
bad offload_err_corrupt_block_prefetch --offload $tmp/bad.pack --capacity 4 --prefetch gate:ahead=1 -- "$tmp/bad.pack: layer $cl expert $ce: checksum"
run "$MOESIM" model pack tests/golden/qwen3_moe -o "$tmp/q.pack"
bad offload_err_other_model --offload $tmp/q.pack --capacity 4 -- "$tmp/q.pack: pack of another model" "2 in the pack, 6 in tinymix"
bad offload_err_no_capacity --offload $tmp/t.pack -- "--capacity is required with --offload"
bad offload_err_prefetch_oracle --offload $tmp/t.pack --capacity 4 --prefetch oracle -- "oracle" "live hidden state"
bad offload_err_policy_belady --offload $tmp/t.pack --capacity 4 --policy belady -- "belady needs the future"
bad offload_err_policy_pin_self --offload $tmp/t.pack --capacity 4 --policy pin -- "profile=self" "oracle"
bad offload_err_io_mode --offload $tmp/t.pack --capacity 4 --io nosuch -- "unknown I/O mode 'nosuch'"
bad offload_err_load_state_missing --offload $tmp/t.pack --capacity 4 --load-state $tmp/none.state -- "$tmp/none.state"
# an offloaded step holds at most 32 tokens: a larger chunk is refused, not cut down
bad offload_err_prefill_chunk --offload $tmp/t.pack --capacity 4 --prefill-chunk 64 -- "--prefill-chunk" "32"

# ---- calibrate ----------------------------------------------------------------------------
mkdir "$tmp/cal"
CAL="$MOESIM calibrate --model $model --dir $tmp/cal --size 0.02 --seconds 0.02 --max-depth 1 -o $tmp/dev.ini $IO"
keys="io_channels io_latency_us io_bandwidth_GBps mem_bandwidth_GBps model threads dense_us dense_us_per_token attn_ns_per_ctx expert_us expert_us_per_token head_us"
# section NAME: the key = value lines of [NAME] in dev.ini
section() { awk -v s="[$1]" '/^\[/ { on = ($0 == s) } on && /=/' "$tmp/dev.ini"; }
check_section() { # NAME: every key, model tinymix, bandwidths > 0, numbers >= 0
    sec=$(section "$1")
    for k in $keys; do
        v=$(echo "$sec" | sed -n "s/^$k *= *//p")
        [ -n "$v" ] || { why="no $k in [$1]"; return 1; }
        case $k in
        model) [ "$v" = tinymix ] || { why="model = $v"; return 1; } ;;
        *bandwidth*) awk -v v="$v" 'BEGIN { exit !(v + 0 > 0) }' || { why="$k = $v"; return 1; } ;;
        *) awk -v v="$v" 'BEGIN { exit !(v ~ /^[0-9.]+$/ && v + 0 >= 0) }' || { why="$k = $v"; return 1; } ;;
        esac
    done
    return 0
}
# a file that already holds a hand-written section and a stale [t1]: the run
# replaces [t1] (one header, measured values) and keeps everything else
cat >"$tmp/dev.ini" <<'EOF'
# written by hand
[keep]
description = kept as written
io_bandwidth_GBps = 2.5

[t1]
description = stale
model = fake
io_bandwidth_GBps = 9
dense_us = 999
EOF
keep_before=$(section keep)
# cal NAME: one calibration; a fit spoilt by a noisy machine (the points are
# short here) is retried once, saying so
cal() {
    run $CAL --name "$1"
    if [ $rc -ne 0 ] && has err "iobench fit:"; then
        echo "info: calibrate --name $1 retried: $(cat "$tmp/err")"
        run $CAL --name "$1"
    fi
}
cal t1
if [ $rc -eq 0 ] && has out "wrote [t1] to $tmp/dev.ini" && check_section t1 && [ -z "$(ls -A "$tmp/cal")" ]; then pass calibrate_writes_section
else fail calibrate_writes_section "rc $rc, ${why:-scratch left: $(ls -A "$tmp/cal")}: $(cat "$tmp/err") $(cat "$tmp/dev.ini" 2>&1)"; fi
if [ $rc -eq 0 ] && [ "$(grep -c '^\[t1\]$' "$tmp/dev.ini")" = 1 ] && [ "$(section keep)" = "$keep_before" ] &&
   [ "$(head -1 "$tmp/dev.ini")" = "# written by hand" ] && ! grep -q 'stale\|= fake\|= 999' "$tmp/dev.ini"; then
    pass calibrate_replaces_section
else fail calibrate_replaces_section "rc $rc: $(cat "$tmp/dev.ini")"; fi
# the idle read of one expert is anchored on the backend's reads of the
# pack: the written latency + block / bandwidth is the per-read time printed
# (one channel here: --max-depth 1); compute is the median of three fits
blk=$(section t1 | sed -n 's/^description = .*reads of \([0-9]*\)-byte blocks.*/\1/p')
anch=$(sed -n 's/.*idle read anchored on the pack: \([0-9.]*\) us per expert.*/\1/p' "$tmp/out")
if [ $rc -eq 0 ] && [ -n "$anch" ] && [ -n "$blk" ] && section t1 | awk -v a="$anch" -v b="$blk" '
       $1 == "io_latency_us" { l = $3 } $1 == "io_bandwidth_GBps" { w = $3 }
       END { t = l + b / (w * 1e3); d = t - a; exit !(w > 0 && (d < 0 ? -d : d) <= 0.06 + 1e-4 * a) }' &&
   has out "the median of 3 passes"; then pass calibrate_anchors_pack_read
else fail calibrate_anchors_pack_read "rc $rc, anchored '$anch', block '$blk': $(cat "$tmp/out") $(section t1)"; fi
t1_before=$(section t1)
cal t2
if [ $rc -eq 0 ] && check_section t2 && [ "$(section t1)" = "$t1_before" ] && [ "$(section keep)" = "$keep_before" ] &&
   [ "$(grep -c '^\[' "$tmp/dev.ini")" = 3 ]; then pass calibrate_adds_section
else fail calibrate_adds_section "rc $rc, $why: $(cat "$tmp/err") $(cat "$tmp/dev.ini")"; fi
run $CAL --name t3 --dir /nonexistent -o "$tmp/dev3.ini"
if [ $rc -ne 0 ] && [ $rc -lt 128 ] && has err "/nonexistent" && [ ! -e "$tmp/dev3.ini" ]; then pass calibrate_bad_dir
else fail calibrate_bad_dir "rc $rc: $(cat "$tmp/err")"; fi

# ---- validate ------------------------------------------------------------------------------
# a hand-made profile (fixed terms: the predicted times do not matter here, the counts do)
cat >"$tmp/hand.ini" <<'EOF'
[hand]
model = tinymix
threads = 2
io_channels = 1
io_latency_us = 100
io_bandwidth_GBps = 1.0
mem_bandwidth_GBps = 20
dense_us = 20
dense_us_per_token = 10
attn_ns_per_ctx = 100
expert_us = 10
expert_us_per_token = 10
head_us = 10

[other]
model = qwen3_moe
io_bandwidth_GBps = 1.0
dense_us = 20
dense_us_per_token = 10
expert_us = 10
expert_us_per_token = 10
head_us = 10

[roofline]
io_bandwidth_GBps = 1.0
peak_tflops = 1
EOF
VAL="$MOESIM validate --model $model --prompt-file $tmp/p.txt --max-tokens 16 --threads 2 --offload $tmp/t.pack $IO"
error_keys="hits misses bypasses bytes_read bytes_demand bytes_prefetch prefetch_issued tok_s ttft_mean_s tpot_mean_s tpot_p50_s tpot_p99_s total_s compute_s dense_s expert_s stall_s stall_miss_s stall_late_prefetch_s io_utilisation"
check_validate() { # NAME: $tmp/out is validate --json of a run that must be exact
    why=""
    for k in hits misses bypasses bytes_read bytes_demand; do
        a=$(jget "$tmp/out" measured $k) b=$(jget "$tmp/out" predicted $k)
        [ -n "$a" ] && [ "$a" = "$b" ] || why="$why measured.$k $a predicted.$k $b;"
    done
    for k in $error_keys; do
        [ -n "$(jget "$tmp/out" error $k)" ] || why="$why no error.$k;"
    done
    # a figure absent on both sides (no prefetcher) has no relative error
    if ! grep -q '"prefetch_issued":[0-9]' "$tmp/out"; then
        [ "$(jget "$tmp/out" error prefetch_issued)" = null ] || why="$why error.prefetch_issued not null;"
    fi
    has out '"exact":true' || why="$why not exact;"
    # every miss is one demand read of one expert
    m=$(jget "$tmp/out" measured misses)
    case $m in ''|*[!0-9]*) why="$why no measured.misses;" ;;
    *) [ "$(jget "$tmp/out" measured bytes_demand)" = "$((m * eb))" ] || why="$why bytes_demand != misses x $eb;" ;;
    esac
    if [ $rc -eq 0 ] && [ -z "$why" ]; then pass "$1"; else fail "$1" "rc $rc:$why $(cat "$tmp/err") $(head -c 400 "$tmp/out")"; fi
}
run $VAL --capacity 8 --devices "$tmp/dev.ini" --device t1 --json
check_validate validate_calibrated_exact
run $VAL --capacity 8 --devices "$tmp/hand.ini" --device hand --json --db "$tmp/v.db"
check_validate validate_exact
vid=$(sed -n 's/^{"validation":"\([^"]*\)".*/\1/p' "$tmp/out")
if command -v sqlite3 >/dev/null 2>&1; then
    kinds=$(sqlite3 "$tmp/v.db" "select value from run_config where key='kind' order by value" 2>&1 | tr '\n' ' ')
    vids=$(sqlite3 "$tmp/v.db" "select distinct value from run_config where key='validation'" 2>&1 | tr '\n' ' ')
    n_runs=$(sqlite3 "$tmp/v.db" "select count(*) from runs" 2>&1)
    if [ "$kinds" = "measured predicted " ] && [ -n "$vid" ] && [ "$vids" = "$vid " ] && [ "$n_runs" = 2 ]; then pass validate_db_linked
    else fail validate_db_linked "kinds '$kinds', validations '$vids' (json '$vid'), $n_runs runs"; fi
else echo "SKIP validate_db_linked: sqlite3 not found"; fi
# with the gate prefetcher: the simulator replays the backend's predictions exactly
mkdir "$tmp/td"
run env TMPDIR="$tmp/td" $VAL --capacity 4 --devices "$tmp/hand.ini" --device hand --json --prefetch gate:ahead=1
check_validate validate_prefetch_exact
a=$(jget "$tmp/out" measured prefetch_issued) b=$(jget "$tmp/out" predicted prefetch_issued)
if [ $rc -eq 0 ] && [ -n "$a" ] && [ "$a" = "$b" ] && [ "$a" -gt 0 ] && [ "$(jget "$tmp/out" measured bytes_prefetch)" -gt 0 ] &&
   [ -n "$(jget "$tmp/out" predicted_online hits)" ] && [ -z "$(ls -A "$tmp/td")" ]; then pass validate_prefetch_issued
else fail validate_prefetch_issued "rc $rc, issued $a vs $b, left in TMPDIR: $(ls -A "$tmp/td")"; fi
# a saved state, also larger than the cache, in both scopes
for a in "8" "2" "30 --scope global"; do
    set -- $a
    run $VAL --capacity $a --devices "$tmp/hand.ini" --device hand --json --load-state "$tmp/s.state"
    check_validate "validate_state_exact_$1${2:+_global}"
done
# --on-miss: a missing expert is dropped or replaced, nothing is read on demand;
# the replay serves the same experts (skipped and substituted slots exact too).
# The prefetcher and a saved state fill the caches (nothing else would).
for mode in skip substitute; do
    for sc in "8" "30 --scope global"; do
        run $VAL --capacity $sc --devices "$tmp/hand.ini" --device hand --json --load-state "$tmp/s.state" \
            --prefetch gate:ahead=1 --on-miss $mode
        check_validate "validate_on_miss_${mode}_$(echo $sc | tr -d ' -')"
        sm=$(jget "$tmp/out" measured skipped_slots) sp=$(jget "$tmp/out" predicted skipped_slots)
        bm=$(jget "$tmp/out" measured bytes_demand)
        um=$(jget "$tmp/out" measured substituted_slots) up=$(jget "$tmp/out" predicted substituted_slots)
        # substitutes only in substitute mode (skip: no such figure); the counts equal
        if [ "$mode" = skip ]; then subs_ok=$([ -z "$um$up" ] && echo 1); else subs_ok=$([ "$um" = "$up" ] && [ "$um" -gt 0 ] && echo 1); fi
        if [ -n "$sm" ] && [ "$sm" != null ] && [ "$sm" -gt 0 ] && [ "$sm" = "$sp" ] && [ "$bm" = 0 ] && [ "$subs_ok" = 1 ]; then
            pass "validate_on_miss_${mode}_counts_$(echo $sc | tr -d ' -')"
        else fail "validate_on_miss_${mode}_counts_$(echo $sc | tr -d ' -')" "skipped $sm vs $sp, substituted $um vs $up, demand bytes $bm"; fi
    done
done
# --skip (adaptive top-k, skip-on-miss): the replay drops the same slots
for sk in cum=0.5 topk_frac=0.3; do
    run $VAL --capacity 8 --devices "$tmp/hand.ini" --device hand --json --skip $sk
    check_validate "validate_skip_${sk%%=*}"
    sm=$(jget "$tmp/out" measured skipped_slots) sp=$(jget "$tmp/out" predicted skipped_slots)
    if [ -n "$sm" ] && [ "$sm" != null ] && [ "$sm" -gt 0 ] && [ "$sm" = "$sp" ]; then pass "validate_skip_${sk%%=*}_slots"
    else fail "validate_skip_${sk%%=*}_slots" "skipped $sm vs $sp"; fi
done
run $VAL --capacity 8 --devices "$tmp/hand.ini" --device hand --skip cum=0.5 --on-miss skip
if [ $rc -eq 1 ] && has err "--skip cannot be combined with --on-miss skip"; then pass validate_skip_on_miss_conflict
else fail validate_skip_on_miss_conflict "rc $rc: $(cat "$tmp/err")"; fi
# a 4-bit pack: every miss reads one 31488-byte block, priced so by the replay
run "$MOESIM" model pack $model -o "$tmp/q4.pack" --dtype q4
run $MOESIM validate --model $model --prompt-file $tmp/p.txt --max-tokens 16 --threads 2 --offload "$tmp/q4.pack" $IO \
    --capacity 8 --devices "$tmp/hand.ini" --device hand --json
m=$(jget "$tmp/out" measured misses) bm=$(jget "$tmp/out" measured bytes_demand) bp=$(jget "$tmp/out" predicted bytes_demand)
if [ $rc -eq 0 ] && has out '"exact":true' && [ -n "$m" ] && [ "$bm" = "$((m * 31488))" ] && [ "$bm" = "$bp" ]; then
    pass validate_q4_pack_exact
else fail validate_q4_pack_exact "rc $rc: misses $m, demand bytes $bm vs $bp: $(cat "$tmp/err")"; fi
# several packs and a static plan: each expert read from the pack of its
# tier (hot-cold: 8 hot per layer at 4 bits, the rest at 2), priced so by
# the replay; a plan the packs cannot serve, or packs without a plan, refused
run "$MOESIM" model pack $model -o "$tmp/q2.pack" --dtype q2
HC="hot-cold:hot=8,hot_bits=4,cold_bits=2,profile=traces/tinymix_c.moetrace"
run $MOESIM validate --model $model --prompt-file $tmp/p.txt --max-tokens 16 --threads 2 --offload "$tmp/q4.pack,$tmp/q2.pack" \
    $IO --capacity 8 --devices "$tmp/hand.ini" --device hand --precision "$HC" --json
bm=$(jget "$tmp/out" measured bytes_demand) bp=$(jget "$tmp/out" predicted bytes_demand) m=$(jget "$tmp/out" measured misses)
if [ $rc -eq 0 ] && has out '"exact":true' && [ -n "$bm" ] && [ "$bm" = "$bp" ] && [ "$bm" -gt "$((m * 17664))" ] &&
   [ "$bm" -lt "$((m * 31488))" ]; then pass validate_two_packs_plan_exact
else fail validate_two_packs_plan_exact "rc $rc: demand bytes $bm vs $bp, misses $m: $(cat "$tmp/err")"; fi
run $MOESIM validate --model $model --prompt-file $tmp/p.txt --max-tokens 4 --offload "$tmp/q4.pack" $IO --capacity 8 \
    --devices "$tmp/hand.ini" --device hand --precision "$HC"
if [ $rc -eq 1 ] && has err "at 2 bits; the packs hold q4"; then pass offload_plan_needs_its_packs
else fail offload_plan_needs_its_packs "rc $rc: $(cat "$tmp/err")"; fi
run $MOESIM validate --model $model --prompt-file $tmp/p.txt --max-tokens 4 --offload "$tmp/q4.pack,$tmp/q2.pack" $IO \
    --capacity 8 --devices "$tmp/hand.ini" --device hand
if [ $rc -eq 1 ] && has err "2 packs: --precision says which expert is read from which"; then pass offload_packs_need_a_plan
else fail offload_packs_need_a_plan "rc $rc: $(cat "$tmp/err")"; fi
# HOBBIT offloaded: a miss is read from the pack of the highest tier its
# tokens need (16-bit or 4-bit), slots past lo dropped; the replay reads the
# same tiers: bytes exact, and between all-4-bit and all-16-bit reads
for sc in "8" "30 --scope global"; do
    run $VAL --capacity $sc --devices "$tmp/hand.ini" --device hand --json --offload "$tmp/t.pack,$tmp/q4.pack" \
        --precision hobbit:hi=0.6,lo=0.9
    bm=$(jget "$tmp/out" measured bytes_demand) bp=$(jget "$tmp/out" predicted bytes_demand) m=$(jget "$tmp/out" measured misses)
    sm=$(jget "$tmp/out" measured skipped_slots) sp=$(jget "$tmp/out" predicted skipped_slots)
    if [ $rc -eq 0 ] && has out '"exact":true' && [ -n "$bm" ] && [ "$bm" = "$bp" ] && [ "$bm" -gt "$((m * 31488))" ] &&
       [ "$bm" -lt "$((m * eb))" ] && [ -n "$sm" ] && [ "$sm" -gt 0 ] && [ "$sm" = "$sp" ]; then
        pass "validate_hobbit_tiers_$(echo $sc | tr -d ' -')"
    else fail "validate_hobbit_tiers_$(echo $sc | tr -d ' -')" "rc $rc: demand bytes $bm vs $bp, misses $m, skipped $sm vs $sp"; fi
done
run $INFER --offload "$tmp/t.pack" $IO --capacity 8 --precision hobbit:hi=0.6,lo=0.9
if [ $rc -ne 0 ] && has err "wants its low copies at 4 bits; no pack given to --offload holds them" && [ ! -s "$tmp/out" ]; then
    pass offload_hobbit_needs_low_pack
else fail offload_hobbit_needs_low_pack "rc $rc: $(cat "$tmp/err")"; fi
# --on-miss lowbit: a miss runs the expert's 2-bit copy, held in memory from
# the start; nothing is read on demand and the replay (lowbit:bits=2, from
# the pack) serves the same slots from low copies, in both scopes
for sc in "8" "30 --scope global"; do
    run $VAL --capacity $sc --devices "$tmp/hand.ini" --device hand --json --load-state "$tmp/s.state" \
        --prefetch gate:ahead=1 --on-miss lowbit --offload "$tmp/t.pack,$tmp/q2.pack"
    check_validate "validate_on_miss_lowbit_$(echo $sc | tr -d ' -')"
    lm=$(jget "$tmp/out" measured lowbit_slots) lp=$(jget "$tmp/out" predicted lowbit_slots)
    am=$(jget "$tmp/out" measured lowbit_activations) ap=$(jget "$tmp/out" predicted lowbit_activations)
    if [ -n "$lm" ] && [ "$lm" -gt 0 ] && [ "$lm" = "$lp" ] && [ "$am" = "$ap" ] && [ "$am" -gt 0 ] &&
       [ "$am" -le "$lm" ] && [ "$(jget "$tmp/out" measured bytes_demand)" = 0 ] &&
       [ -z "$(jget "$tmp/out" measured skipped_slots)" ]; then pass "validate_on_miss_lowbit_counts_$(echo $sc | tr -d ' -')"
    else fail "validate_on_miss_lowbit_counts_$(echo $sc | tr -d ' -')" "low slots $lm vs $lp, runs $am vs $ap"; fi
done
# with nothing resident every token slot runs its low copy: 24 tokens' slots
# over 6 layers x top-4, and no expert is accessed
run $INFER --offload "$tmp/t.pack,$tmp/q2.pack" $IO --capacity 8 --on-miss lowbit
counts lb
if [ $rc -eq 0 ] && [ "$lb_acc" = 0 ] && [ "$lb_mib" = 0.0 ] &&
   grep -q "^moesim infer: --on-miss lowbit: [0-9]* slots ran 2-bit copies held in memory (3.8 MiB" "$tmp/err"; then
    pass offload_lowbit_nothing_read
else fail offload_lowbit_nothing_read "rc $rc, accesses $lb_acc, read $lb_mib: $(cat "$tmp/err")"; fi
# a run without a low copy, or without a pack to read, is refused before any work
i=0
for case in "$tmp/t.pack|lowbit|none of the packs given to --offload is quantized" \
            "$tmp/t.pack,$tmp/q2.pack|lowbit:bits=4|none of the packs given to --offload holds 4-bit experts" \
            "$tmp/q2.pack|lowbit|is the low-precision copy; give the pack a miss would read too" \
            "$tmp/q2.pack,$tmp/q4.pack|lowbit:bits=4|the low copy ($tmp/q4.pack, q4) has no fewer bits than the pack read ($tmp/q2.pack, q2)"; do
    packs=${case%%|*} rest=${case#*|}; mode=${rest%%|*} needle=${rest#*|}
    i=$((i + 1))
    run $INFER --offload "$packs" $IO --capacity 8 --on-miss "$mode"
    if [ $rc -ne 0 ] && has err "$needle" && [ ! -s "$tmp/out" ]; then pass "offload_lowbit_refused_$i"
    else fail "offload_lowbit_refused_$i" "rc $rc: $(cat "$tmp/err")"; fi
done
# the simulator needs the low copy's bits (it prices their compute)
run "$MOESIM" run --trace traces/tinymix_c.moetrace --capacity 8 --on-miss lowbit
if [ $rc -eq 2 ] || [ $rc -eq 1 ] && has err "--on-miss lowbit: give the low copy's precision, lowbit:bits=B"; then
    pass replay_lowbit_needs_bits
else fail replay_lowbit_needs_bits "rc $rc: $(cat "$tmp/err")"; fi
# a small grid: one row per configuration, every count exact
cat >"$tmp/grid.ini" <<EOF
[validate]
model = $model
prompt_files = $tmp/p.txt
prompt_bytes = 100
max_tokens = 8
policies = lru lfu
capacities = 4
prefetch = none gate:ahead=1
EOF
run $MOESIM validate --grid "$tmp/grid.ini" --devices "$tmp/hand.ini" --device hand --threads 2 --offload "$tmp/t.pack" $IO
if [ $rc -eq 0 ] && [ "$(grep -c '^l[rf]u  *per-layer  *4 .* exact$' "$tmp/out")" = 4 ] &&
   has out "hit and byte counts exact in every configuration" && has out "mean Kendall tau"; then pass validate_grid_exact
else fail validate_grid_exact "rc $rc: $(cat "$tmp/out" "$tmp/err")"; fi
# a bad stream_dense in a grid: named with the file and the section, nothing run
sed 's/^capacities = 4$/capacities = 4\nstream_dense = lots/' "$tmp/grid.ini" >"$tmp/grid_bad.ini"
run $MOESIM validate --grid "$tmp/grid_bad.ini" --devices "$tmp/hand.ini" --device hand --threads 2 --offload "$tmp/t.pack" $IO
if [ $rc -ne 0 ] && [ $rc -lt 128 ] && has err "$tmp/grid_bad.ini: [validate] stream_dense" && ! grep -q exact "$tmp/out"; then
    pass validate_grid_bad_stream_dense
else fail validate_grid_bad_stream_dense "rc $rc: $(cat "$tmp/err")"; fi
# --recalibrate in a grid: the machine measured again before each row; the
# row is priced with the profile's read terms scaled by the printed factor
# (checked against what the database stored: latency x k, bandwidth / k),
# the profile file is left as it was, no temporary profile is left behind;
# with repeats, the run-to-run spread and the host's steal are reported
cp "$tmp/hand.ini" "$tmp/hand_before.ini"
mkdir -p "$tmp/td_recal"
sed 's/^capacities = 4$/capacities = 4\nrecalibrate = io\nrepeat = 2/; s/^prefetch = .*/prefetch = none/' "$tmp/grid.ini" >"$tmp/grid_recal.ini"
run env TMPDIR="$tmp/td_recal" $MOESIM validate --grid "$tmp/grid_recal.ini" --devices "$tmp/hand.ini" --device hand \
    --threads 2 --offload "$tmp/t.pack" $IO --db "$tmp/recal.db"
k=$(awk '$1 == "lru" && $3 == 4 { print $(NF-4); exit }' "$tmp/out")
cpu=$(awk '$1 == "lru" && $3 == 4 { print $(NF-3); exit }' "$tmp/out")
spread=$(awk '$1 == "lru" && $3 == 4 { print $(NF-1); exit }' "$tmp/out")
why=""
if command -v sqlite3 >/dev/null 2>&1; then
    q="select c.value from run_config c join run_config p on p.run_id = c.run_id and p.key = 'policy' and p.value like 'lru%'
       join run_config k on k.run_id = c.run_id and k.key = 'kind' and k.value = 'predicted' where c.key ="
    kdb=$(sqlite3 "$tmp/recal.db" "$q 'recal_read'")
    dev=$(sqlite3 "$tmp/recal.db" "select config_text from runs r join run_config p on p.run_id = r.id and p.key = 'policy'
        and p.value like 'lru%' join run_config k on k.run_id = r.id and k.key = 'kind' and k.value = 'predicted'" |
        sed -n 's/^device=//p')
    why=$(awk -v k="$kdb" -v p="$k" -v dev="$dev" 'BEGIN {
        n = split(dev, kv, /[:,]/)
        for (i = 1; i <= n; i++) { split(kv[i], a, "="); v[a[1]] = a[2] }
        if (!(k > 0)) { print "no recal_read stored"; exit }
        if (sprintf("%.2f", k) != p) { print "printed " p " stored " k; exit }
        if ((v["io_latency_us"] - 100 * k) ^ 2 > (1e-3 * 100 * k) ^ 2) { print "latency " v["io_latency_us"] " not 100 x " k; exit }
        if ((v["io_bandwidth_GBps"] * k - 1) ^ 2 > 1e-6) { print "bandwidth " v["io_bandwidth_GBps"] " not 1 / " k; exit }
    }')
fi
if [ $rc -eq 0 ] && [ -z "$why" ] && [ "$cpu" = "-" ] && echo "$spread" | grep -q '^[0-9]*%$' &&
   cmp -s "$tmp/hand.ini" "$tmp/hand_before.ini" && [ -z "$(ls -A "$tmp/td_recal")" ] &&
   has out "run-to-run spread (the repeats' slowest over fastest, less 1): median" &&
   has out "host steal during the kept runs: median"; then pass validate_grid_recalibrate_io
else fail validate_grid_recalibrate_io "rc $rc, factor '$k' cpu '$cpu' spread '$spread', $why, left: $(ls -A "$tmp/td_recal"): $(cat "$tmp/out" "$tmp/err")"; fi
# --recalibrate=all on one run: both factors in the JSON, and the steal
run $VAL --capacity 8 --devices "$tmp/hand.ini" --device hand --json --recalibrate=all
rd=$(sed -n 's/.*"recalibrated":{"read":\([0-9.e+-]*\),"cpu":\([0-9.e+-]*\)}.*/\1 \2/p' "$tmp/out")
st=$(sed -n 's/.*"steal":\([0-9.e+-]*\).*/\1/p' "$tmp/out")
if [ $rc -eq 0 ] && awk -v r="$rd" -v s="$st" 'BEGIN { split(r, a, " "); exit !(a[1] > 0 && a[2] > 0 && s >= 0 && s <= 1) }'; then
    pass validate_recalibrate_all_json
else fail validate_recalibrate_all_json "rc $rc, factors '$rd' steal '$st': $(cat "$tmp/out" "$tmp/err")"; fi
# --recalibrate=all where calibrate's passes would take minutes (forced here
# on tinymix): a short pass scales every compute term of the profile by one
# factor, the JSON's cpu factor, as the stored predicted run's device shows
run env MOESIM_RECAL_SCALE=1 $VAL --capacity 8 --devices "$tmp/hand.ini" --device hand --json --recalibrate=all \
    --db "$tmp/scale.db"
kc=$(sed -n 's/.*"recalibrated":{"read":[0-9.e+-]*,"cpu":\([0-9.e+-]*\)}.*/\1/p' "$tmp/out")
why="sqlite3 missing"
if command -v sqlite3 >/dev/null 2>&1; then
    dev=$(sqlite3 "$tmp/scale.db" "select config_text from runs r join run_config k on k.run_id = r.id and k.key = 'kind'
        and k.value = 'predicted'" | sed -n 's/^device=//p')
    why=$(awk -v k="$kc" -v dev="$dev" 'BEGIN {
        n = split(dev, kv, /[:,]/)
        for (i = 1; i <= n; i++) { split(kv[i], a, "="); v[a[1]] = a[2] }
        if (!(k > 0)) { print "no cpu factor"; exit }
        split("dense_us=20 dense_us_per_token=10 attn_ns_per_ctx=100 expert_us=10 expert_us_per_token=10 head_us=10", t, " ")
        for (i = 1; i <= 6; i++) {
            split(t[i], a, "=")
            if ((v[a[1]] - a[2] * k) ^ 2 > (1e-3 * a[2] * k) ^ 2) { print a[1] " " v[a[1]] " not " a[2] " x " k; exit }
        }
    }')
fi
if [ $rc -eq 0 ] && [ -z "$why" ]; then pass validate_recalibrate_scaled_compute
else fail validate_recalibrate_scaled_compute "rc $rc, cpu '$kc': $why: $(cat "$tmp/out" "$tmp/err")"; fi
# a bad recalibrate value: named with the file and the section, nothing run
# passes: the whole grid twice, the second pass starting half way round (lfu
# first); each (row, pass) is a validation of its own in the database, and
# the table's tok/s, measured and predicted, is the median (of two: the mean)
# of the row's stored runs
sed 's/^capacities = 4$/capacities = 4\npasses = 2/; s/^prefetch = .*/prefetch = none/' "$tmp/grid.ini" >"$tmp/grid_passes.ini"
run $MOESIM validate --grid "$tmp/grid_passes.ini" --devices "$tmp/hand.ini" --device hand --threads 2 \
    --offload "$tmp/t.pack" $IO --db "$tmp/passes.db"
why="sqlite3 missing"
if command -v sqlite3 >/dev/null 2>&1; then
    q="select k.value, p.value, pol.value, m.value from runs r
       join run_config k on k.run_id = r.id and k.key = 'kind'
       join run_config p on p.run_id = r.id and p.key = 'pass'
       join run_config pol on pol.run_id = r.id and pol.key = 'policy'
       join metrics m on m.run_id = r.id and m.name = 'tok_s' order by r.id"
    why=$(sqlite3 -separator ' ' "$tmp/passes.db" "$q" | awk -v out="$tmp/out" '
        { n++; kind[n] = $1; pass[n] = $2; pol[n] = substr($3, 1, 3); sum[$1, substr($3, 1, 3)] += $4; runs[$1, substr($3, 1, 3)]++ }
        END {
            if (n != 8) { print n " runs stored, not 8"; exit }
            # pass 2 starts with the second row: its first run is lfu
            for (i = 1; i <= n; i++) if (pass[i] == 2) { if (pol[i] != "lfu") print "pass 2 began with " pol[i]; break }
            while ((getline line < out) > 0) {
                split(line, f, " ")
                if (f[1] != "lru" && f[1] != "lfu") continue
                p = substr(f[1], 1, 3)
                if (runs["measured", p] != 2 || runs["predicted", p] != 2) { print p ": not two runs of each kind"; exit }
                m = sprintf("%.1f", sum["measured", p] / 2); q = sprintf("%.1f", sum["predicted", p] / 2)
                if (m != f[5] || q != f[6]) { print p ": table " f[5] " / " f[6] ", stored medians " m " / " q; exit }
                rows++
            }
            if (rows != 2) print rows " rows in the table"
        }')
fi
if [ $rc -eq 0 ] && [ -z "$why" ] && has err "2 configurations x 1 runs x 2 passes" && has err "pass 2/2, 2/2: lru" &&
   has out "run-to-run spread (the passes' slowest over fastest, less 1): median"; then pass validate_grid_passes
else fail validate_grid_passes "rc $rc: $why: $(cat "$tmp/out" "$tmp/err")"; fi
# --passes belongs to a grid; a bad passes key is named with the file
run $VAL --capacity 8 --devices "$tmp/hand.ini" --device hand --passes 2
if [ $rc -eq 2 ] && has err "--passes runs a --grid several times; for one configuration use --repeat" && [ ! -s "$tmp/out" ]; then
    pass validate_passes_needs_grid
else fail validate_passes_needs_grid "rc $rc: $(cat "$tmp/err")"; fi
sed 's/^capacities = 4$/capacities = 4\npasses = 0/' "$tmp/grid.ini" >"$tmp/grid_bad.ini"
run $MOESIM validate --grid "$tmp/grid_bad.ini" --devices "$tmp/hand.ini" --device hand --threads 2 --offload "$tmp/t.pack" $IO
if [ $rc -ne 0 ] && [ $rc -lt 128 ] && has err "$tmp/grid_bad.ini" && has err "passes" && ! grep -q exact "$tmp/out"; then
    pass validate_grid_bad_passes
else fail validate_grid_bad_passes "rc $rc: $(cat "$tmp/err")"; fi
sed 's/^capacities = 4$/capacities = 4\nrecalibrate = sometimes/' "$tmp/grid.ini" >"$tmp/grid_bad.ini"
run $MOESIM validate --grid "$tmp/grid_bad.ini" --devices "$tmp/hand.ini" --device hand --threads 2 --offload "$tmp/t.pack" $IO
if [ $rc -ne 0 ] && [ $rc -lt 128 ] && has err "$tmp/grid_bad.ini: [validate] recalibrate: expected none, io or all, got 'sometimes'" &&
   ! grep -q exact "$tmp/out"; then pass validate_grid_bad_recalibrate
else fail validate_grid_bad_recalibrate "rc $rc: $(cat "$tmp/err")"; fi
run $VAL --capacity 8 --devices "$tmp/hand.ini" --device hand --recalibrate=often
if [ $rc -ne 0 ] && [ $rc -lt 128 ] && has err "--recalibrate: expected none, io or all, got 'often'" && [ ! -s "$tmp/out" ]; then
    pass validate_bad_recalibrate
else fail validate_bad_recalibrate "rc $rc: $(cat "$tmp/err")"; fi
run $VAL --capacity 8 --devices "$tmp/hand.ini" --device other
if [ $rc -eq 1 ] && has err "$tmp/hand.ini: device [other] was calibrated with model qwen3_moe, not tinymix"; then pass validate_other_model_profile
else fail validate_other_model_profile "rc $rc: $(cat "$tmp/err")"; fi
run $VAL --capacity 8 --devices "$tmp/hand.ini" --device roofline
if [ $rc -eq 1 ] && has err "has no measured compute terms" && has err "moesim calibrate"; then pass validate_uncalibrated_profile
else fail validate_uncalibrated_profile "rc $rc: $(cat "$tmp/err")"; fi
run $VAL --capacity 8 --devices "$tmp/none.ini" --device t1
if [ $rc -eq 1 ] && has err "$tmp/none.ini" && has err "moesim calibrate --model $model"; then pass validate_no_devices_file
else fail validate_no_devices_file "rc $rc: $(cat "$tmp/err")"; fi

# ---- ppl offloaded: the resident perplexity, digit for digit ------------------------------------
head -c 300 "$model/golden/heldout_c.txt" >"$tmp/ppl.txt"
run "$MOESIM" ppl --model $model --text-file "$tmp/ppl.txt" --threads 2
cp "$tmp/out" "$tmp/ppl.resident"
ok=1
for opts in "--capacity 2" "--capacity 40 --scope global --prefetch gate" "--capacity 8 --policy lfu --io mmap"; do
    run "$MOESIM" ppl --model $model --text-file "$tmp/ppl.txt" --threads 2 --offload "$tmp/t.pack" $IO $opts
    if [ $rc -ne 0 ] || ! cmp -s "$tmp/out" "$tmp/ppl.resident" || ! has err "moesim ppl: offloaded,"; then
        ok=0
        why="$opts: rc $rc, $(cat "$tmp/out" "$tmp/err")"
    fi
done
if [ $ok -eq 1 ] && has ppl.resident "nats_per_byte"; then pass offload_ppl_equals_resident
else fail offload_ppl_equals_resident "$why"; fi
run "$MOESIM" ppl --model $model --text-file "$tmp/ppl.txt" --threads 2 --offload "$tmp/t.pack" $IO --capacity 4 \
    --steps-out "$tmp/steps.csv"
# 299 predicted bytes in steps of 32: 10 steps; accesses add up to the summary's
acc=$(awk -F, 'NR > 1 { a += $5 } END { print a }' "$tmp/steps.csv" 2>/dev/null)
sum=$(sed -n 's/.*: \([0-9]*\) accesses,.*/\1/p' "$tmp/err")
if [ $rc -eq 0 ] && [ "$(head -1 "$tmp/steps.csv")" = "step,phase,tokens,seconds,accesses,hits" ] &&
   [ "$(wc -l <"$tmp/steps.csv")" -eq 11 ] && [ -n "$acc" ] && [ "$acc" = "$sum" ]; then pass offload_steps_out
else fail offload_steps_out "rc $rc, $acc vs $sum: $(head -3 "$tmp/steps.csv" 2>&1)"; fi
run $VAL --capacity 8 --devices "$tmp/hand.ini" --device hand --steps-out "$tmp/vsteps.csv"
# one row per step (4 prefill steps of the 100-byte prompt: 32+32+32+4; 15 decode), both durations positive
rows=$(awk -F, 'NR > 1 && $4 > 0 && $7 > 0 { n++ } END { print n + 0 }' "$tmp/vsteps.csv" 2>/dev/null)
if [ $rc -eq 0 ] && [ "$(head -1 "$tmp/vsteps.csv")" = "step,phase,tokens,seconds,accesses,hits,predicted_seconds" ] &&
   [ "$rows" -eq 19 ]; then pass validate_steps_out
else fail validate_steps_out "rc $rc, $rows rows: $(head -3 "$tmp/vsteps.csv" 2>&1) $(cat "$tmp/err")"; fi
run "$MOESIM" ppl --model $model --text-file "$tmp/ppl.txt" --capacity 8
if [ $rc -eq 2 ] && has err "--capacity applies to offloaded runs"; then pass offload_ppl_needs_offload
else fail offload_ppl_needs_offload "rc $rc: $(cat "$tmp/err")"; fi

run $INFER --offload "$tmp/t.pack" $IO --capacity 8 --speculate
if [ $rc -eq 1 ] && has err "--speculate is a simulator option"; then pass offload_speculate_refused
else fail offload_speculate_refused "rc $rc: $(cat "$tmp/err")"; fi

# ---- a malformed prefetch log is refused with its line ------------------------------------------
ok=1; why=""
for case in "bad1|# moesim prefetch log v1\n0 0 1 3\n0 0 2 4\n|bad1.log:3: lines must be in increasing (step, layer) order" \
            "bad2|0 1 2 40\n|bad2.log:1: expert 40 out of range or not ascending" \
            "bad3|0 2 1 3\n|bad3.log:1: layer 2 -> target 1 is not a later layer" \
            "bad4|0 0 1 3 x\n|bad4.log:1: unexpected 'x'"; do
    name=${case%%|*}; rest=${case#*|}; body=${rest%%|*}; msg=${rest#*|}
    printf "$body" >"$tmp/$name.log"
    run "$MOESIM" run --trace "$tmp/pf.moetrace" --capacity 4 --prefetch "log:file=$tmp/$name.log"
    if [ $rc -ne 1 ] || ! has err "$msg"; then ok=0; why="$why $name: rc $rc $(cat "$tmp/err");"; fi
done
if [ $ok -eq 1 ]; then pass offload_prefetch_log_errors; else fail offload_prefetch_log_errors "$why"; fi

# ---- help ------------------------------------------------------------------------------------
if "$MOESIM" validate --help >"$tmp/out" && has out "--prompt-file F" && has out "--offload PACK|auto" &&
   "$MOESIM" calibrate --help >"$tmp/out" && has out "--max-depth N" && has out "--seconds S"; then pass offload_help
else fail offload_help "a --help failed or lacks its options"; fi
exit $fails
