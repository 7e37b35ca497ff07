#!/bin/sh
# test_fuzz_short.sh: the short fuzz pass of `make test`: every libFuzzer
# target (tests/fuzz, built by `make fuzz-bins` into build-fuzz/) runs its
# seed corpus and then 1 s of fuzzing, in a scratch corpus; any crash, leak,
# hang or oversized allocation is a FAIL naming the input. The long runs
# are `make fuzz FUZZ_SECONDS=N` (docs/fuzzing.md keeps their record).
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
if ! ls build-fuzz/fuzz/fuzz_* >/dev/null 2>&1; then
    echo "FAIL fuzz_short: no fuzz targets in build-fuzz/fuzz (make fuzz-bins)"
    exit 1
fi
FUZZ_CORPUS="$T/corpus" FUZZ_SEEDS="$T/seeds" FUZZ_LOGS="$T/logs" MOESIM=${MOESIM:-build/moesim} sh tests/fuzz/run.sh 1
