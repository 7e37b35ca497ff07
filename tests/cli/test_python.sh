#!/bin/sh
# test_python.sh: the Python package python/moesim (traces, results, the vLLM
# hook) against build/moesim: runs every tests/python/test_*.py with Debian's
# python3 and numpy (PYTHON overrides the interpreter). Each prints PASS/FAIL
# lines; a script that dies without a FAIL line counts as one.
M=${MOESIM:-build/moesim}
case $M in /*) ;; *) M="$PWD/$M" ;; esac
PY=${PYTHON:-/usr/bin/python3}
if ! "$PY" -c 'import numpy' 2>/dev/null; then
    echo "FAIL python_numpy: $PY cannot import numpy (Debian package python3-numpy: make deps)"
    exit 1
fi
rc=0
for t in tests/python/test_*.py; do
    out=$(PYTHONPATH=python MOESIM="$M" "$PY" "$t" 2>&1)
    s=$?
    printf '%s\n' "$out"
    if [ $s -ne 0 ]; then
        rc=1
        printf '%s\n' "$out" | grep -q '^FAIL' || echo "FAIL $t: exited $s"
    fi
done
exit $rc
