#!/bin/sh
# test_quality.sh: `moesim quality` on the shipped model and the first 512
# bytes of its held-out C text.
#  - 16 bits is the full model itself: delta, KL exactly 0, top-1 100 %, and
#    the full model's nats/byte equal `moesim ppl`'s (another code path);
#  - 8-bit experts move nats/byte by less than 0.01 (issue 10's bound);
#  - fewer bits cost more: KL strictly grows 8 > 4 > 3 > 2 bits, and so do
#    delta and the top-1 disagreement from 8 to 2;
#  - expert bytes are the packed sizes models.ini states for tinymix;
#  - bad schemes are refused before any work, naming what is wrong.
M=${MOESIM:-build/moesim}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
head -c 512 models/tinymix/golden/heldout_c.txt >"$T/c.txt"
python3 - "$M" "$T" <<'PY'
import json, subprocess, sys
M, T = sys.argv[1], sys.argv[2]
text = T + "/c.txt"
base = [M, "quality", "--model", "models/tinymix", "--text-file", text, "--threads", "2"]

def check(name, ok, why=""):
    print(("PASS %s" % name) if ok else ("FAIL %s: %s" % (name, why)))

r = subprocess.run(base + ["--json"] + ["--precision=uniform:bits=%d" % b for b in (16, 8, 4, 3, 2)],
                   capture_output=True, text=True)
rows = [json.loads(l) for l in r.stdout.splitlines()] if r.returncode == 0 else []
if len(rows) != 5:
    check("quality_runs", False, "exit %d, %d rows: %s" % (r.returncode, len(rows), r.stderr))
    sys.exit(0)
full, q8, q4, q3, q2 = rows
check("quality_16bit_is_full", full["delta_nats_per_byte"] == 0 and full["kl_mean"] == 0 and
      full["top1_agreement"] == 1 and full["experts_quantized"] == 0, str(full))
p = subprocess.run([M, "ppl", "--model", "models/tinymix", "--text-file", text, "--threads", "2"],
                   capture_output=True, text=True)
ppl = dict(l.split() for l in p.stdout.splitlines()).get("nats_per_byte")
check("quality_full_matches_ppl", ppl is not None and abs(float(ppl) - full["nats_per_byte_full"]) < 1e-6,
      "ppl %s, quality %r" % (ppl, full["nats_per_byte_full"]))
check("quality_8bit_under_0.01", abs(q8["delta_nats_per_byte"]) < 0.01 and q8["experts_quantized"] == 192, str(q8))
kl = [x["kl_mean"] for x in (q8, q4, q3, q2)]
check("quality_kl_grows_as_bits_fall", 0 < kl[0] < kl[1] < kl[2] < kl[3], str(kl))
check("quality_2bit_worse_than_8bit", q2["delta_nats_per_byte"] > q8["delta_nats_per_byte"] and
      q2["top1_agreement"] < q8["top1_agreement"], "%r %r" % (q2, q8))
# models.ini's tinymix bytes_q8/q4/q3/q2 and 2 bytes a weight at 16 bits
want = {"uniform:bits=16": 110592, "uniform:bits=8": 59136, "uniform:bits=4": 31488,
        "uniform:bits=3": 24576, "uniform:bits=2": 17664}
got = {x["precision"]: x["expert_bytes"] / 192 for x in rows}
check("quality_packed_bytes", got == want, str(got))

# HOBBIT per token slot, checked against its two limits: hi = 1 runs every
# slot on the high (16-bit) copy, i.e. the full model, digit for digit;
# hi = 0, lo = 1 every slot on the low (4-bit) copy, i.e. uniform 4-bit
# exactly; the default (0.6, 0.9) sits between them
r = subprocess.run(base + ["--json", "--precision", "uniform:bits=4", "--precision", "hobbit:hi=1,lo=1",
                           "--precision", "hobbit:hi=0,lo=1", "--precision", "hobbit"], capture_output=True, text=True)
h = [json.loads(l) for l in r.stdout.splitlines()] if r.returncode == 0 else []
if len(h) == 4:
    u4, hi1, lo1, dflt = h
    check("quality_hobbit_limits", hi1["kl_mean"] == 0 and hi1["delta_nats_per_byte"] == 0 and
          lo1["kl_mean"] == u4["kl_mean"] and lo1["delta_nats_per_byte"] == u4["delta_nats_per_byte"] and
          0 < dflt["kl_mean"] and dflt["expert_bytes"] == 192 * (110592 + 31488), "%r" % h)
else:
    check("quality_hobbit_limits", False, "exit %d: %s" % (r.returncode, r.stderr))

# offloaded: waiting for every miss is the full model exactly; skipping or
# substituting the misses costs quality (the prefetcher fills the caches)
# the test's own pack (models/tinymix/experts.pack is made on demand, absent from a fresh clone)
subprocess.run([M, "model", "pack", "models/tinymix", "-o", T + "/t.pack"], capture_output=True)
off = ["--offload", T + "/t.pack", "--io", "buffered", "--capacity", "16", "--prefetch", "gate:ahead=1"]
got = {}
for mode in ("wait", "skip", "substitute"):
    r = subprocess.run(base + ["--json"] + off + ["--on-miss", mode], capture_output=True, text=True)
    got[mode] = json.loads(r.stdout) if r.returncode == 0 and r.stdout.strip() else {"rc": r.returncode, "err": r.stderr}
w, sk, su = got["wait"], got["skip"], got["substitute"]
r = subprocess.run(base + ["--json"] + off + ["--skip", "topk_frac=0.5"], capture_output=True, text=True)
ak = json.loads(r.stdout) if r.returncode == 0 and r.stdout.strip() else {"rc": r.returncode, "err": r.stderr}
check("quality_offload_adaptive_topk", 0 < ak.get("kl_mean", 0) < got["skip"].get("kl_mean", 0) and
      ak.get("constraint", "").endswith("skip topk_frac=0.5"), str(ak))
# a 4-bit pack offloaded computes what 4-bit experts compute resident, exactly
subprocess.run([M, "model", "pack", "models/tinymix", "-o", T + "/q4.pack", "--dtype", "q4"], capture_output=True)
r = subprocess.run(base + ["--json", "--offload", T + "/q4.pack", "--io", "buffered", "--capacity", "8"],
                   capture_output=True, text=True)
q4o = json.loads(r.stdout) if r.returncode == 0 and r.stdout.strip() else {"rc": r.returncode, "err": r.stderr}
check("quality_offload_q4_pack_is_resident_q4", q4o.get("kl_mean") == q4["kl_mean"] and
      q4o.get("delta_nats_per_byte") == q4["delta_nats_per_byte"] and q4o.get("precision") == "uniform:bits=4" and
      q4o.get("expert_bytes") == 192 * 31488, "%r vs %r" % (q4o, q4))
# two packs and hot-cold offloaded: the resident hot-cold numbers, exactly
subprocess.run([M, "model", "pack", "models/tinymix", "-o", T + "/q2.pack", "--dtype", "q2"], capture_output=True)
hc = "hot-cold:hot=8,hot_bits=4,cold_bits=2,profile=traces/tinymix_c.moetrace"
ro = subprocess.run(base + ["--json", "--precision", hc], capture_output=True, text=True)
oo = subprocess.run(base + ["--json", "--offload", T + "/q4.pack," + T + "/q2.pack", "--io", "buffered", "--capacity", "8",
                            "--precision", hc], capture_output=True, text=True)
try:
    rj, oj = json.loads(ro.stdout), json.loads(oo.stdout)
    ok = rj["kl_mean"] == oj["kl_mean"] and rj["delta_nats_per_byte"] == oj["delta_nats_per_byte"] and \
         oj["expert_bytes"] == rj["expert_bytes"] and oj["precision"] == hc
except Exception as e:
    ok, rj, oj = False, ro.stderr, oo.stderr
check("quality_offload_two_packs_is_resident_plan", ok, "%r vs %r" % (oj, rj))
# HOBBIT offloaded, at its limits: hi = 1 reads every miss from the 16-bit
# pack (the full model); hi = 0, lo = 1 from the 4-bit one (uniform 4-bit,
# exactly: without a prefetcher, whose reads are at the high tier)
hb = {}
for spec in ("hobbit:hi=1,lo=1", "hobbit:hi=0,lo=1"):
    r = subprocess.run(base + ["--json", "--offload", T + "/t.pack," + T + "/q4.pack", "--io", "buffered", "--capacity", "8",
                               "--precision", spec], capture_output=True, text=True)
    hb[spec] = json.loads(r.stdout) if r.returncode == 0 and r.stdout.strip() else {"rc": r.returncode, "err": r.stderr}
a, b = hb["hobbit:hi=1,lo=1"], hb["hobbit:hi=0,lo=1"]
check("quality_offload_hobbit_limits", a.get("kl_mean") == 0 and a.get("delta_nats_per_byte") == 0 and
      b.get("kl_mean") == q4["kl_mean"] and b.get("delta_nats_per_byte") == q4["delta_nats_per_byte"] and
      b.get("expert_bytes") == 192 * (110592 + 31488), "%r %r vs %r" % (a, b, q4))
# --on-miss lowbit: with nothing resident (no prefetcher) every slot runs its
# 2-bit copy: the resident 2-bit model exactly; with the prefetcher filling
# the cache it loses less than dropping the misses does
lb = {}
for name, extra in (("cold", []), ("warm", ["--prefetch", "gate:ahead=1"])):
    r = subprocess.run(base + ["--json", "--offload", T + "/t.pack," + T + "/q2.pack", "--io", "buffered",
                               "--capacity", "16", "--on-miss", "lowbit"] + extra, capture_output=True, text=True)
    lb[name] = json.loads(r.stdout) if r.returncode == 0 and r.stdout.strip() else {"rc": r.returncode, "err": r.stderr}
check("quality_lowbit_cold_is_resident_q2", lb["cold"].get("kl_mean") == q2["kl_mean"] and
      lb["cold"].get("delta_nats_per_byte") == q2["delta_nats_per_byte"] and
      "on-miss lowbit:bits=2" in lb["cold"].get("constraint", ""), "%r vs %r" % (lb["cold"], q2))
check("quality_lowbit_warm_between", 0 < lb["warm"].get("kl_mean", 0) < min(q2["kl_mean"], sk.get("kl_mean", 0)),
      "lowbit %r, resident q2 %r, skip %r" % (lb["warm"], q2.get("kl_mean"), sk.get("kl_mean")))
check("quality_offload_wait_is_full", w.get("delta_nats_per_byte") == 0 and w.get("kl_mean") == 0 and
      w.get("top1_agreement") == 1 and "on-miss wait" in w.get("constraint", ""), str(w))
check("quality_offload_skip_costs", sk.get("kl_mean", 0) > 0.01 and sk.get("delta_nats_per_byte", 0) > 0 and
      su.get("kl_mean", 0) > 0.01 and "on-miss substitute" in su.get("constraint", ""), "%r %r" % (sk, su))

# free generation and the results store: 16 bits generates the full
# model's bytes (no divergence, the same repetition); each row is a run
import os, sqlite3
db = T + "/q.db"
r = subprocess.run(base + ["--json", "--generate", "200", "--precision", "uniform:bits=16", "--precision",
                           "uniform:bits=2", "--db", db, "--experiment", "qt"], capture_output=True, text=True)
rows = [json.loads(l) for l in r.stdout.splitlines()] if r.returncode == 0 else []
if len(rows) == 2:
    a, b = rows
    check("quality_generate_16bit_same", a["first_divergence"] == 200 and a["repetition"] == a["repetition_full"] and
          a["tok_s"] > 0, str(a))
    check("quality_generate_2bit_departs", b["first_divergence"] < 200 and 0 <= b["repetition"] <= 1, str(b))
    con = sqlite3.connect(db)
    kinds = con.execute("select count(*) from run_config where key='kind' and value='quality'").fetchone()[0]
    stored = dict(con.execute("select m.name, m.value from metrics m join run_config c on m.run_id = c.run_id "
                              "where c.key='constraint' and c.value='uniform:bits=2'").fetchall())
    check("quality_db_rows", kinds == 2 and abs(stored.get("kl_mean", -1) - b["kl_mean"]) < 1e-12 and
          stored.get("first_divergence") == b["first_divergence"], "%d runs, %r" % (kinds, stored))
else:
    check("quality_generate_runs", False, "exit %d: %s" % (r.returncode, r.stderr))

def refused(name, args, needle):
    r = subprocess.run(base + args, capture_output=True, text=True)
    check(name, r.returncode != 0 and needle in r.stderr and not r.stdout, "exit %d: %s" % (r.returncode, r.stderr))

refused("quality_bad_bits", ["--precision", "uniform:bits=5"], "--precision uniform:bits=5")
refused("quality_offload_pack_lacks_tier", off + ["--precision", "uniform:bits=4"], "at 4 bits; the packs hold bf16")
refused("quality_bad_on_miss", off + ["--on-miss", "fallback"], "unknown --on-miss mode 'fallback'")
refused("quality_lowbit_without_low_copy", off + ["--on-miss", "lowbit"], "none of the packs given to --offload is quantized")
refused("quality_profile_geometry", ["--precision", "mlx-tiers:profile=traces/default.moetrace"],
        "precision profile traces/default.moetrace has")
# grid files and options that cannot work are refused, naming the place
with open(T + "/g1.ini", "w") as f:
    f.write("[quality]\nmodel = models/tinymix\n[bogus]\nx = 1\n")
with open(T + "/g2.ini", "w") as f:
    f.write("[quality]\nmodel = models/tinymix\n[text a]\noffset = 3\n")
with open(T + "/g3.ini", "w") as f:
    f.write("[quality]\nmodel = models/tinymix\n[text a]\nfile = %s\n[offload]\ncapacities = 8\n"
            "on_miss = lowbit\n" % text)
for name, args, needle in (
        ("quality_grid_unknown_section", ["--grid", T + "/g1.ini"], "g1.ini:3: unknown section [bogus]"),
        ("quality_grid_lowbit_needs_low_pack", ["--grid", T + "/g3.ini"],
         "g3.ini: [offload] on_miss lowbit needs low_pack = PATH"),
        ("quality_grid_text_needs_file", ["--grid", T + "/g2.ini"], "g2.ini:3: [text a] needs file = PATH"),
        ("quality_pin_needs_profile", ["--model", "models/tinymix", "--text-file", text, "--pin", "4"],
         "--pin N and --pin-profile TRACE go together"),
        ("quality_offset_past_end", ["--model", "models/tinymix", "--text-file", text, "--text-offset", "600"],
         "--text-offset 600 is past its 512 bytes")):
    r = subprocess.run([M, "quality"] + args, capture_output=True, text=True)
    check(name, r.returncode == 1 and needle in r.stderr and not r.stdout, "exit %d: %s" % (r.returncode, r.stderr))
r = subprocess.run([M, "quality", "--model", "models/tinymix", "--text-file", T + "/none.txt"],
                   capture_output=True, text=True)
check("quality_missing_text", r.returncode == 1 and "none.txt" in r.stderr, r.stderr)
PY
