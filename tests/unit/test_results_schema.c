/* test_results_schema.c: the export schema (core/results_schema.def) has
 * unique column names and one column per config key and metric, and it
 * lists every metric name and config key a replay can store (sim/runrec.c),
 * so a replay's export never spills into other_config / other_metrics. */
#include "../../core/results_schema.h"
#include "../../sim/replay_ext.h"
#include "../../sim/runrec.h"
#include "check.h"

static void names_unique(void) {
    for (size_t i = 0; i < moe_results_schema_n; i++)
        for (size_t j = 0; j < i; j++) {
            const moe_results_column *a = &moe_results_schema[i], *b = &moe_results_schema[j];
            if (!strcmp(a->name, b->name)) printf("  duplicate column %s\n", a->name);
            CHECK(strcmp(a->name, b->name) != 0);
            if (a->source == b->source && (a->source == MOE_COL_CONFIG || a->source == MOE_COL_METRIC))
                CHECK(strcmp(a->key, b->key) != 0);
        }
    /* the catch-all columns exist once each */
    int oc = 0, om = 0;
    for (size_t i = 0; i < moe_results_schema_n; i++)
        oc += moe_results_schema[i].source == MOE_COL_OTHER_CONFIG,
            om += moe_results_schema[i].source == MOE_COL_OTHER_METRICS;
    CHECK(oc == 1 && om == 1);
    CHECK(moe_results_schema_find(MOE_COL_METRIC, "capacity_bytes") >= 0);
    CHECK(!strcmp(moe_results_schema[moe_results_schema_find(MOE_COL_METRIC, "capacity_bytes")].name,
                  "effective_capacity_bytes"));
    CHECK(moe_results_schema_find(MOE_COL_METRIC, "no_such_metric") == -1);
}

/* Every metric moe_run_metrics can write: all parts of the extension on,
 * every precision tier in use. */
static void replay_metrics_listed(void) {
    moe_replay_ext x;
    memset(&x, 0, sizeof x);
    x.timing = x.prefetch = x.speculate = x.skip = x.precision = x.byte_capacity = x.lowbit = 1;
    x.skipped_slots = x.substituted_slots = 1;
    for (int p = 0; p < MOE_PREC_COUNT; p++) x.tier_experts[p] = 1;
    moe_replay_result res;
    memset(&res, 0, sizeof res);
    res.ext = &x;
    moe_metric m[256];
    size_t n = moe_run_metrics(&res, m, 256);
    /* 11 plain + 16 timing + 5 bytes + 13 prefetch + 5 speculation + 4
     * skipping + 2 lowbit + 2 bits + 6 x 3 tiers + 1 byte capacity when this
     * test was written; fewer means a part did not run, 256 that some did not fit */
    CHECK(n >= 77 && n < 256);
    for (size_t i = 0; i < n; i++) {
        if (moe_results_schema_find(MOE_COL_METRIC, m[i].name) < 0) printf("  metric %s not in the schema\n", m[i].name);
        CHECK(moe_results_schema_find(MOE_COL_METRIC, m[i].name) >= 0);
    }
}

/* Every config key of a replay's config text, each optional part set once
 * (run from the repository root: the profiles are read). */
static void replay_config_listed(void) {
    moe_replay_config base = {.policy = "lru", .capacity = 4, .scope = 0, .seed = 1};
    moe_replay_config v[3] = {base, base, base};
    v[0].capacity_bytes = 1u << 30;
    v[0].device = "t4";
    v[0].model = "Mixtral-8x7B";
    v[0].precision = "uniform:bits=4";
    v[0].prefetch = "gate:ahead=1,n=2";
    v[0].skip = "cum=0.9";
    v[0].speculate = 1;
    v[0].on_miss = 1;
    v[0].split = "fate:shallow=1.5";
    v[0].load_state = "state.bin";
    /* the lines `moesim validate` adds (cli/cmd_validate.c) */
    v[0].extra_config = "io=pread\nio_threads=2\nkind=measured\nthreads=4\nvalidation=v0123";
    v[1].capacity_frac = 0.4;
    int seen_frac = 0, seen_bytes = 0, seen_cap = 0;
    for (int k = 0; k < 3; k++) {
        char text[4096];
        moe_error err = {{0}};
        if (moe_run_config_text_err(&v[k], "lru", text, sizeof text, &err)) printf("  %s\n", err.msg);
        CHECK(moe_run_config_text_err(&v[k], "lru", text, sizeof text, &err) == 0);
        for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
            char *eq = strchr(line, '=');
            CHECK(eq != NULL);
            *eq = 0;
            if (moe_results_schema_find(MOE_COL_CONFIG, line) < 0) printf("  config key %s not in the schema\n", line);
            CHECK(moe_results_schema_find(MOE_COL_CONFIG, line) >= 0);
            seen_frac += !strcmp(line, "capacity_frac"), seen_bytes += !strcmp(line, "capacity_bytes");
            seen_cap += !strcmp(line, "capacity");
        }
    }
    CHECK(seen_frac == 1 && seen_bytes == 1 && seen_cap == 1); /* the three forms were all produced */
}

int main(void) {
    RUN(names_unique);
    RUN(replay_metrics_listed);
    RUN(replay_config_listed);
    CHECK_EXIT();
}
