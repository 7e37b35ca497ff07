/* test_precision.c: precision schemes, byte-capacity caches, mixed sizes. */
#include "../../core/cache.h"
#include "../../core/device_profile.h"
#include "../../core/precision.h"
#include "../../sim/replay.h"
#include "../../sim/replay_ext.h"
#include "../../sim/replay_opts.h"
#include "check.h"
#include "tracemaker.h"

static void mlx_thresholds(void) {
    CHECK_EQ_U(moe_precision_mlx_tier(0.16), MOE_PREC_F16);
    CHECK_EQ_U(moe_precision_mlx_tier(0.15), MOE_PREC_Q8); /* > 15% for FP16 */
    CHECK_EQ_U(moe_precision_mlx_tier(0.08), MOE_PREC_Q8);
    CHECK_EQ_U(moe_precision_mlx_tier(0.0799), MOE_PREC_Q4);
    CHECK_EQ_U(moe_precision_mlx_tier(0.05), MOE_PREC_Q4);
    CHECK_EQ_U(moe_precision_mlx_tier(0.03), MOE_PREC_Q3);
    CHECK_EQ_U(moe_precision_mlx_tier(0.019), MOE_PREC_Q2);
    CHECK_EQ_U(moe_precision_mlx_tier(0), MOE_PREC_Q2);
}

/* 10 tokens, top-1, one layer: expert 0 x6, 1 x2, 2 x1, 3 x1 (frequencies
 * .6 .2 .1 .1; 4..19: 0). mlx: 0,1 -> f16; 2,3 -> q8; rest q2.
 * hot-cold:hot=2: 0, 1 hot (q4), 2 and the rest cold (q2; 2 ties with 3,
 * the lower id would win a third hot slot). */
static void frequency_schemes(void) {
    moe_trace *t = make_trace(1, 20, 1, "0/0/0/0/0/0/1/1/2/3");
    CHECK(t);
    moe_precision_plan p;
    moe_error err;
    CHECK(moe_precision_plan_new("mlx-tiers", t, &p, &err) == 0);
    CHECK(!strcmp(p.canonical, "mlx-tiers:profile=oracle"));
    CHECK(p.profile_oracle);
    CHECK_EQ_U(p.tier[0], MOE_PREC_F16);
    CHECK_EQ_U(p.tier[1], MOE_PREC_F16);
    CHECK_EQ_U(p.tier[2], MOE_PREC_Q8);
    CHECK_EQ_U(p.tier[5], MOE_PREC_Q2);
    moe_precision_plan_free(&p);
    CHECK(moe_precision_plan_new("hot-cold:hot=2", t, &p, &err) == 0);
    CHECK(!strcmp(p.canonical, "hot-cold:hot=2,hot_bits=4,cold_bits=2,profile=oracle"));
    CHECK_EQ_U(p.tier[0], MOE_PREC_Q4);
    CHECK_EQ_U(p.tier[1], MOE_PREC_Q4);
    CHECK_EQ_U(p.tier[2], MOE_PREC_Q2);
    moe_precision_plan_free(&p);
    CHECK(moe_precision_plan_new("hot-cold:hot=3", t, &p, &err) == 0);
    CHECK_EQ_U(p.tier[2], MOE_PREC_Q4);
    CHECK_EQ_U(p.tier[3], MOE_PREC_Q2);
    moe_precision_plan_free(&p);
    CHECK(moe_precision_plan_new("uniform:bits=5", t, &p, &err) == -1);
    CHECK_STR_CONTAINS(err.msg, "bits=5 is not a tier");
    CHECK(moe_precision_plan_new("hobbit:hi=0.9,lo=0.5", t, &p, &err) == -1);
    CHECK(moe_precision_plan_new("mlx-tiers:profile=/nonexistent.moetrace", t, &p, &err) == -1);
    CHECK_STR_CONTAINS(err.msg, "precision profile");
    moe_trace_free(t);
}

/* HOBBIT's rule on weights 1, 1/2, 1/3 (normalised 6/11, 3/11, 2/11;
 * cumulative before: 0, .545, .818): hi=0.6 lo=0.9 -> slot 0 f16, slot 1
 * f16 (.545 < .6), slot 2 q4 (.818 < .9). hi=0.5 -> slot 1 q4. lo=0.8 ->
 * slot 2 skipped. A miss is loaded at the tier its tokens need. */
static void hobbit_rule(void) {
    moe_trace *t = make_trace(1, 8, 3, "0,1,2");
    CHECK(t);
    moe_replay_config c = {.policy = "lru", .capacity = 8, .seed = 1, .precision = "hobbit",
                           .model = "tinymix", .models_path = "/tmp/moesim_prec_models.ini"};
    FILE *f = fopen(c.models_path, "w");
    fputs("[tinymix]\nlayers = 1\nexperts = 8\ntop_k = 3\nexpert_params = 1000\nquant_overhead_bits = 0\n", f);
    fclose(f);
    moe_replay_result r;
    moe_error err;
    CHECK(moe_replay(t, &c, &r, &err) == 0);
    CHECK_EQ_U(r.ext->tier_activations[MOE_PREC_F16], 2);
    CHECK_EQ_U(r.ext->tier_activations[MOE_PREC_Q4], 1);
    CHECK_EQ_U(r.ext->bytes_read, 2000 + 2000 + 500);
    CHECK_NEAR(r.ext->eff_bits_active, 12, 1e-12);
    moe_replay_result_free(&r);
    c.precision = "hobbit:hi=0.5";
    CHECK(moe_replay(t, &c, &r, &err) == 0);
    CHECK_EQ_U(r.ext->tier_activations[MOE_PREC_Q4], 2);
    moe_replay_result_free(&r);
    c.precision = "hobbit:lo=0.8";
    CHECK(moe_replay(t, &c, &r, &err) == 0);
    CHECK_EQ_U(r.accesses, 2);
    CHECK_EQ_U(r.ext->skipped_slots, 1);
    CHECK_NEAR(r.ext->skipped_mass_frac, 2.0 / 11, 1e-6);
    moe_replay_result_free(&r);
    remove(c.models_path);
    moe_trace_free(t);
}

/* The cache's byte budget: keys of 3, 2 and 2 bytes in a 5-byte cache (LRU).
 * insert 0 (3) -> used 3; insert 1 (2) -> 5; insert 2 (2): evict 0 -> 4;
 * insert 0 (3): evict 1 (LRU), still 5 > 5? 2 + 3 = 5 fits after one. A key
 * larger than the budget is bypassed. Count mode is unchanged. */
static void byte_budget_cache(void) {
    moe_error err;
    moe_policy_env env = {.n_keys = 4, .capacity = 1, .n_layers = 1, .n_experts = 4, .fixed_layer = 0};
    moe_cache *c = moe_cache_new("lru", &env, &err);
    CHECK(c);
    CHECK(moe_cache_set_byte_budget(c, 5, &err) == 0);
    uint64_t sz[4] = {3, 2, 2, 6};
    for (uint32_t k = 0; k < 4; k++) moe_cache_set_key_bytes(c, k, sz[k]);
    moe_access a = {.next_use = MOE_NEVER};
    int64_t v;
    moe_cache_begin_group(c);
    CHECK_EQ_U(moe_cache_access(c, 0, &a, &v), MOE_MISS_INSERTED);
    CHECK_EQ_U(moe_cache_access(c, 1, &a, &v), MOE_MISS_INSERTED);
    CHECK_EQ_U(c->used_bytes, 5);
    moe_cache_begin_group(c);
    CHECK_EQ_U(moe_cache_access(c, 2, &a, &v), MOE_MISS_INSERTED);
    CHECK_EQ_U(v, 0);
    CHECK_EQ_U(c->used_bytes, 4);
    moe_cache_begin_group(c);
    CHECK_EQ_U(moe_cache_access(c, 0, &a, &v), MOE_MISS_INSERTED);
    CHECK_EQ_U(v, 1);
    CHECK_EQ_U(c->last_evictions, 1);
    CHECK_EQ_U(c->used_bytes, 5);
    CHECK_EQ_U(moe_cache_access(c, 3, &a, &v), MOE_MISS_BYPASSED);
    /* two evictions for one admission: key 3 resized to 5 bytes */
    moe_cache_set_key_bytes(c, 3, 5);
    moe_cache_begin_group(c);
    CHECK_EQ_U(moe_cache_access(c, 3, &a, &v), MOE_MISS_INSERTED);
    CHECK_EQ_U(c->last_evictions, 2);
    CHECK_EQ_U(c->used, 1);
    CHECK(moe_cache_reset(c, &err) == 0);
    CHECK_EQ_U(c->used_bytes, 0);
    moe_cache_free(c);
}

static void capacity_parsing(void) {
    moe_replay_config c = {0};
    moe_error err;
    CHECK(moe_replay_parse_capacity(&c, "12GiB", &err) == 0);
    CHECK_EQ_U(c.capacity_bytes, 12ULL << 30);
    CHECK(moe_replay_parse_capacity(&c, "1.5GB", &err) == 0);
    CHECK_EQ_U(c.capacity_bytes, 1500000000ULL);
    CHECK(moe_replay_parse_capacity(&c, "40%", &err) == 0);
    CHECK_NEAR(c.capacity_frac, 0.4, 1e-15);
    CHECK_EQ_U(c.capacity_bytes, 0);
    CHECK(moe_replay_parse_capacity(&c, "7", &err) == 0);
    CHECK_EQ_U(c.capacity, 7);
    CHECK(c.capacity_frac == 0);
    CHECK(moe_replay_parse_capacity(&c, "2.5", &err) == -1);
    CHECK(moe_replay_parse_capacity(&c, "3 parsecs", &err) == -1);
    CHECK_STR_CONTAINS(err.msg, "unknown unit 'parsecs'");
    CHECK(moe_replay_parse_capacity(&c, "140%", &err) == -1);
    CHECK(moe_replay_opt_set(&c, "speculate", NULL, &err) == 0 && c.speculate == 1);
    CHECK(moe_replay_opt_set(&c, "cold_per_seq", "on", &err) == 0 && c.cold_per_seq == 1);
    CHECK(moe_replay_opt_set(&c, "prefetch", "gate:ahead=x", &err) == -1);
    CHECK(moe_replay_opt_set(&c, "output", "x", &err) == 1);
}

/* Byte capacity at 50% of all experts' bytes with hot-cold tiers: per-layer
 * budget, effective bits and tier bytes reported. 2 layers x 4 experts,
 * f16 1000 B, q4 250, q2 125 (no scale overhead). */
static void byte_capacity_replay(void) {
    moe_trace *t = make_trace(2, 4, 1, "0|1 / 0|2 / 1|1 / 0|3 / 0|1");
    CHECK(t);
    const char *mp = "/tmp/moesim_prec_models2.ini";
    FILE *f = fopen(mp, "w");
    fputs("[m]\nlayers = 2\nexperts = 4\ntop_k = 1\nexpert_params = 500\nquant_overhead_bits = 0\n", f);
    fclose(f);
    moe_replay_config c = {.policy = "lru", .seed = 1, .precision = "hot-cold:hot=1", .model = "m",
                           .models_path = mp, .capacity_frac = 0.5};
    moe_replay_result r;
    moe_error err;
    CHECK(moe_replay(t, &c, &r, &err) == 0);
    moe_replay_ext *x = r.ext;
    /* layer 0: 0 hot (q4 250), others q2 125 -> 625; layer 1: 1 hot -> 625;
     * all = 1250, half = 625 -> 312 per layer */
    CHECK_EQ_U(x->capacity_bytes, 624);
    CHECK_EQ_U(x->tier_experts[MOE_PREC_Q4], 2);
    CHECK_EQ_U(x->tier_experts[MOE_PREC_Q2], 6);
    CHECK_NEAR(x->eff_bits_model, (2 * 4 + 6 * 2) / 8.0, 1e-12);
    /* layer 0 (312 B): e0 (250) in; s1 hit; s2 e1 (125): 375 > 312 evicts
     * e0; s3 e0 evicts e1; s4 hit. Layer 1: hot e1 (250) never fits next
     * to another: no hits. */
    CHECK_EQ_U(r.hits, 2);
    CHECK_EQ_U(r.layer_hits[0], 2);
    CHECK_EQ_U(x->tier_bytes_read[MOE_PREC_Q4] + x->tier_bytes_read[MOE_PREC_Q2], x->bytes_read);
    moe_replay_result_free(&r);
    remove(mp);
    moe_trace_free(t);
}

int main(void) {
    RUN(mlx_thresholds);
    RUN(frequency_schemes);
    RUN(hobbit_rule);
    RUN(byte_budget_cache);
    RUN(capacity_parsing);
    RUN(byte_capacity_replay);
    CHECK_EXIT();
}
