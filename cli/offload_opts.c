/* offload_opts.c: offloaded-run options (see offload_opts.h). */
#include "offload_opts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../backend/pack.h"
#include "../core/on_miss.h"
#include "../core/precision.h"
#include "../core/prefetch.h"
#include "cli.h"
#include "../sim/replay.h"
#include "../sim/replay_ext.h"
#include "../sim/replay_opts.h"

const char moe_offload_opts_help[] =
    "offloaded execution (experts streamed from an expert pack into a bounded cache):\n"
    "  --offload PACK|auto  expert pack (`moesim model pack`); auto = DIR/experts.pack,\n"
    "                       packed first if missing\n"
    "  --policy P           eviction policy (default lru; `moesim policies`)\n"
    "  --capacity C         experts per layer (per-layer scope) or in all (global); or\n"
    "                       bytes in all (e.g. 4MiB) or P% of all experts, rounded down\n"
    "                       to whole experts\n"
    "  --scope S            per-layer (default) or global\n"
    "  --cold-per-seq       empty the caches when a new sequence starts\n"
    "  --split S            per-layer capacity split (uniform, fate[:shallow=S],\n"
    "                       adapmoe:profile=PATH)\n"
    "  --prefetch X         prefetcher computed from the live hidden state: gate[:ahead=D,n=J],\n"
    "                       transition, history, topn\n"
    "  --prefetch-log F     write every prediction (replayable: --prefetch log:file=F)\n"
    "  --io MODE            direct (O_DIRECT pread: the device's cost, default),\n"
    "                       buffered (pread through the page cache), mmap (memcpy)\n"
    "  --io-threads N       I/O threads serving the read queue (the I/O channels)\n"
    "  --prefill-chunk N    prompt tokens per step (1..32, default 32)\n"
    "  --offload A,B,...    several packs of one model (each its own dtype: `model pack\n"
    "                       --dtype`) with --precision S, a static scheme (uniform,\n"
    "                       mlx-tiers or hot-cold with profile=TRACE): each expert is\n"
    "                       read from the pack of its tier; or hobbit: a miss is read\n"
    "                       from the pack of the highest tier its tokens need\n"
    "  --on-miss M          wait (default: read it and wait), skip (drop the slot,\n"
    "                       rescale the token's other weights), substitute (run\n"
    "                       the resident expert the router scores highest instead)\n"
    "                       or lowbit[:bits=B] (run the expert's copy from the\n"
    "                       quantized pack of B bits, or fewest bits, among --offload,\n"
    "                       read whole into memory at start: --offload\n"
    "                       experts.pack,q2.pack); all but wait read nothing on a miss\n"
    "  --skip S             cum=0.9 (skip-on-miss past this cumulative gate weight)\n"
    "                       and/or topk_frac=0.3 (adaptive top-k: drop a slot below\n"
    "                       0.3 x the token's top-1), as the simulator's --skip\n"
    "  --save-state F       save the resident experts at the end\n"
    "  --load-state F       pre-read a saved state before the first step\n"
    "  --steps-out F        per-step measured figures as CSV (step, phase, tokens,\n"
    "                       seconds, accesses, hits)\n"
    "  --seed N             seed of randomised policies (default 1)\n"
    "  --route-from TRACE   execute TRACE's routing (its steps, token counts, experts,\n"
    "                       gate weights and lookahead) instead of a prompt, on a model\n"
    "                       of its geometry (`moesim model synth`): the router is still\n"
    "                       computed and paid for, then overridden\n"
    "  --route-steps N      only the trace's first N steps (default: all)\n"
    "  --route-truncate     a model of fewer layers than the trace (`model synth\n"
    "                       --keep-layers`) executes the trace's first layers\n"
    "  --stream-dense[=B]   stream each layer's dense weights (attention, norms,\n"
    "                       shared expert) from the dense pack too, within B layer\n"
    "                       buffers (default 2, at least 1, fewer than the layers):\n"
    "                       layer l+B-1 is queued behind layer l's demand reads\n"
    "  --dense-pack F       the dense pack (`moesim model pack DIR --dense`; default\n"
    "                       DIR/dense.pack)\n";

static int opt_set(moe_offload_opts *o, const char *name, const char *v, moe_error *err);

void moe_offload_opts_init(moe_offload_opts *o) {
    memset(o, 0, sizeof *o);
    o->policy = "lru";
    o->seed = 1;
    o->io_mode = MOE_IO_DIRECT;
}

int moe_offload_opt_set(moe_offload_opts *o, const char *name, const char *v, moe_error *err) {
    int rc = opt_set(o, name, v, err);
    if (rc == 0 && strcmp(name, "offload") && !o->n_set++) o->first_set = name;
    return rc;
}

static int opt_set(moe_offload_opts *o, const char *name, const char *v, moe_error *err) {
    if (!strcmp(name, "offload")) o->pack = v;
    else if (!strcmp(name, "policy")) o->policy = v;
    else if (!strcmp(name, "capacity")) o->capacity = v;
    else if (!strcmp(name, "scope")) {
        int scope;
        if (moe_scope_parse(v, &scope, err)) return -1;
        o->global = scope == MOE_SCOPE_GLOBAL;
    } else if (!strcmp(name, "cold-per-seq")) o->cold_per_seq = 1;
    else if (!strcmp(name, "seed")) return cli_parse_u64("--seed", v, UINT64_MAX, &o->seed, err) ? -1 : 0;
    else if (!strcmp(name, "split")) o->split = v;
    else if (!strcmp(name, "prefetch")) {
        char canon[256];
        if (moe_prefetch_canonical(v, canon, sizeof canon, err)) return -1;
        o->prefetch = strcmp(canon, "none") ? v : NULL;
    } else if (!strcmp(name, "prefetch-log")) o->prefetch_log = v;
    else if (!strcmp(name, "save-state")) o->save_state = v;
    else if (!strcmp(name, "load-state")) o->load_state = v;
    else if (!strcmp(name, "steps-out")) o->steps_out = v;
    else if (!strcmp(name, "on-miss")) return moe_on_miss_parse(v, &o->on_miss, err) ? -1 : 0;
    else if (!strcmp(name, "precision")) {
        char canon[512];
        if (moe_precision_canonical(v, canon, sizeof canon, err)) return -1;
        o->precision = v;
    }
    else if (!strcmp(name, "skip")) {
        double a, b;
        char canon[128];
        /* two --skip would silently keep the last: its two rules combine in one spec */
        if (o->skip)
            return moe_fail(err, "--skip given twice (%s, %s): give both rules in one, e.g. --skip cum=0.9,topk_frac=0.3",
                            o->skip, v);
        if (moe_skip_parse(v, &a, &b, canon, sizeof canon, err)) return -1;
        o->skip = v;
    }
    else if (!strcmp(name, "speculate"))
        /* the backend computes on the cores that would run a speculated
         * expert: there is no idle compute lane for it to fill */
        return moe_fail(err, "--speculate is a simulator option: this CPU backend has no idle compute lane to run "
                             "predicted experts in while it waits for I/O (README, Offloaded execution)");
    else if (!strcmp(name, "io")) return moe_io_mode_parse(v, &o->io_mode, err) ? -1 : 0;
    else if (!strcmp(name, "io-threads")) {
        if (cli_parse_u64("--io-threads", v, 64, &o->io_threads, err)) return -1;
        if (!o->io_threads) return moe_fail(err, "--io-threads: at least 1");
    } else if (!strcmp(name, "stream-dense")) {
        uint64_t b = 2; /* the current layer and the next: the smallest budget that overlaps */
        if (v && cli_parse_u64("--stream-dense", v, MOE_CFG_MAX_LAYERS, &b, err)) return -1;
        if (!b) return moe_fail(err, "--stream-dense=0: at least 1 layer buffer (the layer being computed)");
        o->stream_dense = (uint32_t)b;
    } else if (!strcmp(name, "dense-pack")) o->dense_pack = v;
    else if (!strcmp(name, "route-from")) o->route_from = v;
    else if (!strcmp(name, "route-truncate")) o->route_truncate = 1;
    else if (!strcmp(name, "route-steps")) {
        if (cli_parse_u64("--route-steps", v, UINT32_MAX, &o->route_steps, err)) return -1;
        if (!o->route_steps) return moe_fail(err, "--route-steps: at least 1");
    } else if (!strcmp(name, "prefill-chunk")) {
        if (cli_parse_u64("--prefill-chunk", v, MOE_ENGINE_MAX_STEP, &o->prefill_chunk, err)) return -1;
        if (!o->prefill_chunk) return moe_fail(err, "--prefill-chunk: at least 1");
    } else return 1;
    return 0;
}

int moe_offload_pack_path(const moe_offload_opts *o, const char *model_dir, char *out, size_t cap, moe_error *err) {
    if (strcmp(o->pack, "auto")) {
        snprintf(out, cap, "%s", o->pack);
        return 0;
    }
    snprintf(out, cap, "%s/experts.pack", model_dir);
    struct stat sb;
    if (stat(out, &sb) == 0) return 0;
    /* auto: pack once, exactly: bf16 stays bf16, f16 and f32 become f32 */
    fprintf(stderr, "moesim: %s does not exist; packing the experts of %s first\n", out, model_dir);
    moe_model *m = moe_model_load(model_dir, err);
    if (!m) return -1;
    int rc = moe_pack_write(m, out, strcmp(m->dtype, "BF16") ? MOE_PACK_F32 : MOE_PACK_BF16, NULL, NULL, err);
    moe_model_free(m);
    return rc;
}

int moe_offload_dense_path(const moe_offload_opts *o, const char *model_dir, char *out, size_t cap, moe_error *err) {
    out[0] = 0;
    if (!o->stream_dense) {
        if (o->dense_pack) return moe_fail(err, "--dense-pack is read by --stream-dense: add it");
        return 0;
    }
    if (o->dense_pack) snprintf(out, cap, "%s", o->dense_pack);
    else snprintf(out, cap, "%s/dense.pack", model_dir);
    struct stat sb;
    if (stat(out, &sb))
        return moe_fail(err, "%s: no dense pack for --stream-dense (make one: moesim model pack %s --dense%s%s)", out,
                        model_dir, o->dense_pack ? " -o " : "", o->dense_pack ? o->dense_pack : "");
    return 0;
}

unsigned moe_offload_load_flags(const moe_offload_opts *o) {
    return MOE_LOAD_NO_EXPERTS | (o->stream_dense ? MOE_LOAD_NO_DENSE : 0);
}

int moe_offload_config_of(const moe_offload_opts *o, const char *pack_path, const moe_model *m,
                          moe_offload_config *oc, moe_error *err) {
    memset(oc, 0, sizeof *oc);
    if (!o->capacity) return moe_fail(err, "--capacity is required with --offload");
    moe_replay_config rc = {0};
    if (moe_replay_parse_capacity(&rc, o->capacity, err)) return -1;
    uint32_t L = (uint32_t)m->cfg.n_moe_layers, E = (uint32_t)m->cfg.n_experts;
    uint64_t experts = rc.capacity;
    if (rc.capacity_bytes || rc.capacity_frac > 0) {
        moe_pack p;
        if (moe_pack_open(&p, pack_path, MOE_IO_BUFFERED, err)) return -1;
        uint64_t eb = p.expert_bytes;
        moe_pack_close(&p);
        uint64_t all = rc.capacity_bytes ? rc.capacity_bytes / eb
                                         : (uint64_t)(rc.capacity_frac * (double)L * E + 1e-9);
        experts = o->global ? all : all / L;
        fprintf(stderr, "moesim: --capacity %s = %llu experts %s (%llu bytes each)\n", o->capacity,
                (unsigned long long)experts, o->global ? "in all" : "per layer", (unsigned long long)eb);
    }
    uint64_t max = o->global ? (uint64_t)L * E : E;
    if (experts > max) experts = max; /* a cache larger than the key space holds every key */
    oc->pack = pack_path;
    oc->io_mode = o->io_mode;
    oc->io_threads = o->io_threads ? (uint32_t)o->io_threads : 1;
    oc->policy = o->policy;
    oc->capacity = (uint32_t)experts;
    oc->global = o->global;
    oc->cold_per_seq = o->cold_per_seq;
    oc->seed = o->seed;
    oc->split = o->split;
    oc->prefetch = o->prefetch;
    oc->prefetch_log = o->prefetch_log;
    oc->load_state = o->load_state;
    oc->on_miss = o->on_miss;
    oc->precision = o->precision;
    oc->stream_dense = o->stream_dense; /* oc->dense_pack: the caller's moe_offload_dense_path */
    if (o->skip) {
        char canon[128];
        if (o->on_miss)
            return moe_fail(err, "--skip cannot be combined with --on-miss %s: both drop slots", moe_on_miss_name(o->on_miss));
        if (moe_skip_parse(o->skip, &oc->skip_cum, &oc->skip_frac, canon, sizeof canon, err)) return -1;
    }
    return 0;
}
