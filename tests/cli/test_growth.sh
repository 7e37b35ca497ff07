#!/bin/sh
# test_growth.sh: bounded time and memory for hostile but small inputs.
#  1. each generator of a once-quadratic input (Qwen log with n distinct
#     req_ids; a layers_logged list of n layers; one Mixtral row of n
#     experts; an experiment range 0:n; a libCacheSim CSV of n distinct
#     keys) at n and 8n: the larger may take at most 24x the smaller + 0.5 s
#     (n log n gives about 9x; the old quadratic code gave 64x);
#  2. inputs of at most 1 KB finish within 1 s and 100 MB each (limits x4
#     under the sanitizer build, whose ASan costs 2-5x);
#  3. a 6 MB line without a newline (CSV, libCacheSim CSV, JSONL) is refused
#     at the 4 MiB line limit within the same bounds.
# Times are the CPU time (user + system) of each command: on a shared
# machine wall time measures the neighbours too. One python3 process does
# it all (starting python costs most of a second here).
M=${MOESIM:-build/moesim}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
python3 - "$M" "$T" <<'PY'
import json, os, resource, subprocess, sys
M, T = sys.argv[1], sys.argv[2]
slow = 4 if "build-san" in M else 1

def measure(cmd):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, after.ru_maxrss, r.returncode  # ru_maxrss: the largest child so far

def gen(kind, n, path):
    with open(path, "w") as f:
        if kind == "qwen_reqs":
            f.write(json.dumps({"type": "meta", "model_id": "x", "top_k": 2, "layers_logged": [0]}) + "\n")
            for i in range(n):
                f.write(json.dumps({"type": "route", "req_id": "r%d" % i, "token_idx": 0, "layer": 0,
                                    "topk_ids": [i % 60, (i + 1) % 60], "topk_weights": [0.5, 0.4]}) + "\n")
        elif kind == "qwen_layers":
            f.write(json.dumps({"type": "meta", "model_id": "x", "top_k": 2, "layers_logged": list(range(n))}) + "\n")
            f.write(json.dumps({"type": "route", "req_id": "r", "token_idx": 0, "layer": 0,
                                "topk_ids": [1, 2], "topk_weights": [0.5, 0.4]}) + "\n")
        elif kind == "mixtral_row":
            f.write(json.dumps({"problem_id": 0, "layer": 0, "token_pos": 0, "experts": list(range(n)),
                                "gating_probs": [0.0] * n}) + "\n")
        elif kind == "range":
            f.write("[traces]\nt = %s.none\n[sweep]\npolicies = lru\ncapacities = 0:%d\n" % (path, n))
        elif kind == "lcs_keys":
            f.write("".join("k%d\n" % i for i in range(n)))

def command(kind, path):
    if kind.startswith("qwen"):
        return [M, "trace", "import", "--format", "jsonl-qwen", path, "-o", path + ".moetrace"]
    if kind == "mixtral_row":
        return [M, "trace", "import", "--format", "jsonl-mixtral", path, "-o", path + ".moetrace"]
    if kind == "range":
        return [M, "sweep", path, "--db", path + ".db"]
    return [M, "trace", "import", "--format", "lcs-csv", path, "-o", path + ".moetrace"]

for kind, n in (("qwen_reqs", 4000), ("qwen_layers", 4000), ("mixtral_row", 4000), ("range", 10000),
                ("lcs_keys", 10000)):
    a, b = os.path.join(T, "a." + kind), os.path.join(T, "b." + kind)
    gen(kind, n, a)
    gen(kind, 8 * n, b)
    ta, tb = measure(command(kind, a))[0], measure(command(kind, b))[0]
    if tb <= 24 * ta + 0.5 * slow:
        print("PASS growth_%s" % kind)
    else:
        print("FAIL growth_%s: n=%d took %.3f s, 8n took %.3f s" % (kind, n, ta, tb))

hostile = {
    "h1.csv": "step,seq,token,layer,slot,expert,weight\n0,0,0,536870911,0,1,\n0,0,1,0,268435455,1,\n",
    "h2.csv": "step,seq,token,layer,slot,expert,weight\n0,0,0,20000000,0,1,\n1,0,1,20000000,0,2,\n",
    "h3.ini": "[traces]\nt = none.moetrace\n[sweep]\npolicies = lru\ncapacities = 0:999999\n",
    "h4.jsonl": '{"problem_id": 0, "layer": 4000000000, "token_pos": 0, "experts": [1, 2]}\n',
    "h5.jsonl": '{"type":"meta","top_k":2,"layers_logged":[0]}\n{"type":"route","req_id":"a","token_idx":4294967295,'
                '"layer":0,"topk_ids":[1,65533],"topk_weights":[1e38,1]}\n',
}
# one 6 MB line (no newline), as CSV, libCacheSim CSV and JSONL: refused at
# the line limit (4 MiB) without holding the line
for name, fm, text in (("long.csv", "csv", "step,seq,token,layer,slot,expert,weight\n" + "1" * 6000000),
                       ("long_lcs.csv", "lcs-csv", "k" * 6000000),
                       ("long.jsonl", "jsonl-mixtral", '{"experts": [' + "1," * 3000000 + "1]}")):
    p = os.path.join(T, name)
    with open(p, "w") as f:
        f.write(text)
    cpu, rss, rc = measure([M, "trace", "import", "--format", fm, p, "-o", p + ".moetrace"])
    if rc == 1 and cpu <= 1.0 * slow and rss <= 100 * 1024 * slow:
        print("PASS long_line_%s" % name)
    else:
        print("FAIL long_line_%s: %.3f s, %d KiB, exit %d" % (name, cpu, rss, rc))

fmt = {"h1.csv": "csv", "h2.csv": "csv", "h4.jsonl": "jsonl-mixtral", "h5.jsonl": "jsonl-qwen"}
for name, text in hostile.items():
    p = os.path.join(T, name)
    with open(p, "w") as f:
        f.write(text)
    cmd = [M, "sweep", p, "--db", p + ".db"] if name.endswith(".ini") else \
          [M, "trace", "import", "--format", fmt[name], p, "-o", p + ".moetrace"]
    cpu, rss, rc = measure(cmd)
    if len(text) <= 1024 and cpu <= 1.0 * slow and rss <= 100 * 1024 * slow:
        print("PASS small_input_%s" % name)
    else:
        print("FAIL small_input_%s: %d bytes: %.3f s, %d KiB, exit %d" % (name, len(text), cpu, rss, rc))
PY
