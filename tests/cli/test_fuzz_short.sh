#!/bin/sh
# test_fuzz_short.sh: the short fuzz pass of `make test`: every libFuzzer
# target (tests/fuzz, built by `make fuzz-bins` into build-fuzz/) runs its
# seed corpus and then 1 s of fuzzing, in a scratch corpus; any crash, leak,
# hang or oversized allocation is a FAIL naming the input. Two halves of
# the targets run side by side. The long runs are `make fuzz
# FUZZ_SECONDS=N` (docs/fuzzing.md keeps their record).
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
if ! ls build-fuzz/fuzz/fuzz_* >/dev/null 2>&1; then
    echo "FAIL fuzz_short: no fuzz targets in build-fuzz/fuzz (make fuzz-bins)"
    exit 1
fi
targets=$(cd build-fuzz/fuzz && ls fuzz_* | grep -v '\.d$')
half() { echo "$targets" | awk -v k="$1" 'NR % 2 == k'; }
for k in 0 1; do
    # shellcheck disable=SC2046
    FUZZ_CORPUS="$T/corpus" FUZZ_SEEDS="$T/seeds$k" FUZZ_LOGS="$T/logs" MOESIM=${MOESIM:-build/moesim} \
        sh tests/fuzz/run.sh 1 $(half $k) >"$T/out$k" 2>&1 &
done
wait
cat "$T/out0" "$T/out1"
