#!/bin/sh
# test_keyseq.sh: key sequences (libCacheSim inputs) as a flat key space:
#  1. `trace import` streams: memory does not grow with the requests (an
#     8x longer sequence over the same keys costs < 3 MiB more; holding the
#     ids would cost 28 MiB more) and the file is 4 bytes a request;
#  2. the commands without routing to work on refuse a key sequence with a
#     message naming the file and the commands that take it;
#  3. run refuses what needs routing (prefetch, split, pin), by name;
#  4. a corrupt or truncated file is refused, naming the file.
M=${MOESIM:-build/moesim}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; }

# oracleGeneral of N requests cycling over K keys (ids 1000+k, size 1)
python3 - "$T" <<'PY'
import struct, sys
K = 1000
block = b"".join(struct.pack("<IQIq", 0, 1000 + k, 1, -1) for k in range(K))
for name, n in (("short", 250_000), ("long", 2_000_000)):
    with open(f"{sys.argv[1]}/{name}.oracleGeneral.bin", "wb") as f:
        f.write(block * (n // K))
PY
rss() { # max RSS in KiB of one import
    python3 - "$M" "$1" "$2" <<'PY'
import resource, subprocess, sys
subprocess.run([sys.argv[1], "trace", "import", "--format", "lcs-oracle", sys.argv[2], "-o", sys.argv[3]],
               check=True, stdout=subprocess.DEVNULL)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
PY
}
a=$(rss "$T/short.oracleGeneral.bin" "$T/short.moetrace")
b=$(rss "$T/long.oracleGeneral.bin" "$T/long.moetrace")
size=$(stat -c %s "$T/long.moetrace")
# 2M requests x 4 bytes + 432-byte header + 1024-byte meta area
if [ -n "$a" ] && [ -n "$b" ] && [ $((b - a)) -lt 3072 ] && [ "$size" -eq 8001456 ]; then pass import_streams
else fail import_streams "max RSS ${a} KiB (250k requests) vs ${b} KiB (2M), file $size bytes"; fi
if "$M" trace info "$T/long.moetrace" | grep -q '^requests     2000000$' &&
   "$M" trace info "$T/long.moetrace" | grep -q '^keys         1000 distinct$'; then pass keyseq_info
else fail keyseq_info "$("$M" trace info "$T/long.moetrace" 2>&1)"; fi
# LRU at 999 of 1000 cycling keys misses every request; at 1000 only the first 1000
m1=$("$M" run --trace "$T/long.moetrace" --policy lru --capacity 999 --json | python3 -c 'import json,sys; r=json.load(sys.stdin); print(r["accesses"]-r["hits"])')
m2=$("$M" run --trace "$T/long.moetrace" --policy lru --capacity 1000 --json | python3 -c 'import json,sys; r=json.load(sys.stdin); print(r["accesses"]-r["hits"])')
if [ "$m1" = 2000000 ] && [ "$m2" = 1000 ]; then pass keyseq_run_cycle
else fail keyseq_run_cycle "misses $m1 (capacity 999), $m2 (1000)"; fi

for cmd in "trace stats" "trace export -o $T/x.csv" "plan --model mixtral-8x7b --ram 64GiB --device nvme-cpu --trace"; do
    # shellcheck disable=SC2086
    "$M" $cmd "$T/short.moetrace" >"$T/out" 2>"$T/err"
    rc=$?
    name=refuse_$(echo "$cmd" | cut -d' ' -f1-2 | tr ' ' _)
    if [ $rc -eq 1 ] && grep -q "short.moetrace: a key sequence (250000 requests over 1000 keys" "$T/err" &&
       grep -q "only \`run\`, \`sweep\` and \`trace info\` take it" "$T/err"; then pass "$name"
    else fail "$name" "exit $rc: $(cat "$T/err")"; fi
done
check_run() { # NAME NEEDLE OPTIONS...
    name=$1 needle=$2; shift 2
    "$M" run --trace "$T/short.moetrace" --capacity 8 "$@" >"$T/out" 2>"$T/err"
    rc=$?
    if [ $rc -eq 1 ] && grep -q "$needle" "$T/err"; then pass "$name"; else fail "$name" "exit $rc: $(cat "$T/err")"; fi
}
check_run run_refuses_prefetch "a key sequence takes eviction policies and capacities in keys only" --policy lru --prefetch gate:ahead=1
check_run run_refuses_split "no layers to split among" --policy lru --split fate
check_run run_refuses_pin "policy pin reads a trace's routing; a key sequence has none" --policy pin:n=2
check_run run_refuses_count_from "a key sequence has none" --policy lru --count-from 3

# corrupt: one key byte flipped; truncated by 4 bytes
cp "$T/short.moetrace" "$T/bad.moetrace"
printf '\377' | dd of="$T/bad.moetrace" bs=1 seek=5000 conv=notrunc 2>/dev/null
"$M" run --trace "$T/bad.moetrace" --policy lru --capacity 8 >"$T/out" 2>"$T/err"
rc=$?
if [ $rc -eq 1 ] && grep -q "bad.moetrace: checksum mismatch" "$T/err"; then pass keyseq_corrupt
else fail keyseq_corrupt "exit $rc: $(cat "$T/err")"; fi
head -c $(( $(stat -c %s "$T/short.moetrace") - 4 )) "$T/short.moetrace" >"$T/cut.moetrace"
"$M" trace info "$T/cut.moetrace" >"$T/out" 2>"$T/err"
rc=$?
if [ $rc -eq 1 ] && grep -q "cut.moetrace: truncated: header says 1001456 bytes, file has 1001452" "$T/err"; then pass keyseq_truncated
else fail keyseq_truncated "exit $rc: $(cat "$T/err")"; fi

# progress: on a terminal (script(1) provides one) a long import draws
# "NN% (x of y MB)" on stderr and erases it; redirected, nothing is drawn
python3 -c "
import sys
with open(sys.argv[1], 'w') as f:
    for i in range(140000): f.write('k%d\n' % (i % 5000))
" "$T/long.csv"
if command -v script >/dev/null; then
    MOESIM_PROGRESS_AFTER=0 script -qc "$M trace import --format lcs-csv $T/long.csv -o $T/p.moetrace" /dev/null >"$T/tty" 2>&1
    if grep -q "moesim trace import: $T/long.csv: *[0-9]*% (" "$T/tty" && grep -q "140000 requests over 5000 keys" "$T/tty"; then pass progress_on_tty
    else fail progress_on_tty "$(cat "$T/tty")"; fi
fi
MOESIM_PROGRESS_AFTER=0 "$M" trace import --format lcs-csv "$T/long.csv" -o "$T/p.moetrace" >"$T/out" 2>"$T/err"
if [ ! -s "$T/err" ]; then pass progress_not_redirected; else fail progress_not_redirected "$(cat "$T/err")"; fi

# verify once (core/verified.h), with the size threshold lowered to 1 byte:
# the first open hashes and records the file, the second recalls it, a write
# to the file (new change time) makes the next open hash again and fail
export MOESIM_VERIFY_ONCE_BYTES=1 MOESIM_VERIFY_CACHE="$T/verified"
cp "$T/short.moetrace" "$T/v.moetrace"
a=$("$M" trace info "$T/v.moetrace" 2>&1 | grep '^checksum')
b=$("$M" trace info "$T/v.moetrace" 2>&1 | grep '^checksum')
lines=$(wc -l <"$T/verified")
printf '\377' | dd of="$T/v.moetrace" bs=1 seek=5000 conv=notrunc 2>/dev/null
"$M" trace info "$T/v.moetrace" >"$T/out" 2>"$T/err"
rc=$?
case "$a|$b" in
*"(verified)|"*"(verified when first opened; file unchanged since)")
    if [ "$lines" = 1 ] && [ $rc -eq 1 ] && grep -q "v.moetrace: checksum mismatch" "$T/err"; then pass verify_once
    else fail verify_once "record lines $lines, after a write: exit $rc $(cat "$T/err")"; fi ;;
*) fail verify_once "first: $a; second: $b" ;;
esac
MOESIM_VERIFY_CACHE=off "$M" trace info "$T/short.moetrace" | grep -q '^checksum .* (verified)$' && pass verify_once_off ||
    fail verify_once_off "$("$M" trace info "$T/short.moetrace" | grep checksum)"
unset MOESIM_VERIFY_ONCE_BYTES MOESIM_VERIFY_CACHE

# --max-memory: each importer stops before it holds more, saying how much it
# would need (csv: the finished trace; jsonl: its rows; libCacheSim: keys)
"$M" trace export traces/tinymix_c.moetrace -o "$T/c.csv" >/dev/null
for case in "csv|$T/c.csv|the trace would take" \
            "jsonl-mixtral|tests/data/mixtral_exec.jsonl|mixtral_exec.jsonl:1: the rows read so far would take" \
            "lcs-csv|$T/long.csv|the key table would take"; do
    fm=${case%%|*} rest=${case#*|}; f=${rest%%|*} needle=${rest#*|}
    "$M" trace import --format "$fm" "$f" -o "$T/cap.moetrace" --max-memory 0.00001 >"$T/out" 2>"$T/err"
    rc=$?
    if [ $rc -eq 1 ] && grep -q "$needle .* KiB, above --max-memory 1e-05 GiB" "$T/err" && [ ! -e "$T/cap.moetrace" ] &&
       "$M" trace import --format "$fm" "$f" -o "$T/cap.moetrace" --max-memory 1 >/dev/null 2>&1; then pass "max_memory_$fm"
    else fail "max_memory_$fm" "exit $rc: $(cat "$T/err")"; fi
    rm -f "$T/cap.moetrace"
done
"$M" trace import --format csv "$T/c.csv" -o "$T/cap.moetrace" --max-memory -2 >/dev/null 2>"$T/err"
rc=$?
if [ $rc -eq 2 ] && grep -q "max-memory: expected a positive number of GiB or 'none', got '-2'" "$T/err"; then pass max_memory_bad
else fail max_memory_bad "exit $rc: $(cat "$T/err")"; fi
# No --max-memory: the cap is what the machine (or ulimit -v) leaves, so a
# log too big for it stops with the need and the cap named instead of ending
# in the OOM killer. 200k rows hold 18 MiB at their last doubling; ulimit -v
# 25000 KiB leaves about 15 MiB after the program's own mappings.
python3 -c '
import sys
w = sys.stdout.write
for i in range(200000):
    w("{\"problem_id\": 0, \"layer\": %d, \"token_pos\": %d, \"experts\": [%d, %d], \"gating_probs\": [0.6, 0.4]}\n" % (i % 32, i // 32, i % 8, (i + 1) % 8))
' >"$T/big.jsonl"
if ! (ulimit -v 25000; "$M" --version) >/dev/null 2>&1; then
    # a sanitizer build reserves terabytes of shadow address space: it cannot start under ulimit -v
    echo "info max_memory_default: $M does not start under ulimit -v (sanitizer build?): not run"
else
(ulimit -v 25000; "$M" trace import "$T/big.jsonl" -o "$T/cap.moetrace") >/dev/null 2>"$T/err"
rc=$?
if [ $rc -eq 1 ] && grep -q "big.jsonl:131073: the rows read so far would take 18.0 MiB, above the default cap of .* MiB (this machine's memory, or what ulimit -v leaves); --max-memory GiB sets another" "$T/err" &&
   [ ! -e "$T/cap.moetrace" ] && "$M" trace import "$T/big.jsonl" -o "$T/cap.moetrace" --max-memory none >/dev/null 2>&1 &&
   "$M" trace info "$T/cap.moetrace" | grep -q '^steps *6250'; then pass max_memory_default
else fail max_memory_default "exit $rc: $(cat "$T/err")"; fi
fi
rm -f "$T/cap.moetrace" "$T/big.jsonl"
