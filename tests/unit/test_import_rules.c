/* test_import_rules.c: the importers never guess silently (issue "Trust the
 * input", item 3): an explicit Mixtral order reads the same as the detected
 * one; dropped rows are reported with counts (an error under strict);
 * pass-relative token_pos is renumbered so phases are right; libCacheSim
 * files are sniffed; a suspicious lcs-csv key column is an error by default
 * and a warning when chosen; Qwen logs (issue 9, item 3): warm-up passes
 * detected by routing and dropped (or kept, or named by the options), rows
 * grouped into passes by --pass-by, phases derived or declared unknown.
 * Run from the repository root. */
#include "../../core/trace_formats.h"
#include "check.h"
#include "trace_cmp.h"

/* Collects what an importer says. */
typedef struct said {
    int warnings, notes;
    char last_warning[1024], last_note[1024];
} said;

static void collect(void *ctx, int is_warning, const char *msg) {
    said *s = ctx;
    if (is_warning) s->warnings++, snprintf(s->last_warning, sizeof s->last_warning, "%s", msg);
    else s->notes++, snprintf(s->last_note, sizeof s->last_note, "%s", msg);
}

static const char *tmp(const char *name) {
    static char p[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", test_tmpdir(), name);
    return p[k];
}

static void explicit_order_same_as_detected(void) {
    static const struct { const char *file; int order; } cases[] = {
        {"tests/data/mixtral_sorted.jsonl", MOE_ORDER_SORTED},
        {"tests/data/mixtral_exec.jsonl", MOE_ORDER_EXEC},
    };
    for (size_t i = 0; i < 2; i++) {
        moe_error err = {{0}};
        moe_jsonl_opts a = {.layout = MOE_JSONL_MIXTRAL}, b = {.layout = MOE_JSONL_MIXTRAL, .order = cases[i].order};
        moe_trace *ta = moe_trace_load_jsonl(cases[i].file, &a, &err);
        CHECK(ta);
        moe_trace *tb = moe_trace_load_jsonl(cases[i].file, &b, &err);
        if (!tb) printf("%s\n", err.msg);
        CHECK(tb);
        CHECK_EQ_U(trace_diff(ta, tb, 1), 0);
        moe_trace_free(ta), moe_trace_free(tb);
    }
}

static void dropped_rows_warn_or_fail(void) {
    said s = {0};
    moe_import_report r = {.say = collect, .ctx = &s};
    moe_jsonl_opts o = {.layout = MOE_JSONL_MIXTRAL};
    moe_error err = {{0}};
    /* token 3 (line 7) has no layer-1 row */
    moe_trace *t = moe_trace_load_jsonl_report("tests/data/mixtral_exec.jsonl", &o, &r, &err);
    CHECK(t);
    CHECK_EQ_U(s.warnings, 1);
    CHECK_STR_CONTAINS(s.last_warning, "mixtral_exec.jsonl: 1 of 10 (token, layer) records");
    CHECK_STR_CONTAINS(s.last_warning, "slots: 1 of 8, in 1 of 4 steps");
    CHECK_STR_CONTAINS(s.last_warning, "step 2 (line 7, seq 0, token 3) layer 1");
    moe_trace_free(t);
    r.strict = 1;
    CHECK(moe_trace_load_jsonl_report("tests/data/mixtral_exec.jsonl", &o, &r, &err) == NULL);
    CHECK_STR_CONTAINS(err.msg, "1 of 10 (token, layer) records");
    CHECK_STR_CONTAINS(err.msg, "--strict");
    /* qwen: the layer as logged is named */
    s = (said){0};
    r.strict = 0;
    moe_jsonl_opts q = {.layout = MOE_JSONL_QWEN, .skip_warmup = 2};
    t = moe_trace_load_jsonl_report("tests/data/qwen.jsonl", &q, &r, &err);
    CHECK(t);
    CHECK_EQ_U(s.warnings, 2); /* summary + one more slot */
    CHECK_STR_CONTAINS(s.last_warning, "(logged layer 12)");
    moe_trace_free(t);
    /* the old entry point still loads, silently */
    t = moe_trace_load_jsonl("tests/data/mixtral_exec.jsonl", &o, &err);
    CHECK(t);
    moe_trace_free(t);
}

static void pass_relative_positions(void) {
    /* prefill of 2 tokens, then 2 decode passes whose rows all say 0 */
    const char *text =
        "{\"problem_id\": 5, \"layer\": 0, \"token_pos\": 0, \"experts\": [1]}\n"
        "{\"problem_id\": 5, \"layer\": 0, \"token_pos\": 1, \"experts\": [2]}\n"
        "{\"problem_id\": 5, \"layer\": 1, \"token_pos\": 0, \"experts\": [3]}\n"
        "{\"problem_id\": 5, \"layer\": 1, \"token_pos\": 1, \"experts\": [0]}\n"
        "{\"problem_id\": 5, \"layer\": 0, \"token_pos\": 0, \"experts\": [1]}\n"
        "{\"problem_id\": 5, \"layer\": 1, \"token_pos\": 0, \"experts\": [2]}\n"
        "{\"problem_id\": 5, \"layer\": 0, \"token_pos\": 0, \"experts\": [3]}\n"
        "{\"problem_id\": 5, \"layer\": 1, \"token_pos\": 0, \"experts\": [0]}\n";
    const char *p = tmp("pos0.jsonl");
    CHECK(spit(p, text, strlen(text)) == 0);
    said s = {0};
    moe_import_report r = {.strict = 1, .say = collect, .ctx = &s}; /* a note is not a warning */
    moe_jsonl_opts o = {.layout = MOE_JSONL_MIXTRAL};
    moe_error err = {{0}};
    moe_trace *t = moe_trace_load_jsonl_report(p, &o, &r, &err);
    if (!t) printf("%s\n", err.msg);
    CHECK(t);
    CHECK_EQ_U(s.warnings, 0);
    CHECK_EQ_U(s.notes, 1);
    CHECK_STR_CONTAINS(s.last_note, "first on line 5: 2 tokens renumbered");
    CHECK_EQ_U(t->n_steps, 3);
    CHECK_EQ_U(t->step_phase[0], MOE_PHASE_PREFILL);
    CHECK_EQ_U(t->step_phase[1], MOE_PHASE_DECODE);
    CHECK_EQ_U(t->step_phase[2], MOE_PHASE_DECODE);
    CHECK_EQ_U(t->token_pos[2], 2);
    CHECK_EQ_U(t->token_pos[3], 3);
    CHECK_STR_CONTAINS(t->meta, "token_pos=renumbered");
    moe_trace_free(t);
    /* true positions: nothing renumbered, no note */
    s = (said){0};
    t = moe_trace_load_jsonl_report("tests/data/mixtral_exec.jsonl", &o, &(moe_import_report){.say = collect, .ctx = &s}, &err);
    CHECK(t);
    CHECK_EQ_U(s.notes, 0);
    CHECK(!strstr(t->meta, "renumbered"));
    moe_trace_free(t);
}

static void sniff_oracle(void) {
    moe_error err = {{0}};
    CHECK_EQ_U(moe_lcs_oracle_sniff("tests/data/lcs.oracleGeneral.bin", &err), 1);
    CHECK_EQ_U(moe_lcs_oracle_sniff("tests/data/lcs.csv", &err), 0);
    CHECK_EQ_U(moe_lcs_oracle_sniff("tests/data/qwen.jsonl", &err), 0);
    char zeros[240] = {0};
    CHECK(spit(tmp("zeros.bin"), zeros, sizeof zeros) == 0);
    CHECK_EQ_U(moe_lcs_oracle_sniff(tmp("zeros.bin"), &err), 0);
    CHECK(spit(tmp("text48.bin"), "0123456789abcdef0123456789abcdef0123456789abcdef", 48) == 0);
    CHECK_EQ_U(moe_lcs_oracle_sniff(tmp("text48.bin"), &err), 0);
    /* a next-access time at or before its own request */
    size_t len;
    char *b = slurp("tests/data/lcs.oracleGeneral.bin", &len);
    CHECK(b);
    int64_t back = 1; /* record 2 is the third request: next 1 is in the past */
    memcpy(b + 2 * 24 + 16, &back, 8);
    CHECK(spit(tmp("back.bin"), b, len) == 0);
    free(b);
    CHECK_EQ_U(moe_lcs_oracle_sniff(tmp("back.bin"), &err), 0);
    CHECK(moe_lcs_oracle_sniff(tmp("nothere.bin"), &err) < 0);
    CHECK_STR_CONTAINS(err.msg, "nothere.bin: cannot open");
}

static void sniff_csv_header(void) {
    CHECK_EQ_U(moe_lcs_csv_header_obj_col("time,obj_id,obj_size,next_access_vtime\n", ','), 2);
    CHECK_EQ_U(moe_lcs_csv_header_obj_col("TS;Key;size", ';'), 2);
    CHECK_EQ_U(moe_lcs_csv_header_obj_col("id,obj_id", 0), 2); /* obj_id before id */
    CHECK_EQ_U(moe_lcs_csv_header_obj_col("\"Object-ID\",x\r\n", ','), 1);
    CHECK_EQ_U(moe_lcs_csv_header_obj_col("step,seq,token,layer,slot,expert,weight", ','), 0);
    CHECK_EQ_U(moe_lcs_csv_header_obj_col("1,a,100,2", ','), 0);
    CHECK_EQ_U(moe_lcs_csv_header_obj_col("", ','), 0);
}

static void lcs_key_column(void) {
    /* a version column first: 1 value in 30 rows, and a header read as data */
    char text[2048];
    size_t n = (size_t)snprintf(text, sizeof text, "version,obj_id\n");
    for (int i = 0; i < 30; i++) n += (size_t)snprintf(text + n, sizeof text - n, "1,k%d\n", i % 6);
    const char *p = tmp("ver.csv");
    CHECK(spit(p, text, n) == 0);
    moe_error err = {{0}};
    moe_lcs_opts dflt = {0};
    CHECK(moe_trace_load_lcs_csv(p, &dflt, &err) == NULL);
    CHECK_STR_CONTAINS(err.msg, "ver.csv: key column 1 ('version'), the default");
    CHECK_STR_CONTAINS(err.msg, "line 1 looks like a header");
    CHECK_STR_CONTAINS(err.msg, "only 2 distinct values in 31 rows");
    CHECK_STR_CONTAINS(err.msg, "--obj-col 2");
    moe_lcs_opts hdr = {.has_header = 1};
    CHECK(moe_trace_load_lcs_csv(p, &hdr, &err) == NULL);
    CHECK_STR_CONTAINS(err.msg, "its header name 'version' is not an object id");
    CHECK_STR_CONTAINS(err.msg, "only 1 distinct value in 30 rows");
    /* chosen: a warning with the counts; strict: an error */
    said s = {0};
    moe_import_report r = {.say = collect, .ctx = &s};
    moe_lcs_opts chosen = {.obj_col = 1, .has_header = 1};
    moe_trace *t = moe_trace_load_lcs_csv_report(p, &chosen, &r, &err);
    CHECK(t);
    CHECK_EQ_U(t->n_experts, 1);
    moe_trace_free(t);
    CHECK_EQ_U(s.warnings, 1);
    CHECK_STR_CONTAINS(s.last_warning, "key column 1 ('version') (--obj-col 1)");
    r.strict = 1;
    CHECK(moe_trace_load_lcs_csv_report(p, &chosen, &r, &err) == NULL);
    CHECK_STR_CONTAINS(err.msg, "(--strict)");
    /* the id column: silent */
    s = (said){0};
    r.strict = 1;
    moe_lcs_opts good = {.obj_col = 2, .has_header = 1};
    t = moe_trace_load_lcs_csv_report(p, &good, &r, &err);
    CHECK(t);
    CHECK_EQ_U(t->n_experts, 6);
    CHECK_EQ_U(s.warnings, 0);
    moe_trace_free(t);
    /* a timestamp column: new, increasing numbers on every row */
    CHECK(moe_trace_load_lcs_csv("tests/data/lcs.csv", &hdr, &err) == NULL);
    CHECK_STR_CONTAINS(err.msg, "increasing numeric order");
    /* a small genuine key sequence in column 1 stays accepted by default */
    CHECK(spit(tmp("abc.csv"), "a\nb\na\nc\n", 8) == 0);
    t = moe_trace_load_lcs_csv(tmp("abc.csv"), &dflt, &err);
    if (!t) printf("%s\n", err.msg);
    CHECK(t);
    CHECK_EQ_U(t->n_steps, 4);
    moe_trace_free(t);
}

/* ---- Qwen logs ------------------------------------------------------------ */

/* A qwen log: meta (top_k 2, layers 3 and 7) then the given route rows. */
static const char *qwen_file(const char *name, const char *rows) {
    static char text[1 << 18];
    snprintf(text, sizeof text, "{\"type\": \"meta\", \"top_k\": 2, \"layers_logged\": [3, 7]}\n%s", rows);
    const char *p = tmp(name);
    return spit(p, text, strlen(text)) == 0 ? p : "(spit failed)";
}

/* rows of one token: layer 3 then 7 */
static size_t tok(char *b, size_t n, size_t cap, const char *req, int idx, const char *e3, const char *e7) {
    return n + (size_t)snprintf(b + n, cap - n,
                                "{\"type\": \"route\", \"req_id\": \"%s\", \"token_idx\": %d, \"layer\": 3, \"topk_ids\": [%s]}\n"
                                "{\"type\": \"route\", \"req_id\": \"%s\", \"token_idx\": %d, \"layer\": 7, \"topk_ids\": [%s]}\n",
                                req, idx, e3, req, idx, e7);
}

static moe_trace *load_q(const char *p, const moe_jsonl_opts *o, said *s, moe_error *err) {
    *s = (said){0};
    moe_import_report r = {.say = collect, .ctx = s};
    moe_trace *t = moe_trace_load_jsonl_report(p, o, &r, err);
    if (!t) printf("%s\n", err->msg);
    return t;
}

static void qwen_warmup_detected(void) {
    /* 8 warm-up tokens (experts listed in either order: a set), then 2 real ones */
    char rows[8192];
    size_t n = 0;
    for (int i = 0; i < 8; i++) n = tok(rows, n, sizeof rows, "w", i, i % 2 ? "9, 1" : "1, 9", "2, 6");
    n = tok(rows, n, sizeof rows, "a", 0, "1, 3", "2, 5");
    n = tok(rows, n, sizeof rows, "b", 0, "0, 3", "4, 5");
    const char *p = qwen_file("wu8.jsonl", rows);
    said s;
    moe_error err = {{0}};
    moe_jsonl_opts o = {.layout = MOE_JSONL_QWEN};
    moe_trace *t = load_q(p, &o, &s, &err);
    CHECK(t);
    CHECK_EQ_U(t->n_steps, 2);
    CHECK_EQ_U(t->n_experts, 6);  /* counted over the rows kept: expert 9 was warm-up only */
    CHECK_EQ_U(t->token_seq[0], 0); /* "a" is sequence 0 once "w" is gone */
    CHECK_EQ_U(t->token_seq[1], 1);
    CHECK_EQ_U(t->experts[moe_trace_rec(t, 0, 1) + 1], 5);
    CHECK_EQ_U(s.notes, 1);
    CHECK_EQ_U(s.warnings, 0);
    CHECK_STR_CONTAINS(s.last_note, "wu8.jsonl: dropped warm-up: the first 8 forward passes (16 route rows, lines 2-17)");
    CHECK_STR_CONTAINS(s.last_note, "the first pass that differs starts on line 18");
    CHECK_STR_CONTAINS(t->meta, "skipped_warmup_rows=16\nwarmup=detected (8 passes dropped)\n");
    /* the same rows named by --skip-warmup: the same trace */
    moe_jsonl_opts sk = {.layout = MOE_JSONL_QWEN, .skip_warmup = 16};
    moe_trace *u = load_q(p, &sk, &s, &err);
    CHECK(u);
    CHECK_EQ_U(trace_diff(t, u, 0), 0);
    CHECK_EQ_U(s.notes, 1);
    CHECK_STR_CONTAINS(s.last_note, "dropped 16 route rows as warm-up (--skip-warmup 16)");
    moe_trace_free(u);
    moe_trace_free(t);
    /* kept: every row, and a note */
    moe_jsonl_opts k = {.layout = MOE_JSONL_QWEN, .keep_warmup = 1};
    t = load_q(p, &k, &s, &err);
    CHECK(t);
    CHECK_EQ_U(t->n_steps, 10);
    CHECK_EQ_U(t->n_experts, 10);
    CHECK_EQ_U(s.notes, 1);
    CHECK_STR_CONTAINS(s.last_note, "kept 8 leading passes (16 route rows, lines 2-17)");
    moe_trace_free(t);
    /* 7 alike, then a different pass: not warm-up, nothing said */
    n = 0;
    for (int i = 0; i < 7; i++) n = tok(rows, n, sizeof rows, "w", i, "1, 9", "2, 6");
    n = tok(rows, n, sizeof rows, "a", 0, "1, 8", "2, 6");
    p = qwen_file("wu7.jsonl", rows);
    t = load_q(p, &o, &s, &err);
    CHECK(t);
    CHECK_EQ_U(t->n_steps, 8);
    CHECK_EQ_U(s.notes + s.warnings, 0);
    CHECK_STR_CONTAINS(t->meta, "warmup=detected (none)");
    moe_trace_free(t);
    /* all alike: kept whole, with a note */
    n = 0;
    for (int i = 0; i < 9; i++) n = tok(rows, n, sizeof rows, "w", i, "1, 9", "2, 6");
    p = qwen_file("alike.jsonl", rows);
    t = load_q(p, &o, &s, &err);
    CHECK(t);
    CHECK_EQ_U(t->n_steps, 9);
    CHECK_EQ_U(s.notes, 1);
    CHECK_STR_CONTAINS(s.last_note, "alike.jsonl: all 9 forward passes route every layer to the same experts: nothing dropped");
    moe_trace_free(t);
}

static void qwen_options_conflict(void) {
    moe_error err = {{0}};
    moe_jsonl_opts o = {.layout = MOE_JSONL_QWEN, .keep_warmup = 1, .skip_warmup = 3};
    CHECK(moe_jsonl_check_opts(&o, &err) == -1);
    CHECK_STR_CONTAINS(err.msg, "--keep-warmup conflicts with --skip-warmup");
    CHECK(moe_trace_load_jsonl("tests/data/qwen.jsonl", &o, &err) == NULL);
    o = (moe_jsonl_opts){.layout = MOE_JSONL_QWEN, .keep_warmup = 1, .warmup_prefix = "w"};
    CHECK(moe_jsonl_check_opts(&o, &err) == -1);
    CHECK_STR_CONTAINS(err.msg, "--keep-warmup conflicts with --warmup-prefix");
    /* the two explicit rules combine */
    o = (moe_jsonl_opts){.layout = MOE_JSONL_QWEN, .skip_warmup = 1, .warmup_prefix = "warmup-"};
    CHECK(moe_jsonl_check_opts(&o, &err) == 0);
    o = (moe_jsonl_opts){.layout = MOE_JSONL_QWEN};
    CHECK(moe_jsonl_pass_by(&o, "wrap", &err) == 0);
    CHECK(moe_jsonl_map_field(&o, "step=batch", &err) == 0);
    CHECK(moe_jsonl_check_opts(&o, &err) == -1);
    CHECK_STR_CONTAINS(err.msg, "--pass-by conflicts with --field step=batch");
    o = (moe_jsonl_opts){.layout = MOE_JSONL_QWEN};
    CHECK(moe_jsonl_pass_by(&o, "token", &err) == 0 && o.pass_by == MOE_PASS_TOKEN);
    CHECK(moe_jsonl_pass_by(&o, "rows=12", &err) == 0 && o.pass_by == MOE_PASS_ROWS && o.pass_rows == 12);
    CHECK(moe_jsonl_pass_by(&o, "key=batch", &err) == 0 && o.pass_by == MOE_PASS_KEY && !strcmp(o.pass_key, "batch"));
    static const char *const bad[] = {"rows=0", "rows=", "rows=-1", "rows=2x", "key=", "layer", ""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        CHECK(moe_jsonl_pass_by(&o, bad[i], &err) == -1);
        CHECK_STR_CONTAINS(err.msg, "--pass-by");
    }
}

static void qwen_pass_rules(void) {
    /* one logged layer, token_idx = index in the batch: passes of 3, 2, 1 tokens */
    const char *rows =
        "{\"type\": \"route\", \"req_id\": \"x\", \"token_idx\": 0, \"layer\": 3, \"topk_ids\": [0, 1]}\n"
        "{\"type\": \"route\", \"req_id\": \"x\", \"token_idx\": 1, \"layer\": 3, \"topk_ids\": [2, 3]}\n"
        "{\"type\": \"route\", \"req_id\": \"x\", \"token_idx\": 2, \"layer\": 3, \"topk_ids\": [4, 5]}\n"
        "{\"type\": \"route\", \"req_id\": \"x\", \"token_idx\": 0, \"layer\": 3, \"topk_ids\": [0, 2]}\n"
        "{\"type\": \"route\", \"req_id\": \"x\", \"token_idx\": 1, \"layer\": 3, \"topk_ids\": [1, 3]}\n"
        "{\"type\": \"route\", \"req_id\": \"x\", \"token_idx\": 0, \"layer\": 3, \"topk_ids\": [5, 4]}\n";
    const char *p = qwen_file("wrap1.jsonl", rows);
    said s;
    moe_error err = {{0}};
    moe_jsonl_opts o = {.layout = MOE_JSONL_QWEN, .pass_by = MOE_PASS_WRAP};
    moe_trace *t = load_q(p, &o, &s, &err);
    CHECK(t);
    CHECK_EQ_U(t->n_steps, 3);
    CHECK_EQ_U(t->step_first_token[1], 3);
    CHECK_EQ_U(t->step_first_token[2], 5);
    CHECK_EQ_U(t->n_tokens, 6);
    CHECK_EQ_U(t->experts[moe_trace_rec(t, 5, 0)], 5);
    /* one req_id and passes of several tokens: phases unknown, all decode */
    for (uint64_t i = 0; i < t->n_steps; i++) CHECK_EQ_U(t->step_phase[i], MOE_PHASE_DECODE);
    CHECK_STR_CONTAINS(t->meta, "phases=unknown");
    CHECK_STR_CONTAINS(s.last_note, "wrap1.jsonl: phases unknown: every route row has req_id 'x'");
    CHECK_STR_CONTAINS(s.last_note, "a forward pass holds several tokens, first on line 2");
    moe_trace_free(t);
    /* two layers, true positions (nothing repeats): the layer going down
     * from 7 to 3 alone starts the second pass */
    const char *rows2 =
        "{\"type\": \"route\", \"req_id\": \"x\", \"token_idx\": 0, \"layer\": 3, \"topk_ids\": [0, 1]}\n"
        "{\"type\": \"route\", \"req_id\": \"x\", \"token_idx\": 1, \"layer\": 3, \"topk_ids\": [2, 3]}\n"
        "{\"type\": \"route\", \"req_id\": \"x\", \"token_idx\": 0, \"layer\": 7, \"topk_ids\": [4, 5]}\n"
        "{\"type\": \"route\", \"req_id\": \"x\", \"token_idx\": 1, \"layer\": 7, \"topk_ids\": [0, 2]}\n"
        "{\"type\": \"route\", \"req_id\": \"x\", \"token_idx\": 2, \"layer\": 3, \"topk_ids\": [1, 3]}\n"
        "{\"type\": \"route\", \"req_id\": \"x\", \"token_idx\": 2, \"layer\": 7, \"topk_ids\": [5, 4]}\n";
    t = load_q(qwen_file("wrap2.jsonl", rows2), &o, &s, &err);
    CHECK(t);
    CHECK_EQ_U(t->n_steps, 2);
    CHECK_EQ_U(t->step_first_token[1], 2);
    CHECK_EQ_U(t->experts[moe_trace_rec(t, 1, 1) + 1], 2);
    CHECK_EQ_U(t->experts[moe_trace_rec(t, 2, 1)], 5);
    moe_trace_free(t);
    /* large batches (the pass's table grows): 1000 tokens, then 500 */
    static char big[200000];
    size_t nb = 0;
    for (int i = 0; i < 1500; i++)
        nb += (size_t)snprintf(big + nb, sizeof big - nb,
                               "{\"type\": \"route\", \"req_id\": \"x\", \"token_idx\": %d, \"layer\": 3, \"topk_ids\": [%d]}\n",
                               i < 1000 ? i : i - 1000, i % 7);
    t = load_q(qwen_file("wrapbig.jsonl", big), &o, &s, &err);
    CHECK(t);
    CHECK_EQ_U(t->n_steps, 2);
    CHECK_EQ_U(t->step_first_token[1], 1000);
    CHECK_EQ_U(t->n_tokens, 1500);
    moe_trace_free(t);
    /* rows=2: passes of 2 rows whatever the ids say */
    o = (moe_jsonl_opts){.layout = MOE_JSONL_QWEN, .pass_by = MOE_PASS_ROWS, .pass_rows = 2};
    t = load_q(p, &o, &s, &err);
    CHECK(t);
    CHECK_EQ_U(t->n_steps, 3);
    CHECK_EQ_U(t->step_first_token[1], 2);
    CHECK_EQ_U(t->step_first_token[2], 4);
    moe_trace_free(t);
    /* the default groups by (req_id, token_idx): 6 one-token passes, and the
     * restarting token_idx makes phases unknown */
    o = (moe_jsonl_opts){.layout = MOE_JSONL_QWEN};
    t = load_q(p, &o, &s, &err);
    CHECK(t);
    CHECK_EQ_U(t->n_steps, 6);
    CHECK_STR_CONTAINS(s.last_note, "token_idx restarts (goes back to a position already reached), first on line 5");
    moe_trace_free(t);
    /* by key, a number: a pass per value change (1, 1, 2, "2" is not 2) */
    rows = "{\"type\": \"route\", \"req_id\": \"a\", \"token_idx\": 0, \"layer\": 3, \"topk_ids\": [0], \"it\": 1}\n"
           "{\"type\": \"route\", \"req_id\": \"b\", \"token_idx\": 0, \"layer\": 3, \"topk_ids\": [1], \"it\": 1}\n"
           "{\"type\": \"route\", \"req_id\": \"a\", \"token_idx\": 1, \"layer\": 3, \"topk_ids\": [2], \"it\": 2}\n"
           "{\"type\": \"route\", \"req_id\": \"b\", \"token_idx\": 1, \"layer\": 3, \"topk_ids\": [3], \"it\": \"2\"}\n";
    p = qwen_file("key.jsonl", rows);
    o = (moe_jsonl_opts){.layout = MOE_JSONL_QWEN, .pass_by = MOE_PASS_KEY, .pass_key = "it"};
    t = load_q(p, &o, &s, &err);
    CHECK(t);
    CHECK_EQ_U(t->n_steps, 3);
    CHECK_EQ_U(t->step_first_token[1], 2);
    /* several req_ids, true positions: phases derived */
    CHECK_EQ_U(t->step_phase[0], MOE_PHASE_PREFILL);
    CHECK_EQ_U(t->step_phase[1], MOE_PHASE_DECODE);
    CHECK_EQ_U(t->step_phase[2], MOE_PHASE_DECODE);
    CHECK_EQ_U(s.notes, 0);
    moe_trace_free(t);
    /* a row without the key, or with an object there: the file and line */
    rows = "{\"type\": \"route\", \"req_id\": \"a\", \"token_idx\": 0, \"layer\": 3, \"topk_ids\": [0], \"it\": 1}\n"
           "{\"type\": \"route\", \"req_id\": \"a\", \"token_idx\": 1, \"layer\": 3, \"topk_ids\": [1]}\n";
    p = qwen_file("nokey.jsonl", rows);
    CHECK(moe_trace_load_jsonl(p, &o, &err) == NULL);
    CHECK_STR_CONTAINS(err.msg, "nokey.jsonl:3: field 'it': missing (--pass-by key=it)");
    rows = "{\"type\": \"route\", \"req_id\": \"a\", \"token_idx\": 0, \"layer\": 3, \"topk_ids\": [0], \"it\": {}}\n";
    p = qwen_file("objkey.jsonl", rows);
    CHECK(moe_trace_load_jsonl(p, &o, &err) == NULL);
    CHECK_STR_CONTAINS(err.msg, "objkey.jsonl:2: field 'it': not a string or a number");
}

static void qwen_phases(void) {
    /* several req_ids, token_idx counted within the pass: renumbered, phases right */
    said s;
    moe_error err = {{0}};
    moe_jsonl_opts o = {.layout = MOE_JSONL_QWEN, .pass_by = MOE_PASS_KEY, .pass_key = "batch"};
    moe_trace *t = load_q("tests/data/qwen_passkey.jsonl", &o, &s, &err);
    CHECK(t);
    CHECK_EQ_U(t->n_steps, 3);
    CHECK_EQ_U(t->step_phase[0], MOE_PHASE_PREFILL);
    CHECK_EQ_U(t->step_phase[1], MOE_PHASE_PREFILL); /* r2's prompt with r1's decode */
    CHECK_EQ_U(t->step_phase[2], MOE_PHASE_DECODE);
    CHECK_EQ_U(t->token_pos[t->step_first_token[2]], 3);
    CHECK_EQ_U(s.notes, 1);
    CHECK_STR_CONTAINS(s.last_note, "token_idx restarts in later forward passes of a sequence");
    CHECK_STR_CONTAINS(s.last_note, "first on line 6: 3 tokens renumbered");
    CHECK_STR_CONTAINS(t->meta, "token_idx=renumbered (restarted within sequences: 3 tokens)");
    moe_trace_free(t);
    /* one req_id, one token per pass, positions that never restart: derived */
    char rows[4096];
    size_t n = 0;
    for (int i = 0; i < 3; i++) n = tok(rows, n, sizeof rows, "0", i, i ? "1, 2" : "3, 4", "0, 5");
    const char *p = qwen_file("one.jsonl", rows);
    o = (moe_jsonl_opts){.layout = MOE_JSONL_QWEN};
    t = load_q(p, &o, &s, &err);
    CHECK(t);
    CHECK_EQ_U(t->step_phase[0], MOE_PHASE_PREFILL);
    CHECK_EQ_U(t->step_phase[1], MOE_PHASE_DECODE);
    CHECK_EQ_U(s.notes, 0);
    CHECK(!strstr(t->meta, "phases="));
    moe_trace_free(t);
}

int main(void) {
    RUN(explicit_order_same_as_detected);
    RUN(dropped_rows_warn_or_fail);
    RUN(pass_relative_positions);
    RUN(sniff_oracle);
    RUN(sniff_csv_header);
    RUN(lcs_key_column);
    RUN(qwen_warmup_detected);
    RUN(qwen_options_conflict);
    RUN(qwen_pass_rules);
    RUN(qwen_phases);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", test_tmpdir());
    if (system(cmd)) { /* leftover temp dir only */ }
    CHECK_EXIT();
}
