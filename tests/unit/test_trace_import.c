/* test_trace_import.c: JSONL (Mixtral exec/sorted, Qwen with warm-up) and
 * libCacheSim (CSV, oracleGeneral) importers on the hand-written samples in
 * tests/data, with exact steps, tokens and experts; LRU on an imported key
 * sequence gives the hand-computed hits. Run from the repository root. */
#include "../../core/trace_formats.h"
#include "../../sim/replay.h"
#include "check.h"
#include "trace_cmp.h"

static uint16_t ex(const moe_trace *t, uint64_t tok, uint32_t l, uint32_t s) { return t->experts[moe_trace_rec(t, tok, l) + s]; }

static void mixtral_exec(void) {
    moe_error err;
    moe_jsonl_opts o = {.layout = MOE_JSONL_MIXTRAL};
    moe_trace *t = moe_trace_load_jsonl("tests/data/mixtral_exec.jsonl", &o, &err);
    if (!t) printf("%s\n", err.msg);
    CHECK(t);
    /* passes: {tok 0,1 x layers 0,1} {tok 2} {tok 3, layer 1 missing} {problem 1 tok 0} */
    CHECK_EQ_U(t->n_layers, 2);
    CHECK_EQ_U(t->n_experts, 8);
    CHECK_EQ_U(t->top_k, 2);
    CHECK_EQ_U(t->n_steps, 4);
    CHECK_EQ_U(t->n_tokens, 5);
    CHECK_EQ_U(t->step_first_token[1], 2);
    CHECK_EQ_U(t->step_phase[0], MOE_PHASE_PREFILL);
    CHECK_EQ_U(t->step_phase[1], MOE_PHASE_DECODE);
    CHECK_EQ_U(ex(t, 0, 0, 0), 4); CHECK_EQ_U(ex(t, 0, 0, 1), 0);
    CHECK_EQ_U(ex(t, 1, 1, 0), 6); CHECK_EQ_U(ex(t, 1, 1, 1), 7);
    CHECK_EQ_U(ex(t, 2, 1, 0), 3); CHECK_EQ_U(ex(t, 2, 1, 1), 0);
    CHECK_EQ_U(ex(t, 3, 0, 0), 2); CHECK_EQ_U(ex(t, 3, 1, 0), MOE_NO_EXPERT);
    CHECK_EQ_U(t->token_seq[4], 1);
    CHECK_EQ_U(ex(t, 4, 1, 0), 5);
    CHECK_NEAR(t->weights[moe_trace_rec(t, 0, 0)], 0.88, 1e-6);
    moe_trace_free(t);
}

static void mixtral_sorted(void) {
    moe_error err;
    moe_jsonl_opts o = {.layout = MOE_JSONL_MIXTRAL};
    moe_trace *t = moe_trace_load_jsonl("tests/data/mixtral_sorted.jsonl", &o, &err);
    if (!t) printf("%s\n", err.msg);
    CHECK(t);
    /* re-sorted to (problem as in file: 7 then 3, token, layer); one step per token */
    CHECK_EQ_U(t->n_steps, 3);
    CHECK_EQ_U(t->n_tokens, 3);
    CHECK_EQ_U(t->token_seq[0], 7); CHECK_EQ_U(t->token_pos[0], 0);
    CHECK_EQ_U(t->token_seq[1], 7); CHECK_EQ_U(t->token_pos[1], 1);
    CHECK_EQ_U(t->token_seq[2], 3);
    CHECK_EQ_U(ex(t, 0, 0, 0), 1); CHECK_EQ_U(ex(t, 0, 1, 0), 4);
    CHECK_EQ_U(ex(t, 1, 0, 0), 2); CHECK_EQ_U(ex(t, 1, 1, 1), 7);
    CHECK_EQ_U(ex(t, 2, 1, 0), 0);
    moe_trace_free(t);
}

static void qwen_warmup_and_layers(void) {
    moe_error err;
    moe_jsonl_opts o = {.layout = MOE_JSONL_QWEN};
    moe_trace *t = moe_trace_load_jsonl("tests/data/qwen.jsonl", &o, &err);
    CHECK(t);
    CHECK_EQ_U(t->n_tokens, 5); /* warm-up token kept without the option */
    moe_trace_free(t);
    o.skip_warmup = 2;
    t = moe_trace_load_jsonl("tests/data/qwen.jsonl", &o, &err);
    if (!t) printf("%s\n", err.msg);
    CHECK(t);
    CHECK_EQ_U(t->top_k, 4);
    CHECK_EQ_U(t->n_layers, 2);   /* layers 12 and 20 -> 0 and 1 */
    CHECK_EQ_U(t->n_experts, 60);
    CHECK_EQ_U(t->n_steps, 4);
    CHECK_EQ_U(t->n_tokens, 4);
    CHECK_STR_CONTAINS(t->model, "Qwen1.5-MoE");
    CHECK_STR_CONTAINS(t->meta, "layers_logged=12,20");
    CHECK_EQ_U(ex(t, 0, 0, 2), 59);
    CHECK_EQ_U(ex(t, 1, 1, 0), 44);
    CHECK_EQ_U(t->token_seq[2], 1); /* r2 */
    CHECK_EQ_U(ex(t, 2, 1, 0), MOE_NO_EXPERT);
    CHECK_EQ_U(t->token_seq[3], 0); CHECK_EQ_U(t->token_pos[3], 2);
    /* raw weights kept as given (they do not sum to 1) */
    CHECK_NEAR(t->weights[moe_trace_rec(t, 0, 0)], 0.31, 1e-6);
    CHECK_NEAR(t->weights[moe_trace_rec(t, 0, 0) + 3], 0.05, 1e-6);
    moe_trace_free(t);
    /* the same by req_id prefix */
    moe_jsonl_opts p = {.layout = MOE_JSONL_QWEN, .warmup_prefix = "warmup-"};
    t = moe_trace_load_jsonl("tests/data/qwen.jsonl", &p, &err);
    CHECK(t);
    CHECK_EQ_U(t->n_tokens, 4);
    moe_trace_free(t);
}

static void field_mapping(void) {
    const char *text = "{\"pid\": 3, \"layer_id\": 1, \"token_pos\": 0, \"ids\": [2], \"w\": [1.0]}\n"
                       "{\"pid\": 3, \"layer_id\": 0, \"token_pos\": 1, \"ids\": [1], \"w\": [1.0]}\n";
    char p[256];
    snprintf(p, sizeof p, "%s/map.jsonl", test_tmpdir());
    CHECK(spit(p, text, strlen(text)) == 0);
    moe_jsonl_opts o = {.layout = MOE_JSONL_MIXTRAL};
    moe_error err;
    CHECK(moe_jsonl_map_field(&o, "seq=pid", &err) == 0);
    CHECK(moe_jsonl_map_field(&o, "layer=layer_id", &err) == 0);
    CHECK(moe_jsonl_map_field(&o, "experts=ids", &err) == 0);
    CHECK(moe_jsonl_map_field(&o, "weights=w", &err) == 0);
    CHECK(moe_jsonl_map_field(&o, "bogus=x", &err) != 0);
    o.experts = 4;
    moe_trace *t = moe_trace_load_jsonl(p, &o, &err);
    if (!t) printf("%s\n", err.msg);
    CHECK(t);
    CHECK_EQ_U(t->n_steps, 2); /* layer went 1 -> 0: a new pass */
    CHECK_EQ_U(t->n_experts, 4);
    CHECK_EQ_U(t->token_seq[0], 3);
    moe_trace_free(t);
    o.experts = 2; /* expert 2 >= 2 */
    t = moe_trace_load_jsonl(p, &o, &err);
    CHECK(!t);
    CHECK_STR_CONTAINS(err.msg, "map.jsonl:1: field 'ids'");
}

static void jsonl_bad_inputs(void) {
    static const struct { const char *text; int qwen; const char *want; } cases[] = {
        {"", 0, ":1: empty file"},
        {"{\"problem_id\": 0, \"layer\": 0, \"token_pos\": 0, \"experts\": [1]}\nnot json\n", 0, ":2: not a JSON object"},
        {"{\"problem_id\": -1, \"layer\": 0, \"token_pos\": 0, \"experts\": [1]}\n", 0, ":1: field 'problem_id': negative"},
        {"{\"problem_id\": 0, \"layer\": \"a\", \"token_pos\": 0, \"experts\": [1]}\n", 0, ":1: field 'layer': not a number"},
        {"{\"problem_id\": 0, \"layer\": 0, \"token_pos\": 0, \"experts\": [1, 1]}\n", 0, ":1: field 'experts': expert 1 listed twice"},
        {"{\"problem_id\": 0, \"layer\": 0, \"token_pos\": 0}\n", 0, ":1: field 'experts': missing"},
        {"{\"problem_id\": 0, \"layer\": 0, \"token_pos\": 0, \"experts\": [1], \"gating_probs\": [0.5, 0.5]}\n", 0,
         ":1: field 'gating_probs': 2 values for 1 experts"},
        {"{\"problem_id\": 0, \"layer\": 0, \"token_pos\": 0, \"experts\": [1]}\n"
         "{\"problem_id\": 0, \"layer\": 0, \"token_pos\": 0, \"experts\": [2]}\n", 0, ":2: duplicate"},
        {"{\"type\": \"route\", \"req_id\": \"a\", \"token_idx\": 0, \"layer\": 1, \"topk_ids\": [1]}\n", 1, ":1: expected the meta line"},
        {"{\"type\": \"meta\", \"top_k\": 1, \"layers_logged\": [3]}\n"
         "{\"type\": \"route\", \"req_id\": \"a\", \"token_idx\": 0, \"layer\": 4, \"topk_ids\": [1]}\n", 1, ":2: field 'layer': layer 4 is not in layers_logged"},
        {"{\"type\": \"meta\", \"top_k\": 1}\n"
         "{\"type\": \"route\", \"req_id\": \"a\", \"token_idx\": 0, \"layer\": 0, \"topk_ids\": [1, 2]}\n", 1, "2 experts but top_k is 1"},
    };
    char p[256];
    snprintf(p, sizeof p, "%s/badj.jsonl", test_tmpdir());
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        CHECK(spit(p, cases[i].text, strlen(cases[i].text)) == 0);
        moe_jsonl_opts o = {.layout = cases[i].qwen ? MOE_JSONL_QWEN : MOE_JSONL_MIXTRAL};
        moe_error err = {{0}};
        moe_trace *t = moe_trace_load_jsonl(p, &o, &err);
        if (t) printf("case %zu accepted\n", i);
        CHECK(!t);
        CHECK_STR_CONTAINS(err.msg, "badj.jsonl");
        CHECK_STR_CONTAINS(err.msg, cases[i].want);
    }
}

/* a b a c a d b c with LRU capacity 2: hits at the 2nd and 3rd 'a' only. */
static void lcs_lru_hits(void) {
    moe_error err;
    moe_lcs_opts o = {.obj_col = 2, .has_header = 1};
    moe_trace *a = moe_trace_load_lcs_csv("tests/data/lcs.csv", &o, &err);
    if (!a) printf("%s\n", err.msg);
    CHECK(a);
    moe_trace *b = moe_trace_load_lcs_oracle("tests/data/lcs.oracleGeneral.bin", &err);
    if (!b) printf("%s\n", err.msg);
    CHECK(b);
    CHECK_EQ_U(trace_diff(a, b, 0), 0); /* same key sequence, zero-size record skipped */
    CHECK_STR_CONTAINS(a->meta, "keyspace=1");
    CHECK_EQ_U(a->n_steps, 8);
    CHECK_EQ_U(a->n_experts, 4);
    CHECK_EQ_U(a->n_layers, 1);
    moe_replay_config cfg = {.policy = "lru", .capacity = 2, .scope = MOE_SCOPE_GLOBAL, .seed = 1};
    moe_replay_result r;
    CHECK(moe_replay(a, &cfg, &r, &err) == 0);
    CHECK_EQ_U(r.accesses, 8);
    CHECK_EQ_U(r.hits, 2);
    CHECK_EQ_U(r.compulsory_misses, 4);
    moe_replay_result_free(&r);
    cfg.capacity = 3; /* a b a c a d(evict b) b(evict c) c(evict a): hits 2 */
    CHECK(moe_replay(b, &cfg, &r, &err) == 0);
    CHECK_EQ_U(r.hits, 2);
    moe_replay_result_free(&r);
    moe_trace_free(a), moe_trace_free(b);
}

/* More keys than the 65534 expert ids of a layer: a key sequence is one flat
 * key space (u32 keys numbered by first appearance), and the streaming
 * import writes the same trace the in-memory reader builds. */
static void lcs_many_keys(void) {
    char p[256], out[300];
    snprintf(p, sizeof p, "%s/many.csv", test_tmpdir());
    FILE *f = fopen(p, "w");
    CHECK(f);
    for (int i = 0; i < 70000; i++) fprintf(f, "k%d;x\n", i);
    fprintf(f, "k4097;x\nk0;x\nk69999;x\n");
    fclose(f);
    moe_lcs_opts o = {.obj_col = 1, .delim = ';'};
    moe_error err;
    moe_trace *t = moe_trace_load_lcs_csv(p, &o, &err);
    if (!t) printf("%s\n", err.msg);
    CHECK(t);
    CHECK(t->keys != NULL);
    CHECK_EQ_U(t->n_experts, 70000);
    CHECK_EQ_U(t->n_layers, 1);
    CHECK_EQ_U(t->top_k, 1);
    CHECK_EQ_U(t->n_steps, 70003);
    CHECK_EQ_U(t->keys[69999], 69999);
    CHECK_EQ_U(t->keys[70000], 4097);
    CHECK_EQ_U(t->keys[70001], 0);
    CHECK_EQ_U(t->keys[70002], 69999);
    snprintf(out, sizeof out, "%s/many.moetrace", test_tmpdir());
    uint64_t nr = 0, nk = 0;
    CHECK(moe_lcs_import(p, 0, &o, NULL, NULL, out, &nr, &nk, &err) == 0);
    CHECK_EQ_U(nr, 70003);
    CHECK_EQ_U(nk, 70000);
    moe_trace *s = moe_trace_load_ex(out, MOE_LOAD_KEYS, &err);
    if (!s) printf("%s\n", err.msg);
    CHECK(s);
    CHECK_EQ_U(trace_diff(t, s, 1), 0);
    /* without MOE_LOAD_KEYS a key sequence is refused, naming what takes it */
    CHECK(moe_trace_load(out, &err) == NULL);
    CHECK_STR_CONTAINS(err.msg, "many.moetrace: a key sequence (70003 requests over 70000 keys");
    moe_trace_free(s);
    moe_trace_free(t);
    /* a truncated oracle file */
    snprintf(p, sizeof p, "%s/cut.bin", test_tmpdir());
    CHECK(spit(p, "0123456789012345678901234567", 28) == 0);
    CHECK(moe_trace_load_lcs_oracle(p, &err) == NULL);
    CHECK_STR_CONTAINS(err.msg, "cut.bin: offset 24: truncated");
    /* --obj-col beyond the columns */
    snprintf(p, sizeof p, "%s/cols.csv", test_tmpdir());
    CHECK(spit(p, "a,b\nc\n", 6) == 0);
    moe_lcs_opts o2 = {.obj_col = 2};
    CHECK(moe_trace_load_lcs_csv(p, &o2, &err) == NULL);
    CHECK_STR_CONTAINS(err.msg, "cols.csv:2: 1 columns, but --obj-col is 2");
}

int main(void) {
    RUN(mixtral_exec);
    RUN(mixtral_sorted);
    RUN(qwen_warmup_and_layers);
    RUN(field_mapping);
    RUN(jsonl_bad_inputs);
    RUN(lcs_lru_hits);
    RUN(lcs_many_keys);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", test_tmpdir());
    if (system(cmd)) { /* leftover temp dir only */ }
    CHECK_EXIT();
}
