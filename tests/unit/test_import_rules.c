/* test_import_rules.c: the importers never guess silently (issue "Trust the
 * input", item 3): an explicit Mixtral order reads the same as the detected
 * one; dropped rows are reported with counts (an error under strict);
 * pass-relative token_pos is renumbered so phases are right; libCacheSim
 * files are sniffed; a suspicious lcs-csv key column is an error by default
 * and a warning when chosen. Run from the repository root. */
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

int main(void) {
    RUN(explicit_order_same_as_detected);
    RUN(dropped_rows_warn_or_fail);
    RUN(pass_relative_positions);
    RUN(sniff_oracle);
    RUN(sniff_csv_header);
    RUN(lcs_key_column);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", test_tmpdir());
    if (system(cmd)) { /* leftover temp dir only */ }
    CHECK_EXIT();
}
