/* fuzz_spec: policy, prefetcher, precision, split and skip specs and every
 * replay / offload option value, as a user types them on the command line
 * or in an experiment file. Input: lines "NAME=VALUE" (NAME without "--",
 * e.g. "policy=s3fifo:small=0.2"); each is applied as a replay option and
 * as an offload option; if the options pass the config check, the replay
 * runs on a small generated trace (4 layers, 8 experts, top-2, lookahead 1,
 * with weights), as `moesim run` would. Runs from the repository root
 * (device and model profiles are read from experiments/). */
#include "fuzz.h"
#include "../../core/trace_gen.h"
#include "../../cli/offload_opts.h"
#include "../../sim/replay.h"
#include "../../sim/replay_opts.h"

static moe_trace *small_trace(void) {
    static moe_trace *t;
    if (!t) {
        moe_gen_params p;
        moe_error err;
        moe_gen_defaults(&p);
        p.steps = 24, p.layers = 4, p.experts = 8, p.top_k = 2, p.seq_len = 8, p.prefill = 3;
        p.lookahead = 1, p.with_weights = 1, p.seed = 7;
        if (!(t = moe_trace_generate(&p, &err))) {
            fprintf(stderr, "fuzz_spec: %s\n", err.msg);
            abort();
        }
    }
    return t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    moe_error err;
    char *s = fuzz_string(data, n);
    moe_replay_config cfg = {.policy = "lru", .capacity = 2, .seed = 1};
    moe_offload_opts oo;
    moe_offload_opts_init(&oo);
    int ok = 1;
    for (char *line = s, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        char *eq = strchr(line, '=');
        if (!eq) continue;
        *eq = 0;
        /* cfg borrows the strings: s lives until the replay is done */
        if (strcmp(line, "capacity") == 0) {
            if (moe_replay_parse_capacity(&cfg, eq + 1, &err) != 0) ok = 0;
        } else if (moe_replay_opt_set(&cfg, line, eq + 1, &err) != 0) {
            ok = 0;
        }
        (void)moe_offload_opt_set(&oo, line, eq + 1, &err);
    }
    /* state files would be read or written: fuzz_cache_state covers them */
    cfg.load_state = cfg.save_state = NULL;
    cfg.devices_path = cfg.models_path = NULL; /* profile files: fuzz_profile */
    if (cfg.capacity_bytes > (1ull << 40)) ok = 0;
    if (ok && moe_replay_config_check(&cfg, &err) == 0) {
        moe_replay_result r;
        memset(&r, 0, sizeof r);
        if (moe_replay(small_trace(), &cfg, &r, &err) == 0) moe_replay_result_free(&r);
    }
    free(s);
    return 0;
}
