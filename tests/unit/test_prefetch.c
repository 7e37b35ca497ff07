/* test_prefetch.c: each prefetcher's predictions, prefetch metrics, and
 * skipping (skip-on-miss, adaptive top-k) on hand-worked traces. No device:
 * counts only. */
#include "../../core/prefetch.h"
#include "../../sim/replay.h"
#include "../../sim/replay_ext.h"
#include "check.h"
#include "tracemaker.h"

static uint32_t predict_after(moe_prefetcher *p, const moe_trace *t, uint64_t s, uint32_t l, uint32_t *target,
                              uint16_t *out) {
    /* feed the router sets of every (step, layer) up to (s, l) */
    uint16_t set[64];
    uint32_t nt[64];
    for (uint64_t st = 0; st <= s; st++)
        for (uint32_t ly = 0; ly < t->n_layers && (st < s || ly <= l); ly++) {
            uint32_t n = 0;
            for (uint64_t tok = t->step_first_token[st]; tok < t->step_first_token[st + 1]; tok++) {
                size_t r = moe_trace_rec(t, tok, ly);
                for (uint32_t k = 0; k < t->top_k && t->experts[r + k] != MOE_NO_EXPERT; k++) {
                    uint32_t i = 0;
                    while (i < n && set[i] != t->experts[r + k]) i++;
                    if (i == n) { set[n] = t->experts[r + k]; nt[n++] = 0; }
                    nt[i]++;
                }
            }
            for (uint32_t i = 1; i < n; i++)
                for (uint32_t j = i; j && set[j - 1] > set[j]; j--) {
                    uint16_t a = set[j]; set[j] = set[j - 1]; set[j - 1] = a;
                    uint32_t b = nt[j]; nt[j] = nt[j - 1]; nt[j - 1] = b;
                }
            p->ops->observe(p->st, st, ly, set, nt, n);
        }
    return p->ops->predict(p->st, s, l, target, out);
}

static moe_prefetcher *mk(const char *spec, const moe_trace *t) {
    moe_error err;
    moe_prefetch_env env = {t, t->n_layers, t->n_experts, t->top_k, 1};
    moe_prefetcher *p = moe_prefetcher_new(spec, &env, &err);
    if (!p) printf("  %s: %s\n", spec, err.msg);
    return p;
}

/* transition: step 0 shows L0 {0} -> L1 {1,2} and step 1 L0 {3} -> L1 {2};
 * at step 2 with L0 {0,3} the scores are 1:1, 2:2 -> n=1 predicts {2}. */
static void transition_learns_online(void) {
    moe_trace *t = make_trace(2, 4, 2, "0|1,2 / 3|2 / 0,3|1");
    CHECK(t);
    moe_prefetcher *p = mk("transition:hops=1,n=1", t);
    CHECK(p);
    CHECK(!strcmp(p->canonical, "transition:hops=1,n=1"));
    uint16_t out[4];
    uint32_t target = 99;
    CHECK_EQ_U(predict_after(p, t, 0, 0, &target, out), 0); /* nothing learned yet */
    moe_prefetcher_free(p);
    p = mk("transition:n=2", t);
    CHECK_EQ_U(predict_after(p, t, 2, 0, &target, out), 2);
    CHECK_EQ_U(target, 1);
    CHECK_EQ_U(out[0], 1);
    CHECK_EQ_U(out[1], 2);
    moe_prefetcher_free(p);
    p = mk("transition:n=1", t);
    CHECK_EQ_U(predict_after(p, t, 2, 0, &target, out), 1);
    CHECK_EQ_U(out[0], 2);
    moe_prefetcher_free(p);
    moe_trace_free(t);
}

/* topn: counts of layer 1 after two steps: 1:1, 2:2 -> n=1 gives {2}; ties
 * go to the lower id. */
static void topn_counts_frequency(void) {
    moe_trace *t = make_trace(2, 4, 2, "0|1,2 / 3|2,3 / 0|1");
    CHECK(t);
    moe_prefetcher *p = mk("topn:n=1", t);
    uint16_t out[4];
    uint32_t target;
    CHECK_EQ_U(predict_after(p, t, 2, 0, &target, out), 1);
    CHECK_EQ_U(out[0], 2);
    moe_prefetcher_free(p);
    p = mk("topn:n=2", t);
    CHECK_EQ_U(predict_after(p, t, 2, 0, &target, out), 2);
    CHECK_EQ_U(out[0], 1); /* 1 and 3 tie at 1: lower id */
    CHECK_EQ_U(out[1], 2);
    moe_prefetcher_free(p);
    moe_trace_free(t);
}

/* history: sequence 0 uses L0 {0}, L1 {1}; sequence 1 L0 {2}, L1 {3}.
 * Sequence 2 starts with L0 {2}: the closest stored EAM is sequence 1's, so
 * L1 {3} is predicted. During sequence 0 nothing is stored: no prediction. */
static void history_matches_closest_sequence(void) {
    moe_trace *t = make_trace(2, 4, 1, "s0: 0|1 / 0|1 / s1: 2|3 / s2: 2|0");
    CHECK(t);
    moe_prefetcher *p = mk("history:n=1", t);
    uint16_t out[4];
    uint32_t target;
    CHECK_EQ_U(predict_after(p, t, 1, 0, &target, out), 0);
    moe_prefetcher_free(p);
    p = mk("history:n=1", t);
    CHECK_EQ_U(predict_after(p, t, 3, 0, &target, out), 1);
    CHECK_EQ_U(out[0], 3);
    moe_prefetcher_free(p);
    moe_trace_free(t);
}

static void unknown_and_bad_specs(void) {
    char c[256];
    moe_error err;
    CHECK(moe_prefetch_canonical("nosuch", c, sizeof c, &err) == -1);
    CHECK_STR_CONTAINS(err.msg, "unknown prefetcher 'nosuch' (known: none, gate, transition, history, topn, oracle, log)");
    CHECK(moe_prefetch_canonical("topn:x=1", c, sizeof c, &err) == -1);
    CHECK_STR_CONTAINS(err.msg, "unknown option 'x'");
    CHECK(moe_prefetch_canonical("gate", c, sizeof c, &err) == 0);
    CHECK(!strcmp(c, "gate:ahead=1,n=0"));
}

/* Metrics on a hand-worked replay: 2 layers, top-1, capacity 1, topn:n=1.
 * steps (L0|L1): 0|1, 0|1, 0|2, 0|2
 *  s0: L1 no prediction yet before L0 observed? topn predicts after L0's
 *      observe; counts of L1 are empty -> no prediction. L1 e1 miss.
 *  s1: predict L1 {1} (count 1): resident -> no read. L1 e1 hit.
 *  s2: predict {1} (count 2): resident. L1 e2 miss (evicts 1).
 *  s3: predict {1} (1:2, 2:1): not resident -> prefetch evicts e2; L1 needs
 *      e2: miss (a collision? no: e2 was not prefetched) and e2 evicts the
 *      unused prefetched e1 -> evicted unused 1.
 * precision = correct / predicted = 1/3 (s1 right, s2 and s3 wrong);
 * recall = 1/3 over the 3 predicted layers. */
static void prefetch_metrics(void) {
    moe_trace *t = make_trace(2, 4, 1, "0|1 / 0|1 / 0|2 / 0|2");
    CHECK(t);
    moe_replay_config c = {.policy = "lru", .capacity = 1, .seed = 1, .prefetch = "topn:n=1"};
    moe_replay_result r;
    moe_error err;
    CHECK(moe_replay(t, &c, &r, &err) == 0);
    moe_replay_ext *x = r.ext;
    CHECK_EQ_U(x->pf_predictions, 3);
    CHECK_EQ_U(x->pf_predicted, 3);
    CHECK_EQ_U(x->pf_correct, 1);
    CHECK_NEAR(x->pf_precision, 1.0 / 3, 1e-12);
    CHECK_NEAR(x->pf_recall, 1.0 / 3, 1e-12);
    CHECK_EQ_U(x->pf_issued, 1);
    CHECK_EQ_U(x->pf_evicted_unused, 1);
    CHECK_EQ_U(x->pf_useful, 0);
    CHECK_EQ_U(r.hits, 4); /* L0 x3, L1 s1 */
    moe_replay_result_free(&r);
    moe_trace_free(t);
}

/* Collision miss: the prefetched expert is evicted by another prefetch
 * before use, then demanded. 1 layer cannot prefetch; use 2 layers with
 * global scope, capacity 1: s0 L0 e0 miss; oracle prefetches L1 e1 into the
 * same pool, but L0's e0 is protected -> bypassed. Capacity 2: e1 inserted,
 * used (useful). */
static void prefetch_bypass_and_use(void) {
    moe_trace *t = make_trace(2, 4, 1, "0|1");
    CHECK(t);
    moe_replay_config c = {.policy = "lru", .capacity = 1, .scope = MOE_SCOPE_GLOBAL, .seed = 1, .prefetch = "oracle"};
    moe_replay_result r;
    moe_error err;
    CHECK(moe_replay(t, &c, &r, &err) == 0);
    CHECK_EQ_U(r.ext->pf_bypassed, 1);
    CHECK_EQ_U(r.hits, 0);
    moe_replay_result_free(&r);
    c.capacity = 2;
    CHECK(moe_replay(t, &c, &r, &err) == 0);
    CHECK_EQ_U(r.ext->pf_useful, 1);
    CHECK_EQ_U(r.hits, 1);
    CHECK_EQ_U(r.compulsory_misses, 1);
    moe_replay_result_free(&r);
    moe_trace_free(t);
}

/* Skipping. tracemaker weights are 1/(slot+1): top-3 slots 1, 1/2, 1/3,
 * normalised 6/11, 3/11, 2/11 (cumulative before each: 0, 6/11, 9/11).
 * topk_frac=0.4: slot 2 (1/3 < 0.4) dropped -> mass 2/11 per token-layer.
 * cum=0.8 (skip-on-miss): slot 2 (9/11 >= 0.8) dropped when not resident. */
static void skip_rules(void) {
    moe_trace *t = make_trace(1, 8, 3, "0,1,2 / 0,1,2");
    CHECK(t);
    moe_replay_config c = {.policy = "lru", .capacity = 8, .seed = 1, .skip = "topk_frac=0.4"};
    moe_replay_result r;
    moe_error err;
    CHECK(moe_replay(t, &c, &r, &err) == 0);
    CHECK_EQ_U(r.accesses, 4);
    CHECK_EQ_U(r.ext->skipped_slots, 2);
    CHECK_EQ_U(r.ext->skipped_activations, 2);
    CHECK_NEAR(r.ext->skipped_mass_frac, 2.0 / 11, 1e-6); /* float weights */
    moe_replay_result_free(&r);
    /* skip-on-miss: step 0 nothing resident -> expert 2 skipped; step 1 it is
     * still not resident -> skipped again; 0 and 1 hit. */
    c.skip = "cum=0.8";
    CHECK(moe_replay(t, &c, &r, &err) == 0);
    CHECK_EQ_U(r.ext->skipped_slots, 2);
    CHECK_EQ_U(r.hits, 2);
    moe_replay_result_free(&r);
    /* resident experts are never skipped: warm expert 2 first */
    moe_trace *t2 = make_trace(1, 8, 3, "2 / 0,1,2");
    c.skip = "cum=0.8";
    CHECK(moe_replay(t2, &c, &r, &err) == 0);
    CHECK_EQ_U(r.ext->skipped_slots, 0);
    moe_replay_result_free(&r);
    c.skip = "cum=0";
    CHECK(moe_replay(t2, &c, &r, &err) == -1);
    CHECK_STR_CONTAINS(err.msg, "skip: give cum=X and/or topk_frac=Y");
    moe_trace_free(t2);
    moe_trace_free(t);
}

int main(void) {
    RUN(transition_learns_online);
    RUN(topn_counts_frequency);
    RUN(history_matches_closest_sequence);
    RUN(unknown_and_bad_specs);
    RUN(prefetch_metrics);
    RUN(prefetch_bypass_and_use);
    RUN(skip_rules);
    CHECK_EXIT();
}
