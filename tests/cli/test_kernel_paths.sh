#!/bin/sh
# test_kernel_paths.sh: the vector kernels (backend/simd.h) give the same
# bits on every path. kernel_digest (tests/paths/kernel_digest.c) hashes
# exp, matmul (f32 and bf16 weights, odd shapes) and the shipped model's
# logits (prefill and decode, bf16 and 4-bit experts); it is built once per
# path with the choice fixed at compile time (baseline SSE2, AVX2, AVX-512)
# and once dispatched at load. Every path this CPU can run must print the
# dispatched build's digest.
BUILD=${BUILD:-build}
text=models/tinymix/golden/heldout_c.txt
d=$("$BUILD/paths/dispatch/kernel_digest" models/tinymix "$text" 2>&1)
case "$d" in
digest\ *) echo "PASS kernel_digest_runs" ;;
*) echo "FAIL kernel_digest_runs: $d"; exit 0 ;;
esac
flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null)
for p in base avx2 avx512; do
    bin="$BUILD/paths/$p/kernel_digest"
    [ -x "$bin" ] || continue # not an x86-64 build: only the dispatched one
    case "$p" in
    avx2) echo "$flags" | grep -qw avx2 || { echo "info kernel path avx2: this CPU has no AVX2, not run"; continue; } ;;
    avx512) echo "$flags" | grep -qw avx512f || { echo "info kernel path avx512: this CPU has no AVX-512, not run"; continue; } ;;
    esac
    got=$("$bin" models/tinymix "$text" 2>&1)
    if [ "$got" = "$d" ]; then echo "PASS kernel_path_$p"
    else echo "FAIL kernel_path_$p: $got, dispatched build $d"; fi
done
