"""harness.py: what the Python tests share. A test file registers cases with
@case and calls run(); each case prints "PASS name" or "FAIL name: why", like
the other tests (tests/run.sh counts them); exit status 1 if any failed.
Run from the repository root with PYTHONPATH=python and MOESIM set (as
tests/cli/test_python.sh does)."""
import os
import subprocess
import sys
import tempfile
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "python"))
MOESIM = os.path.abspath(os.environ.get("MOESIM", os.path.join(ROOT, "build", "moesim")))
TMP = tempfile.mkdtemp(prefix="moesim-py-")

_cases = []


class Failed(Exception):
    pass


def ensure(cond, why):
    """A check that survives python -O (unlike assert)."""
    if not cond:
        raise Failed(why)


def case(fn):
    _cases.append(fn)
    return fn


def moesim(*args, ok=True):
    """Run build/moesim from the repository root; returns the CompletedProcess
    (stdout and stderr as text). ok: the exit status must be 0."""
    p = subprocess.run([MOESIM, *map(str, args)], cwd=ROOT, capture_output=True, text=True)
    if ok and p.returncode != 0:
        raise Failed(f"moesim {' '.join(map(str, args))}: exit {p.returncode}: {p.stderr.strip()[:500]}")
    return p


def tmp(name):
    return os.path.join(TMP, name)


def run():
    failed = 0
    for fn in _cases:
        try:
            fn()
            print(f"PASS py_{fn.__name__}", flush=True)
        except Failed as e:
            failed += 1
            print(f"FAIL py_{fn.__name__}: {e}", flush=True)
        except Exception:  # a crash is a failure with its traceback
            failed += 1
            print(f"FAIL py_{fn.__name__}: {traceback.format_exc().strip().splitlines()[-1]}", flush=True)
            traceback.print_exc()
    subprocess.run(["rm", "-rf", TMP])
    sys.exit(1 if failed else 0)
