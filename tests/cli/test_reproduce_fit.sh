#!/bin/sh
# test_reproduce_fit.sh: `moesim trace fit` end to end on a tiny case: the
# trace, its meta and the sidecar .ini are written; the sidecar's gen command
# regenerates the same routing; bad target lists are refused.
MOESIM=${MOESIM:-build/moesim}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if "$MOESIM" trace fit -o "$tmp/f.moetrace" --layers 4 --experts 8 --top-k 2 --rho 1,2 --lru 0.5,0.75 \
        --belady 0.7,0.9 --seqs 3 --fit-seqs 3 --seq-len 64 --max-iter 15 --model tiny-fit >"$tmp/out" 2>"$tmp/err" &&
   [ -f "$tmp/f.ini" ] && grep -q '^target_lru = 0.500,0.750' "$tmp/f.ini" && grep -q '^\[generator\]' "$tmp/f.ini" &&
   grep -q "^written trace: 3 sequences" "$tmp/out" &&
   "$MOESIM" trace info "$tmp/f.moetrace" | grep -q "fit_target_belady=0.700,0.900"; then
    echo "PASS fit_writes_trace_meta_sidecar"
else
    echo "FAIL fit_writes_trace_meta_sidecar: $(cat "$tmp/out" "$tmp/err")"
fi
cmd=$(sed -n 's/^gen_command = moesim //p' "$tmp/f.ini" | sed "s#-o $tmp/f.moetrace#-o $tmp/g.moetrace#")
# shellcheck disable=SC2086
if "$MOESIM" $cmd >/dev/null 2>&1 && "$MOESIM" trace export "$tmp/f.moetrace" -o "$tmp/a.csv" &&
   "$MOESIM" trace export "$tmp/g.moetrace" -o "$tmp/b.csv" && cmp -s "$tmp/a.csv" "$tmp/b.csv"; then
    echo "PASS fit_gen_command_regenerates"
else
    echo "FAIL fit_gen_command_regenerates: $cmd"
fi
"$MOESIM" trace fit -o "$tmp/x.moetrace" --layers 4 --experts 8 --top-k 2 --rho 1,2 --lru 0.5 >/dev/null 2>"$tmp/err"
[ $? -eq 2 ] && grep -q "one value per --rho" "$tmp/err" && echo "PASS fit_list_mismatch" || echo "FAIL fit_list_mismatch: $(cat "$tmp/err")"
"$MOESIM" trace fit -o "$tmp/x.moetrace" --layers 4 --experts 8 --top-k 2 --rho 1 --lru 1.5 >/dev/null 2>"$tmp/err"
[ $? -eq 1 ] && grep -q "not in 0..1" "$tmp/err" && echo "PASS fit_bad_target" || echo "FAIL fit_bad_target: $(cat "$tmp/err")"
