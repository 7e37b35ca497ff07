/* runrec.c: config text, SQLite record and JSON for one replay. */
#include "runrec.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>

static double ratio(uint64_t a, uint64_t b) { return b ? (double)a / (double)b : 0.0; }

int moe_run_config_text(const moe_replay_config *cfg, const char *canonical_policy, char *buf,
                        size_t cap) {
    /* Keys in alphabetical order; every setting that can change a number is here. */
    int n = snprintf(buf, cap,
                     "capacity=%u\ncold_per_seq=%d\npolicy=%s\nscope=%s\nseed=%llu\n",
                     cfg->capacity, cfg->cold_per_seq ? 1 : 0, canonical_policy,
                     moe_scope_name(cfg->scope), (unsigned long long)cfg->seed);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

int moe_run_store(moe_db *db, const char *experiment, const char *trace_hash,
                  const moe_replay_config *cfg, const moe_replay_result *res, moe_error *err) {
    char config[1024];
    if (moe_run_config_text(cfg, res->policy, config, sizeof config))
        return moe_fail(err, "config text too long");
    uint64_t misses = res->accesses - res->hits;
    moe_metric metrics[] = {
        {"accesses", (double)res->accesses},
        {"hits", (double)res->hits},
        {"misses", (double)misses},
        {"hit_rate", ratio(res->hits, res->accesses)},
        {"compulsory_misses", (double)res->compulsory_misses},
        {"bypasses", (double)res->bypasses},
        {"evictions", (double)res->evictions},
        {"restarts", (double)res->restarts},
        {"token_slots", (double)res->token_slots},
        {"token_slot_hits", (double)res->token_slot_hits},
        {"token_slot_hit_rate", ratio(res->token_slot_hits, res->token_slots)},
    };
    size_t n_lm = (size_t)res->n_layers * 2, n_cv = res->n_windows;
    moe_layer_metric *lm = malloc((n_lm ? n_lm : 1) * sizeof *lm);
    moe_curve_point *cv = malloc((n_cv ? n_cv : 1) * sizeof *cv);
    if (!lm || !cv) {
        free(lm);
        free(cv);
        return moe_fail(err, "out of memory");
    }
    for (uint32_t l = 0; l < res->n_layers; l++) {
        lm[2 * l] = (moe_layer_metric){l, "accesses", (double)res->layer_accesses[l]};
        lm[2 * l + 1] = (moe_layer_metric){l, "hit_rate", ratio(res->layer_hits[l], res->layer_accesses[l])};
    }
    /* Warm-up curve: x = first step of the window, y = hit rate within it. */
    for (uint32_t w = 0; w < res->n_windows; w++)
        cv[w] = (moe_curve_point){"warmup_hit_rate", (double)(w * res->win_steps),
                                  ratio(res->win_hits[w], res->win_accesses[w])};
    moe_run_record rec = {
        .experiment = experiment ? experiment : "",
        .trace_hash = trace_hash,
        .config_text = config,
        .seconds = res->seconds,
        .metrics = metrics,
        .n_metrics = sizeof metrics / sizeof *metrics,
        .layer_metrics = lm,
        .n_layer_metrics = n_lm,
        .curve = cv,
        .n_curve = n_cv,
    };
    int rc = moe_db_store_run(db, &rec, err);
    free(lm);
    free(cv);
    return rc;
}

char *moe_run_json(const moe_replay_config *cfg, const moe_replay_result *res, const char *trace_path) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "trace", trace_path);
    cJSON_AddStringToObject(o, "policy", res->policy);
    cJSON_AddNumberToObject(o, "capacity", cfg->capacity);
    cJSON_AddStringToObject(o, "scope", moe_scope_name(cfg->scope));
    cJSON_AddBoolToObject(o, "cold_per_seq", cfg->cold_per_seq);
    cJSON_AddNumberToObject(o, "seed", (double)cfg->seed);
    cJSON_AddNumberToObject(o, "accesses", (double)res->accesses);
    cJSON_AddNumberToObject(o, "hits", (double)res->hits);
    cJSON_AddNumberToObject(o, "misses", (double)(res->accesses - res->hits));
    cJSON_AddNumberToObject(o, "hit_rate", ratio(res->hits, res->accesses));
    cJSON_AddNumberToObject(o, "compulsory_misses", (double)res->compulsory_misses);
    cJSON_AddNumberToObject(o, "bypasses", (double)res->bypasses);
    cJSON_AddNumberToObject(o, "evictions", (double)res->evictions);
    cJSON_AddNumberToObject(o, "restarts", (double)res->restarts);
    cJSON_AddNumberToObject(o, "token_slots", (double)res->token_slots);
    cJSON_AddNumberToObject(o, "token_slot_hits", (double)res->token_slot_hits);
    cJSON_AddNumberToObject(o, "token_slot_hit_rate", ratio(res->token_slot_hits, res->token_slots));
    cJSON *layers = cJSON_AddArrayToObject(o, "layer_hit_rate");
    for (uint32_t l = 0; l < res->n_layers; l++)
        cJSON_AddItemToArray(layers, cJSON_CreateNumber(ratio(res->layer_hits[l], res->layer_accesses[l])));
    cJSON_AddNumberToObject(o, "seconds", res->seconds);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

void moe_run_print(const moe_replay_config *cfg, const moe_replay_result *res, const char *trace_path) {
    uint64_t misses = res->accesses - res->hits;
    printf("trace       %s\n", trace_path);
    printf("policy      %s, capacity %u, scope %s%s\n", res->policy, cfg->capacity,
           moe_scope_name(cfg->scope), cfg->cold_per_seq ? ", cold per sequence" : ", warm");
    printf("accesses    %llu unique (step, layer, expert) activations\n", (unsigned long long)res->accesses);
    printf("hits        %llu (%.4f)\n", (unsigned long long)res->hits, ratio(res->hits, res->accesses));
    printf("misses      %llu, of which compulsory %llu, not cached %llu\n", (unsigned long long)misses,
           (unsigned long long)res->compulsory_misses, (unsigned long long)res->bypasses);
    printf("token slots %llu, hit rate %.4f\n", (unsigned long long)res->token_slots,
           ratio(res->token_slot_hits, res->token_slots));
    printf("per layer  ");
    for (uint32_t l = 0; l < res->n_layers; l++)
        printf(" %.3f", ratio(res->layer_hits[l], res->layer_accesses[l]));
    printf("\n");
    if (res->seconds > 0)
        printf("speed       %.1f M accesses/s\n", (double)res->accesses / res->seconds / 1e6);
}
