/* test_trace_csv.c: CSV interchange: byte-exact CSV -> binary -> CSV,
 * array-exact binary -> CSV -> binary on generated traces (with and
 * without weights), row order within a step, geometry options, and the
 * bad-input messages (file:line: column). */
#include "../../core/trace_formats.h"
#include "../../core/trace_gen.h"
#include "check.h"
#include "trace_cmp.h"

static char pbuf[4][256];
static const char *tp(int i, const char *name) {
    snprintf(pbuf[i], sizeof pbuf[i], "%s/%s", test_tmpdir(), name);
    return pbuf[i];
}

static moe_trace *gen(int weights, uint64_t seed) {
    moe_gen_params p;
    moe_gen_defaults(&p);
    p.steps = 300, p.layers = 3, p.experts = 10, p.top_k = 2, p.seq_len = 40, p.prefill = 6;
    p.with_weights = weights, p.seed = seed;
    moe_error err;
    return moe_trace_generate(&p, &err);
}

static void bin_csv_bin_identical(void) {
    for (int w = 0; w < 2; w++) {
        moe_trace *t = gen(w, 100 + (uint64_t)w);
        CHECK(t);
        moe_error err;
        CHECK(moe_trace_save(t, tp(0, "a.moetrace"), &err) == 0);
        moe_trace *b = moe_trace_load(tp(0, "a.moetrace"), &err);
        CHECK(b);
        CHECK(moe_trace_save_csv(b, tp(1, "a.csv"), &err) == 0);
        moe_csv_opts o = {.layers = 3, .experts = 10, .top_k = 2};
        moe_trace *c = moe_trace_load_csv(tp(1, "a.csv"), &o, &err);
        if (!c) printf("%s\n", err.msg);
        CHECK(c);
        CHECK_EQ_U(trace_diff(t, c, 0), 0);
        CHECK(!c->weights == !w);
        moe_trace_free(t), moe_trace_free(b), moe_trace_free(c);
    }
}

static void csv_bin_csv_byte_identical(void) {
    moe_trace *t = gen(1, 7);
    CHECK(t);
    moe_error err;
    CHECK(moe_trace_save_csv(t, tp(0, "c1.csv"), &err) == 0); /* canonical CSV */
    moe_trace *a = moe_trace_load(tp(0, "c1.csv"), &err);
    CHECK(a);
    CHECK(moe_trace_save(a, tp(1, "c1.moetrace"), &err) == 0);
    moe_trace *b = moe_trace_load(tp(1, "c1.moetrace"), &err);
    CHECK(b);
    CHECK(moe_trace_save_csv(b, tp(2, "c2.csv"), &err) == 0);
    size_t n1, n2;
    char *x = slurp(tp(0, "c1.csv"), &n1), *y = slurp(tp(2, "c2.csv"), &n2);
    CHECK(x && y);
    CHECK(n1 == n2 && memcmp(x, y, n1) == 0);
    free(x), free(y);
    moe_trace_free(t), moe_trace_free(a), moe_trace_free(b);
}

/* Rows of a step in any order, empty weights, a missing layer, tokens of
 * two sequences in one step. */
static void any_order_within_step(void) {
    const char *csv =
        "step,seq,token,layer,slot,expert,weight\n"
        "0,0,0,1,0,3,\n"
        "0,0,0,0,1,1,\n"
        "0,0,1,0,0,2,\n"
        "0,0,0,0,0,0,\n"
        "5,1,9,0,0,4,\n"
        "5,0,9,0,0,1,\n"
        "5,2,2,1,0,0,\n";
    CHECK(spit(tp(0, "o.csv"), csv, strlen(csv)) == 0);
    moe_error err;
    moe_csv_opts o = {0};
    moe_trace *t = moe_trace_load_csv(tp(0, "o.csv"), &o, &err);
    if (!t) printf("%s\n", err.msg);
    CHECK(t);
    CHECK_EQ_U(t->n_layers, 2);
    CHECK_EQ_U(t->top_k, 2);
    CHECK_EQ_U(t->n_experts, 5);
    CHECK(t->weights == NULL);
    CHECK_EQ_U(t->n_steps, 2);
    CHECK_EQ_U(t->n_tokens, 5);
    CHECK_EQ_U(t->step_id[1], 5);
    CHECK_EQ_U(t->step_phase[0], MOE_PHASE_PREFILL);
    CHECK_EQ_U(t->step_phase[1], MOE_PHASE_DECODE);
    /* token order in step 0: token 0 then 1; step 1: (2,seq2), (9,seq0), (9,seq1) */
    CHECK_EQ_U(t->experts[moe_trace_rec(t, 0, 0)], 0);
    CHECK_EQ_U(t->experts[moe_trace_rec(t, 0, 0) + 1], 1);
    CHECK_EQ_U(t->experts[moe_trace_rec(t, 0, 1)], 3);
    CHECK_EQ_U(t->experts[moe_trace_rec(t, 1, 1)], MOE_NO_EXPERT);
    CHECK_EQ_U(t->token_pos[2], 2);
    CHECK_EQ_U(t->token_seq[3], 0);
    CHECK_EQ_U(t->experts[moe_trace_rec(t, 3, 0)], 1);
    CHECK_EQ_U(t->token_seq[4], 1);
    CHECK_EQ_U(t->experts[moe_trace_rec(t, 4, 0)], 4);
    moe_trace_free(t);
}

/* Load text as a CSV file and expect an error containing every needle. */
static int bad(const char *text, const moe_csv_opts *o, const char *n1, const char *n2) {
    moe_error err = {{0}};
    if (spit(tp(3, "bad.csv"), text, strlen(text))) return 0;
    moe_trace *t = moe_trace_load_csv(tp(3, "bad.csv"), o, &err);
    if (t) { moe_trace_free(t); printf("  accepted: %s\n", text); return 0; }
    if (!strstr(err.msg, "bad.csv") || !strstr(err.msg, n1) || (n2 && !strstr(err.msg, n2))) {
        printf("  message '%s' lacks '%s' / '%s'\n", err.msg, n1, n2 ? n2 : "");
        return 0;
    }
    return 1;
}

#define H "step,seq,token,layer,slot,expert,weight\n"
static void bad_inputs(void) {
    moe_csv_opts o = {0}, g = {.layers = 2, .experts = 32, .top_k = 2};
    CHECK(bad("", &o, ":1:", "empty"));
    CHECK(bad(H, &o, ":2:", "no data"));
    CHECK(bad("step,seq,tok,layer,slot,expert,weight\n0,0,0,0,0,0,\n", &o, ":1:", "header"));
    CHECK(bad(H "0,0,0,0,0,40,\n", &g, ":2: column 'expert'", "40 >= experts (32)"));
    CHECK(bad(H "0,0,0,0,0,1,\n0,0,0,2,0,1,\n", &g, ":3: column 'layer'", "2 >= layers (2)"));
    CHECK(bad(H "0,0,0,0,0,1,\n0,-1,0,0,0,1,\n", &o, ":3: column 'seq'", "negative"));
    CHECK(bad(H "0,0,x,0,0,1,\n", &o, ":2: column 'token'", "not a non-negative integer"));
    CHECK(bad(H "0,0,0,0,0,1,abc\n", &o, ":2: column 'weight'", "not a finite number"));
    CHECK(bad(H "0,0,0,0,0,1\n", &o, ":2:", "6 columns"));
    CHECK(bad(H "0,0,0,0,0,1,,\n", &o, ":2:", "8 columns"));
    CHECK(bad(H "3,0,0,0,0,1,\n2,0,0,0,0,1,\n", &o, ":3: column 'step'", "must not decrease"));
    CHECK(bad(H "0,0,0,0,0,1,\n0,0,0,0,0,2,\n", &o, ":3: column 'slot'", "duplicate"));
    CHECK(bad(H "0,0,0,0,1,1,\n", &o, ":2: column 'slot'", "missing"));
    CHECK(bad(H "0,0,0,0,0,\n", &o, ":2: column 'expert'", "empty"));
    CHECK(bad(H "0,0,0,0,0,1,\n0,0,0,0,1,1,\n", &o, "bad.csv", "twice"));
    CHECK(bad(H "0,0,0,0,0,99999999999,\n", &o, ":2: column 'expert'", "larger"));
}

int main(void) {
    RUN(bin_csv_bin_identical);
    RUN(csv_bin_csv_byte_identical);
    RUN(any_order_within_step);
    RUN(bad_inputs);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", test_tmpdir());
    if (system(cmd)) { /* leftover temp dir only */ }
    CHECK_EXIT();
}
