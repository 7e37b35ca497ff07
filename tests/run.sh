#!/bin/sh
# run.sh: runs every unit-test program and every command-line test script,
# counts PASS/FAIL lines, and prints the closing line "N passed, N failed".
# BUILD names the build folder (build or build-san); set by the Makefile.
BUILD=${BUILD:-build}
export MOESIM="$PWD/$BUILD/moesim" BUILD
log=$(mktemp)
status=0
for t in "$BUILD"/tests/test_*; do
    [ -x "$t" ] || continue
    echo "== $t"
    t0=$(date +%s.%N)
    "$t" >"$log.one" 2>&1 || status=1
    echo "$t $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')" >>"$log.times"
    cat "$log.one"; cat "$log.one" >>"$log"
    # a crash prints no FAIL line: count it as one
    if [ $status -ne 0 ] && ! grep -q '^FAIL' "$log.one"; then echo "FAIL $t: crashed or exited non-zero" | tee -a "$log"; fi
    status=0
done
for t in tests/cli/test_*.sh; do
    [ -f "$t" ] || continue
    echo "== $t"
    t0=$(date +%s.%N)
    sh "$t" >"$log.one" 2>&1
    rc=$?
    echo "$t $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')" >>"$log.times"
    cat "$log.one"; cat "$log.one" >>"$log"
    if [ $rc -ne 0 ] && ! grep -q '^FAIL' "$log.one"; then echo "FAIL $t: exited $rc" | tee -a "$log"; fi
done
passed=$(grep -c '^PASS' "$log")
failed=$(grep -c '^FAIL' "$log")
# the slowest, so a test that grows past the suite's budget is seen
echo; echo "slowest (seconds):"; sort -k2 -rn "$log.times" | head -5 | awk '{ printf "  %6.1f %s\n", $2, $1 }'
rm -f "$log" "$log.one" "$log.times"
echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
