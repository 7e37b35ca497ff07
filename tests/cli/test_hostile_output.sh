#!/bin/sh
# test_hostile_output.sh: issue 15 items 4-6. Output that did not reach its
# destination fails the command (/dev/full, a full disk under export -o);
# config.json fields the backend uses are range-checked with the file and
# field named; a UTF-8 BOM never shows in a message (and in libCacheSim CSV
# does not change the first key); JSONL errors carry their line number; a
# CSV id at the uint32 maximum is not reported through a wrapped max + 1.
# Every input is generated here.
MOESIM=${MOESIM:-build/moesim}
dir=$(mktemp -d /tmp/moesim-hostile-XXXXXX)
mnt=
cleanup() {
    [ -n "$mnt" ] && umount "$mnt" 2>/dev/null
    chmod -R u+w "$dir" 2>/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT
pass() { echo "PASS $1"; }
failed=0
fail() { echo "FAIL $1: $2"; failed=1; }
BOM=$(printf '\357\273\277')

# A small trace and a results database with two runs.
{
    echo "step,seq,token,layer,slot,expert,weight"
    s=0
    for e in 0 1 0 2 1 0 3 2; do echo "$s,0,$s,0,0,$e,1"; s=$((s + 1)); done
} >"$dir/t.csv"
T=$dir/t.csv
"$MOESIM" sweep --trace "$T" --policies lru,fifo --capacities 1,2 --db "$dir/r.db" >/dev/null 2>&1 ||
    fail hostile_setup "sweep failed"

# ---- item 4: output complete or the command fails --------------------------
if [ -w /dev/full ]; then
    # full_out NAME CMD...: exit non-zero, message names the command and the write
    full_out() {
        name=$1
        shift
        "$MOESIM" "$@" >/dev/full 2>"$dir/err"
        rc=$?
        if [ $rc -ne 0 ] && grep -q "moesim $1: writing the output: No space left on device" "$dir/err"; then pass "$name"
        else fail "$name" "exit $rc, stderr: $(cat "$dir/err")"; fi
    }
    full_out out_full_run_json run --trace "$T" --capacity 2 --json
    full_out out_full_results_export results export --csv --db "$dir/r.db"
    full_out out_full_trace_info trace info "$T"
    full_out out_full_results_list results list --db "$dir/r.db"
    full_out out_full_version --version
else
    echo "SKIP out_full_*: /dev/full is not writable here"
fi
# the same commands to a file still succeed, with the whole output
"$MOESIM" run --trace "$T" --capacity 2 --json >"$dir/run.json" 2>"$dir/err"
rc=$?
if [ $rc -eq 0 ] && grep -q '}' "$dir/run.json"; then pass out_normal_run_json
else fail out_normal_run_json "exit $rc, stderr: $(cat "$dir/err")"; fi
"$MOESIM" results export --csv --db "$dir/r.db" >"$dir/stdout.csv" 2>"$dir/err"
rc=$?
if [ $rc -eq 0 ] && [ "$(wc -l <"$dir/stdout.csv")" -eq 5 ]; then pass out_normal_export
else fail out_normal_export "exit $rc, $(wc -l <"$dir/stdout.csv") lines, stderr: $(cat "$dir/err")"; fi

# A closed pipe: the exit status is non-zero (SIGPIPE, as coreutils), and no
# "writing the output" message. The output must outgrow the pipe buffer.
"$MOESIM" sweep --trace "$T" --policies lru --capacities 1:1000 --db "$dir/big.db" >/dev/null 2>&1
( "$MOESIM" results export --csv --db "$dir/big.db" 2>"$dir/err"; echo $? >"$dir/pipe_rc" ) | head -c 1 >/dev/null
rc=$(cat "$dir/pipe_rc")
if [ "$rc" -ne 0 ] && [ ! -s "$dir/err" ]; then pass out_closed_pipe
else fail out_closed_pipe "exit $rc, stderr: $(cat "$dir/err")"; fi

# export -o FILE: written whole and atomically (replaces an old file, no
# temporary left behind)
echo OLD >"$dir/out.csv"
"$MOESIM" results export --csv --db "$dir/r.db" -o "$dir/out.csv" 2>"$dir/err"
rc=$?
if [ $rc -eq 0 ] && cmp -s "$dir/out.csv" "$dir/stdout.csv" && [ -z "$(ls "$dir" | grep 'out.csv.tmp')" ]; then
    pass out_export_file
else fail out_export_file "exit $rc, stderr: $(cat "$dir/err")"; fi

# export -o on a full disk: a 64 KiB tmpfs (root only, where mount works)
# holding the old file and filled up; the old file must survive intact.
if [ "$(id -u)" = 0 ] && mkdir "$dir/mnt" && mount -t tmpfs -o size=64k tmpfs "$dir/mnt" 2>/dev/null; then
    mnt=$dir/mnt
    echo "OLD CONTENT" >"$mnt/out.csv"
    dd if=/dev/zero of="$mnt/fill" bs=4k 2>/dev/null
    "$MOESIM" results export --csv --db "$dir/r.db" -o "$mnt/out.csv" 2>"$dir/err"
    rc=$?
    if [ $rc -ne 0 ] && [ "$(cat "$mnt/out.csv")" = "OLD CONTENT" ] && grep -q "$mnt/out.csv" "$dir/err" &&
        [ "$(ls "$mnt")" = "$(printf 'fill\nout.csv')" ]; then pass out_export_full_disk
    else fail out_export_full_disk "exit $rc, files: $(ls "$mnt" | tr '\n' ' '), stderr: $(cat "$dir/err")"; fi
    umount "$mnt" && mnt=
elif [ "$(id -u)" != 0 ]; then
    # not root: an unwritable directory stands in for the full disk
    mkdir "$dir/ro" && echo "OLD CONTENT" >"$dir/ro/out.csv" && chmod 555 "$dir/ro"
    "$MOESIM" results export --csv --db "$dir/r.db" -o "$dir/ro/out.csv" 2>"$dir/err"
    rc=$?
    if [ $rc -ne 0 ] && [ "$(cat "$dir/ro/out.csv")" = "OLD CONTENT" ] && grep -q "$dir/ro/out.csv" "$dir/err"; then
        pass out_export_readonly_dir
    else fail out_export_readonly_dir "exit $rc, stderr: $(cat "$dir/err")"; fi
else
    echo "SKIP out_export_full_disk: root, but mounting a tmpfs is not allowed here"
fi
# export -o /dev/full (not a regular file: written in place, every write checked)
if [ -w /dev/full ]; then
    "$MOESIM" results export --csv --db "$dir/r.db" -o /dev/full 2>"$dir/err"
    rc=$?
    if [ $rc -eq 1 ] && grep -q "/dev/full: cannot write" "$dir/err"; then pass out_export_o_dev_full
    else fail out_export_o_dev_full "exit $rc, stderr: $(cat "$dir/err")"; fi
fi

# ---- item 5: config.json range checks ---------------------------------------
if command -v python3 >/dev/null 2>&1 && python3 tests/tools/make_tiny_model.py "$dir/good" >/dev/null 2>&1; then
    printf 'hello world, hello world\n' >"$dir/text.txt"
    # cfg NAME PYTHON-EDIT PATTERN...: ppl exits 1 naming config.json and every pattern; no nan
    cfg() {
        name=$1 edit=$2
        shift 2
        rm -rf "$dir/m"
        cp -r "$dir/good" "$dir/m"
        python3 -c "import json; p='$dir/m/config.json'; c=json.load(open(p)); $edit; json.dump(c, open(p, 'w'))"
        "$MOESIM" ppl --model "$dir/m" --text-file "$dir/text.txt" >"$dir/out" 2>"$dir/err"
        rc=$?
        if [ $rc -ne 1 ] || ! grep -q "m/config.json: field" "$dir/err" || grep -qi nan "$dir/out"; then
            fail "$name" "exit $rc, stdout: $(cat "$dir/out"), stderr: $(cat "$dir/err")"
            return
        fi
        for p in "$@"; do
            grep -qF -- "$p" "$dir/err" || { fail "$name" "message lacks '$p': $(cat "$dir/err")"; return; }
        done
        pass "$name"
    }
    cfg cfg_eps_negative "c['rms_norm_eps'] = -1" "'rms_norm_eps'"
    cfg cfg_eps_zero "c['rms_norm_eps'] = 0" "'rms_norm_eps'"
    cfg cfg_eps_tiny "c['rms_norm_eps'] = 1e-60" "'rms_norm_eps'"
    cfg cfg_head_dim_derived_zero "del c['head_dim']; c['num_attention_heads'] = 64; c['num_key_value_heads'] = 64" \
        "'head_dim'" "= 0"
    cfg cfg_head_dim_derived_odd "del c['head_dim']; c['hidden_size'] = 36" "'head_dim'" "odd"
    cfg cfg_head_dim_zero "c['head_dim'] = 0" "'head_dim'"
    cfg cfg_head_dim_huge "c['head_dim'] = 1 << 20" "'head_dim'"
    cfg cfg_rope_theta "c['rope_theta'] = -5" "'rope_theta'"
    cfg cfg_top_k_gt_experts "c['num_experts_per_tok'] = 9" "'num_experts_per_tok'"
    cfg cfg_experts_zero "c['num_local_experts'] = 0" "'num_local_experts'"
    cfg cfg_vocab_negative "c['vocab_size'] = -3" "'vocab_size'"
    cfg cfg_hidden_huge "c['hidden_size'] = 1e12" "'hidden_size'"
    cfg cfg_layers_zero "c['num_hidden_layers'] = 0" "'num_hidden_layers'"
    cfg cfg_eos_out_of_range "c['eos_token_id'] = [1, 300]" "'eos_token_id[1]'"
    # and the unmodified model still works
    "$MOESIM" ppl --model "$dir/good" --text-file "$dir/text.txt" >"$dir/out" 2>"$dir/err"
    if [ $? -eq 0 ] && grep -q '^nats_per_byte [0-9.]*$' "$dir/out"; then pass cfg_good_model
    else fail cfg_good_model "$(cat "$dir/err")"; fi
else
    echo "SKIP cfg_*: python3 or tests/tools/make_tiny_model.py unavailable"
fi

# ---- item 6: messages --------------------------------------------------------
# CSV with a BOM: read as if it were not there; a wrong header is reported
# without the BOM's bytes.
{ printf '%s' "$BOM"; cat "$T"; } >"$dir/bom.csv"
"$MOESIM" trace import --format csv "$dir/bom.csv" -o "$dir/bom.moetrace" >/dev/null 2>"$dir/err"
rc=$?
if [ $rc -eq 0 ]; then pass msg_csv_bom_read
else fail msg_csv_bom_read "exit $rc, stderr: $(cat "$dir/err")"; fi
{ printf '%sstep,seq,tok,layer,slot,expert,weight\n0,0,0,0,0,1,1\n' "$BOM"; } >"$dir/bomh.csv"
"$MOESIM" trace import --format csv "$dir/bomh.csv" -o "$dir/bomh.moetrace" >/dev/null 2>"$dir/err"
rc=$?
if [ $rc -eq 1 ] && grep -q "bomh.csv:1: .*column 3 is 'tok'" "$dir/err" && ! grep -q "$BOM" "$dir/err"; then
    pass msg_csv_bom_message
else fail msg_csv_bom_message "exit $rc, stderr: $(od -c "$dir/err" | head -5)"; fi

# INI with a BOM: a valid file works, an error on line 1 shows no BOM
{ printf '%s[traces]\na = %s\n[sweep]\npolicies = lru\ncapacities = 2\n' "$BOM" "$T"; } >"$dir/bom.ini"
"$MOESIM" sweep "$dir/bom.ini" --db "$dir/ini.db" >/dev/null 2>"$dir/err"
rc=$?
if [ $rc -eq 0 ]; then pass msg_ini_bom_read
else fail msg_ini_bom_read "exit $rc, stderr: $(cat "$dir/err")"; fi
{ printf '%s[traces\na = %s\n' "$BOM" "$T"; } >"$dir/bomb.ini"
"$MOESIM" sweep "$dir/bomb.ini" --db "$dir/ini2.db" >/dev/null 2>"$dir/err"
rc=$?
if [ $rc -ne 0 ] && grep -q "bomb.ini:1: section header without ']'" "$dir/err" && ! grep -q "$BOM" "$dir/err"; then
    pass msg_ini_bom_message
else fail msg_ini_bom_message "exit $rc, stderr: $(od -c "$dir/err" | head -5)"; fi

# libCacheSim CSV without a header: "5" after a BOM is the same key as "5"
# later (2 keys, not 3), and a note says the BOM was removed.
printf '%s5\n5\n7\n5\n' "$BOM" >"$dir/lcs.csv"
"$MOESIM" trace import --format lcs-csv "$dir/lcs.csv" -o "$dir/lcs.moetrace" >/dev/null 2>"$dir/err"
rc=$?
if [ $rc -eq 0 ] && grep -q "note: .*lcs.csv:1: .*byte order mark" "$dir/err" &&
    "$MOESIM" trace info "$dir/lcs.moetrace" | grep -q '^  keys=2$'; then pass msg_lcs_bom_key
else fail msg_lcs_bom_key "exit $rc, stderr: $(cat "$dir/err"), info: $("$MOESIM" trace info "$dir/lcs.moetrace" 2>&1 | grep keys)"; fi
# with a header naming obj_id: still sniffed as libCacheSim CSV
printf '%sobj_id,size\n5,1\n7,1\n5,1\n' "$BOM" >"$dir/lcsh.csv"
"$MOESIM" trace import "$dir/lcsh.csv" -o "$dir/lcsh.moetrace" >/dev/null 2>"$dir/err"
rc=$?
if [ $rc -eq 0 ] && "$MOESIM" trace info "$dir/lcsh.moetrace" | grep -q '^  keys=2$'; then pass msg_lcs_bom_header
else fail msg_lcs_bom_header "exit $rc, stderr: $(cat "$dir/err")"; fi

# JSONL: a weight beyond the float range is refused with its line number
{
    echo '{"problem_id":0,"layer":0,"token_pos":0,"experts":[1,2],"gating_probs":[0.5,0.5]}'
    echo '{"problem_id":0,"layer":1,"token_pos":0,"experts":[1,2],"gating_probs":[0.5,1e39]}'
} >"$dir/w.jsonl"
"$MOESIM" trace import --format jsonl-mixtral "$dir/w.jsonl" -o "$dir/w.moetrace" >/dev/null 2>"$dir/err"
rc=$?
if [ $rc -eq 1 ] && grep -q "w.jsonl:2: field 'gating_probs': item 1" "$dir/err"; then pass msg_jsonl_weight_line
else fail msg_jsonl_weight_line "exit $rc, stderr: $(cat "$dir/err")"; fi
# JSONL: more experts in a record than --top-k allows carries a line too
{
    echo '{"problem_id":0,"layer":0,"token_pos":0,"experts":[1,2],"gating_probs":[0.5,0.5]}'
    echo '{"problem_id":0,"layer":1,"token_pos":0,"experts":[1,2,3],"gating_probs":[0.2,0.3,0.5]}'
} >"$dir/k.jsonl"
"$MOESIM" trace import --format jsonl-mixtral --top-k 2 "$dir/k.jsonl" -o "$dir/k.moetrace" >/dev/null 2>"$dir/err"
rc=$?
if [ $rc -eq 1 ] && grep -q "k.jsonl:2: " "$dir/err"; then pass msg_jsonl_top_k_line
else fail msg_jsonl_top_k_line "exit $rc, stderr: $(cat "$dir/err")"; fi

# CSV: layer 4294967295 (uint32 max) names the limit, not a wrapped "layers (0)"
printf 'step,seq,token,layer,slot,expert,weight\n0,0,0,0,0,1,1\n1,0,1,4294967295,0,1,1\n' >"$dir/max.csv"
"$MOESIM" trace import --format csv "$dir/max.csv" -o "$dir/max.moetrace" >/dev/null 2>"$dir/err"
rc=$?
if [ $rc -eq 1 ] && grep -q "max.csv:3: column 'layer': 4294967295" "$dir/err" && ! grep -q "(0)" "$dir/err"; then
    pass msg_csv_layer_max
else fail msg_csv_layer_max "exit $rc, stderr: $(cat "$dir/err")"; fi
for col in expert slot; do
    if [ $col = expert ]; then row="1,0,1,0,0,4294967295,1"; else row="1,0,1,0,4294967295,1,1"; fi
    printf 'step,seq,token,layer,slot,expert,weight\n0,0,0,0,0,1,1\n%s\n' "$row" >"$dir/max.csv"
    "$MOESIM" trace import --format csv "$dir/max.csv" -o "$dir/max.moetrace" >/dev/null 2>"$dir/err"
    rc=$?
    if [ $rc -eq 1 ] && grep -q "max.csv:3: column '$col': 4294967295" "$dir/err" && ! grep -q "(0)" "$dir/err"; then
        pass "msg_csv_${col}_max"
    else fail "msg_csv_${col}_max" "exit $rc, stderr: $(cat "$dir/err")"; fi
done

# A BOM'd moesim CSV is recognised without --format (and read without the BOM).
printf '\357\273\277step,seq,token,layer,slot,expert,weight\n0,0,0,0,0,1,\n' >"$dir/bom.txt"
if "$MOESIM" trace import "$dir/bom.txt" -o "$dir/bom.moetrace" >/dev/null 2>"$dir/err" && [ -s "$dir/bom.moetrace" ]; then
    pass msg_bom_sniffed
else fail msg_bom_sniffed "$(cat "$dir/err")"; fi

exit $failed
