#!/bin/sh
# run.sh SECONDS [TARGET...]: run each libFuzzer target (default: all of
# build-fuzz/fuzz/fuzz_*) for SECONDS seconds over its seed corpus
# (tests/fuzz/seeds.py, rewritten each run) and its own growing corpus.
# Prints "PASS fuzz_x: N runs in S s" or "FAIL fuzz_x: ..." with the input
# that failed (a crash, a leak, a hang over 10 s or an allocation over
# 2 GiB); every finished run is appended to build-fuzz/fuzz-log.tsv
# (date, target, seconds, runs, result), the record of hours fuzzed.
#
# Environment: MOESIM (moesim binary for the seeds, default build/moesim);
# FUZZ_CORPUS (corpus root, default build-fuzz/corpus); FUZZ_SEEDS (where
# the seeds are written, default build-fuzz/seeds); FUZZ_LOGS (libFuzzer's
# output per target, default build-fuzz/logs); FUZZ_JOBS (worker
# processes per target, libFuzzer -fork, default 1). Run from the
# repository root (fuzz_spec reads experiments/).
secs=${1:?usage: run.sh SECONDS [TARGET...]}
shift
B=build-fuzz
corpus=${FUZZ_CORPUS:-$B/corpus}
jobs=${FUZZ_JOBS:-1}
seeds=${FUZZ_SEEDS:-$B/seeds}
rm -rf "$seeds"
python3 tests/fuzz/seeds.py "$seeds" || { echo "FAIL fuzz_seeds: tests/fuzz/seeds.py failed"; exit 1; }
logs=${FUZZ_LOGS:-$B/logs}
mkdir -p "$B/crashes" "$logs"
targets=$*
[ -n "$targets" ] || targets=$(cd $B/fuzz && ls fuzz_* | grep -v '\.d$')
status=0
for t in $targets; do
    bin=$B/fuzz/$t
    [ -x "$bin" ] || { echo "FAIL $t: $bin not built (make fuzz-bins)"; status=1; continue; }
    mkdir -p "$corpus/$t"
    log=$logs/$t.log
    fork=""
    [ "$jobs" -gt 1 ] && fork="-fork=$jobs -ignore_crashes=0"
    start=$(date +%s)
    # detect_leaks: a reader that leaks on a bad file leaks on every bad file
    "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=2048 \
        -detect_leaks=1 -print_final_stats=1 $fork -artifact_prefix="$B/crashes/$t-" \
        "$corpus/$t" "$seeds/$t" >"$log" 2>&1
    rc=$?
    took=$(( $(date +%s) - start ))
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    [ -n "$runs" ] || runs=$(grep -o '^#[0-9]*' "$log" | tail -1 | tr -d '#')
    if [ $rc -eq 0 ]; then
        echo "PASS $t: ${runs:-?} runs in ${took} s"
        res=clean
    else
        art=$(grep -o "$B/crashes/$t-[a-z-]*[0-9a-f]*" "$log" | tail -1)
        echo "FAIL $t: exit $rc after ${took} s, input ${art:-?}; log $log:"
        grep -E 'ERROR|SUMMARY|==[0-9]+==|#[0-9]+ +0x|abort|reader accepted|out of range' "$log" | head -20
        res=fail
        status=1
    fi
    printf '%s\t%s\t%s\t%s\t%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$t" "$took" "${runs:-0}" "$res" >>$B/fuzz-log.tsv
done
exit $status
