/* runrec.c: config text, SQLite record and JSON for one replay. */
#include "runrec.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/device_profile.h"
#include "../core/on_miss.h"
#include "../core/precision.h"
#include "../core/prefetch.h"
#include "../core/split.h"
#include "../core/units.h"
#include "replay_ext.h"

static double ratio(uint64_t a, uint64_t b) { return b ? (double)a / (double)b : 0.0; }

static int cmp_line(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int moe_run_config_text_err(const moe_replay_config *cfg, const char *canonical_policy, char *buf,
                            size_t cap, moe_error *err) {
    /* One "key=value" line per setting that can change a number, keys in
     * alphabetical order. */
    char lines[32][1100], canon[512];
    const char *ptr[32];
    int n = 0;
    if (cfg->capacity_bytes) snprintf(lines[n++], sizeof lines[0], "capacity_bytes=%llu", (unsigned long long)cfg->capacity_bytes);
    else if (cfg->capacity_frac > 0) snprintf(lines[n++], sizeof lines[0], "capacity_frac=%g", cfg->capacity_frac);
    else snprintf(lines[n++], sizeof lines[0], "capacity=%u", cfg->capacity);
    snprintf(lines[n++], sizeof lines[0], "cold_per_seq=%d", cfg->cold_per_seq ? 1 : 0);
    /* 0 keeps the identity of a run without --count-from */
    if (cfg->count_from) snprintf(lines[n++], sizeof lines[0], "count_from=%llu", (unsigned long long)cfg->count_from);
    snprintf(lines[n++], sizeof lines[0], "policy=%s", canonical_policy);
    snprintf(lines[n++], sizeof lines[0], "scope=%s", moe_scope_name(cfg->scope));
    snprintf(lines[n++], sizeof lines[0], "seed=%llu", (unsigned long long)cfg->seed);
    if (cfg->device) {
        moe_device_profile d;
        if (moe_replay_device(cfg, &d, err))
            return -1;
        snprintf(lines[n++], sizeof lines[0], "device=%s", d.canonical);
    }
    if (cfg->model) {
        moe_model_profile m;
        if (moe_model_profile_load(cfg->models_path ? cfg->models_path : MOE_MODELS_INI, cfg->model, &m, err))
            return -1;
        /* a trace header's bytes override the profile's; the trace hash,
         * the other half of the identity, covers them */
        snprintf(lines[n++], sizeof lines[0], "model=%s", m.canonical);
    }
    if (cfg->precision) {
        if (moe_precision_canonical(cfg->precision, canon, sizeof canon, err)) return -1;
        snprintf(lines[n++], sizeof lines[0], "precision=%s", canon);
    }
    if (cfg->prefetch) {
        if (moe_prefetch_canonical(cfg->prefetch, canon, sizeof canon, err)) return -1;
        snprintf(lines[n++], sizeof lines[0], "prefetch=%s", canon);
    }
    if (cfg->skip) {
        double a, b;
        if (moe_skip_parse(cfg->skip, &a, &b, canon, sizeof canon, err)) return -1;
        snprintf(lines[n++], sizeof lines[0], "skip=%s", canon);
    }
    if (cfg->speculate) snprintf(lines[n++], sizeof lines[0], "speculate=1");
    /* wait keeps the identity of a run without --on-miss */
    if (cfg->on_miss) snprintf(lines[n++], sizeof lines[0], "on_miss=%s", moe_on_miss_name(cfg->on_miss));
    /* only a non-uniform split is a different run: "uniform" keeps the
     * identity of a run without --split */
    if (!moe_split_is_uniform(cfg->split)) {
        if (moe_split_canonical(cfg->split, canon, sizeof canon, err)) return -1;
        snprintf(lines[n++], sizeof lines[0], "split=%s", canon);
    }
    if (cfg->load_state) snprintf(lines[n++], sizeof lines[0], "load_state=%s", cfg->load_state);
    if (cfg->stream_dense) {
        snprintf(lines[n++], sizeof lines[0], "stream_dense=%u", cfg->stream_dense);
        /* given bytes (validate: the dense pack's) change the numbers; else the model line has them */
        if (cfg->dense_bytes) snprintf(lines[n++], sizeof lines[0], "dense_bytes=%llu", (unsigned long long)cfg->dense_bytes);
    }
    /* caller-supplied lines (a validation's kind and id, how a measured run
     * read its experts): "key=value" separated by newlines */
    for (const char *p = cfg->extra_config; p && *p && n < 32;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (len) snprintf(lines[n++], sizeof lines[0], "%.*s", (int)len, p);
        p += len + (nl != NULL);
    }
    for (int i = 0; i < n; i++) ptr[i] = lines[i];
    qsort(ptr, (size_t)n, sizeof *ptr, cmp_line);
    size_t used = 0;
    if (cap) buf[0] = 0;
    for (int i = 0; i < n; i++) {
        int w = snprintf(buf + used, cap > used ? cap - used : 0, "%s\n", ptr[i]);
        if (w < 0 || used + (size_t)w >= cap) return moe_fail(err, "config text too long");
        used += (size_t)w;
    }
    return 0;
}

int moe_run_config_text(const moe_replay_config *cfg, const char *canonical_policy, char *buf,
                        size_t cap) {
    return moe_run_config_text_err(cfg, canonical_policy, buf, cap, NULL);
}

size_t moe_run_metrics(const moe_replay_result *res, moe_metric *out, size_t cap) {
    size_t n = 0;
#define M(name, v) do { if (n < cap) out[n++] = (moe_metric){name, (double)(v)}; } while (0)
    M("accesses", res->accesses);
    M("hits", res->hits);
    M("misses", res->accesses - res->hits);
    M("hit_rate", ratio(res->hits, res->accesses));
    M("compulsory_misses", res->compulsory_misses);
    M("bypasses", res->bypasses);
    M("evictions", res->evictions);
    M("restarts", res->restarts);
    M("token_slots", res->token_slots);
    M("token_slot_hits", res->token_slot_hits);
    M("token_slot_hit_rate", ratio(res->token_slot_hits, res->token_slots));
    const moe_replay_ext *x = res->ext;
    if (!x) return n;
    if (x->timing) {
        M("total_s", x->total_s);
        M("tok_s", x->tok_s);
        M("ttft_mean_s", x->ttft_mean_s);
        M("tpot_mean_s", x->tpot_mean_s);
        M("tpot_p50_s", x->tpot_p50_s);
        M("tpot_p99_s", x->tpot_p99_s);
        M("compute_s", x->compute_s);
        M("dense_s", x->dense_s);
        M("expert_s", x->expert_s);
        M("stall_s", x->stall_s);
        M("stall_miss_s", x->stall_miss_s);
        M("stall_late_prefetch_s", x->stall_late_s);
        M("io_utilisation", x->io_util);
        M("sequences", x->n_seqs);
        M("decode_steps", x->decode_steps);
        M("decode_tokens", x->decode_tokens);
    }
    M("bytes_read", x->bytes_read);
    M("bytes_demand", x->bytes_demand);
    M("bytes_prefetch", x->bytes_prefetch);
    M("reads_demand", x->reads_demand);
    M("reads_prefetch", x->reads_prefetch);
    if (x->stream_dense) {
        M("bytes_dense", x->bytes_dense);
        M("reads_dense", x->reads_dense);
        if (x->timing) M("stall_dense_s", x->stall_dense_s);
    }
    if (x->prefetch) {
        M("prefetch_precision", x->pf_precision);
        M("prefetch_recall", x->pf_recall);
        M("prefetch_recall_k", x->pf_recall_k);
        M("prefetch_predicted", x->pf_predicted);
        M("prefetch_correct", x->pf_correct);
        M("prefetch_issued", x->pf_issued);
        M("prefetch_bypassed", x->pf_bypassed);
        M("prefetch_useful", x->pf_useful);
        M("prefetch_late", x->pf_late);
        M("prefetch_evicted_unused", x->pf_evicted_unused);
        M("prefetch_unused_end", x->pf_unused_end);
        M("collision_misses", x->collision_misses);
        M("prefetch_wasted_bytes", x->pf_wasted_bytes);
    }
    if (x->speculate) {
        M("spec_executed", x->spec_executed);
        M("spec_hits", x->spec_hits);
        M("spec_wasted", x->spec_wasted);
        M("spec_hidden_s", x->spec_hidden_s);
        M("spec_wasted_s", x->spec_wasted_s);
    }
    if (x->skip || x->skipped_slots) {
        M("skipped_slots", x->skipped_slots);
        M("skipped_activations", x->skipped_activations);
        M("skipped_gate_mass", x->skipped_mass_frac);
        if (x->substituted_slots) M("substituted_slots", x->substituted_slots);
    }
    if (x->lowbit) {
        M("lowbit_slots", x->lowbit_slots);
        M("lowbit_activations", x->lowbit_activations);
    }
    if (x->precision || x->byte_capacity) {
        static const char *const tn[MOE_PREC_COUNT][3] = {
            {"tier_f32_experts", "tier_f32_activations", "tier_f32_bytes_read"},
            {"tier_f16_experts", "tier_f16_activations", "tier_f16_bytes_read"},
            {"tier_q8_experts", "tier_q8_activations", "tier_q8_bytes_read"},
            {"tier_q4_experts", "tier_q4_activations", "tier_q4_bytes_read"},
            {"tier_q3_experts", "tier_q3_activations", "tier_q3_bytes_read"},
            {"tier_q2_experts", "tier_q2_activations", "tier_q2_bytes_read"},
        };
        M("effective_bits_active", x->eff_bits_active);
        M("effective_bits_model", x->eff_bits_model);
        for (int p = 0; p < MOE_PREC_COUNT; p++) {
            if (!x->tier_experts[p] && !x->tier_activations[p]) continue;
            M(tn[p][0], x->tier_experts[p]);
            M(tn[p][1], x->tier_activations[p]);
            M(tn[p][2], x->tier_bytes_read[p]);
        }
    }
    if (x->byte_capacity) M("capacity_bytes", x->capacity_bytes);
#undef M
    return n;
}

int moe_run_store(moe_db *db, const char *experiment, const char *trace_hash,
                  const moe_replay_config *cfg, const moe_replay_result *res, moe_error *err) {
    char config[4096];
    if (moe_run_config_text_err(cfg, res->policy, config, sizeof config, err)) return -1;
    moe_metric metrics[128];
    size_t n_metrics = moe_run_metrics(res, metrics, sizeof metrics / sizeof *metrics);
    size_t n_lm = (size_t)res->n_layers * 2, n_cv = res->n_windows + MOE_SINCE_START_STEPS;
    moe_layer_metric *lm = malloc((n_lm ? n_lm : 1) * sizeof *lm);
    moe_curve_point *cv = malloc((n_cv ? n_cv : 1) * sizeof *cv);
    moe_seq_count *sq = malloc((res->n_seqs ? res->n_seqs : 1) * sizeof *sq);
    if (!lm || !cv || !sq) {
        free(lm);
        free(cv);
        free(sq);
        return moe_fail(err, "out of memory");
    }
    for (uint32_t q = 0; q < res->n_seqs; q++)
        sq[q] = (moe_seq_count){res->seq_ids[q], res->seq_accesses[q], res->seq_hits[q]};
    for (uint32_t l = 0; l < res->n_layers; l++) {
        lm[2 * l] = (moe_layer_metric){l, "accesses", (double)res->layer_accesses[l]};
        lm[2 * l + 1] = (moe_layer_metric){l, "hit_rate", ratio(res->layer_hits[l], res->layer_accesses[l])};
    }
    /* Warm-up curve: x = first step of the window, y = hit rate within it. */
    for (uint32_t w = 0; w < res->n_windows; w++)
        cv[w] = (moe_curve_point){"warmup_hit_rate", (double)(w * res->win_steps),
                                  ratio(res->win_hits[w], res->win_accesses[w])};
    /* Recovery curve (replay.h): x = steps since a sequence start, y = hit
     * rate over every start but the first; offsets nothing reached are left
     * out (a trace of one sequence has none). */
    n_cv = res->n_windows;
    for (uint32_t o = 0; o < MOE_SINCE_START_STEPS; o++)
        if (res->since_start_accesses[o])
            cv[n_cv++] = (moe_curve_point){"seq_start_hit_rate", (double)o,
                                           ratio(res->since_start_hits[o], res->since_start_accesses[o])};
    moe_run_record rec = {
        .experiment = experiment ? experiment : "",
        .trace_hash = trace_hash,
        .config_text = config,
        .seconds = res->seconds,
        .metrics = metrics,
        .n_metrics = n_metrics,
        .layer_metrics = lm,
        .n_layer_metrics = n_lm,
        .curve = cv,
        .n_curve = n_cv,
        .seqs = sq,
        .n_seqs = res->n_seqs,
    };
    int rc = moe_db_store_run(db, &rec, err);
    free(lm);
    free(cv);
    free(sq);
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
    if (cfg->count_from) cJSON_AddNumberToObject(o, "count_from", (double)cfg->count_from);
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
    if (res->ext) {
        const moe_replay_ext *x = res->ext;
        if (cfg->capacity_bytes || cfg->capacity_frac > 0) {
            cJSON_AddNumberToObject(o, "capacity_bytes", (double)x->capacity_bytes);
            if (cfg->capacity_frac > 0) cJSON_AddNumberToObject(o, "capacity_frac", cfg->capacity_frac);
        }
        if (x->device[0]) cJSON_AddStringToObject(o, "device", x->device);
        if (x->model[0]) cJSON_AddStringToObject(o, "model", x->model);
        if (x->prefetcher[0]) cJSON_AddStringToObject(o, "prefetch", x->prefetcher);
        if (x->scheme[0]) {
            cJSON_AddStringToObject(o, "precision", x->scheme);
            cJSON_AddStringToObject(o, "precision_profile",
                                    x->profile_oracle ? "replayed trace (oracle)" : "separate trace or none");
        }
        if (x->skip_spec[0]) cJSON_AddStringToObject(o, "skip", x->skip_spec);
        if (cfg->on_miss) cJSON_AddStringToObject(o, "on_miss", moe_on_miss_name(cfg->on_miss));
        cJSON_AddBoolToObject(o, "speculate", x->speculate);
        if (x->stream_dense) {
            cJSON_AddNumberToObject(o, "stream_dense", x->stream_dense);
            cJSON_AddNumberToObject(o, "dense_bytes", (double)x->dense_bytes);
        }
        moe_metric m[128];
        size_t n = moe_run_metrics(res, m, 128);
        for (size_t i = 11; i < n; i++) cJSON_AddNumberToObject(o, m[i].name, m[i].value);
        cJSON *eb = cJSON_AddObjectToObject(o, "expert_bytes");
        for (int p = 0; p < MOE_PREC_COUNT; p++) cJSON_AddNumberToObject(eb, moe_prec_name[p], (double)x->expert_bytes[p]);
    }
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

/* Bytes and times in the unit a person reads (core/units.h); up to 8 on
 * one line (a ring of buffers, so several fit in one printf). */
static char *ring(void) {
    static char buf[8][32];
    static int k;
    k = (k + 1) % 8;
    return buf[k];
}
static const char *bytes(uint64_t b) { return moe_bytes_text((double)b, ring(), 32); }
static const char *dur(double s) { return moe_duration_text(s, ring(), 32); }

/* The model profile's canonical name is its identity (raw counts, kept in
 * JSON and SQLite); the text shows it without the byte list, whose sizes
 * follow in the unit a person reads. */
static void print_model(const moe_replay_ext *x) {
    const char *b = strstr(x->model, ",bytes=");
    printf("model       %.*s\n", b ? (int)(b - x->model) : (int)strlen(x->model), x->model);
    printf("expert size");
    for (int p = 0; p < MOE_PREC_COUNT; p++)
        if (x->expert_bytes[p]) printf("%s %s %s", p ? "," : "", moe_prec_name[p], bytes(x->expert_bytes[p]));
    printf("\n");
}

static void print_ext(const moe_replay_config *cfg, const moe_replay_result *res) {
    const moe_replay_ext *x = res->ext;
    if (x->model[0]) print_model(x);
    if (x->byte_capacity)
        printf("capacity    %s in all%s\n", bytes(x->capacity_bytes),
               cfg->scope == MOE_SCOPE_PER_LAYER ? " (split evenly per layer)" : "");
    if (x->prefetch) {
        printf("prefetch    %s: precision %.4f, recall %.4f (of the router's unique set), recall/k %.4f\n",
               x->prefetcher, x->pf_precision, x->pf_recall, x->pf_recall_k);
        printf("            issued %llu, useful %llu, late %llu, evicted unused %llu, unused at end %llu,\n"
               "            collision misses %llu, wasted %s\n",
               (unsigned long long)x->pf_issued, (unsigned long long)x->pf_useful, (unsigned long long)x->pf_late,
               (unsigned long long)x->pf_evicted_unused, (unsigned long long)x->pf_unused_end,
               (unsigned long long)x->collision_misses, bytes(x->pf_wasted_bytes));
    }
    if (x->skip || x->skipped_slots) {
        printf("skipped     %llu slots, %llu activations, gate mass %.4f of %.1f%s%s", (unsigned long long)x->skipped_slots,
               (unsigned long long)x->skipped_activations, x->skipped_mass_frac, x->total_mass,
               x->skip_spec[0] ? ", skip " : "", x->skip_spec);
        if (cfg->on_miss)
            printf("%s--on-miss %s", x->skip_spec[0] ? "; " : ", ", moe_on_miss_name(cfg->on_miss));
        if (cfg->on_miss == MOE_ON_MISS_SUBSTITUTE)
            printf(": %llu of them run on a resident substitute", (unsigned long long)x->substituted_slots);
        printf("\n");
    }
    if (moe_on_miss_mode(cfg->on_miss) == MOE_ON_MISS_LOWBIT)
        printf("low copies  %llu slots in %llu expert runs used the resident low-precision copy, "
               "--on-miss %s\n", (unsigned long long)x->lowbit_slots, (unsigned long long)x->lowbit_activations,
               moe_on_miss_name(cfg->on_miss));
    if (x->precision) {
        printf("precision   %s%s: effective bits %.2f (computed), %.2f (model)\n", x->scheme,
               x->profile_oracle ? " [profile = replayed trace: oracle]" : "", x->eff_bits_active, x->eff_bits_model);
        for (int p = 0; p < MOE_PREC_COUNT; p++)
            if (x->tier_experts[p] || x->tier_activations[p])
                printf("  tier %-4s %6llu experts (%s), %llu activations, %s read\n", moe_prec_name[p],
                       (unsigned long long)x->tier_experts[p], bytes(x->tier_model_bytes[p]),
                       (unsigned long long)x->tier_activations[p], bytes(x->tier_bytes_read[p]));
    }
    printf("bytes read  %s (demand %s in %llu reads, prefetch %s in %llu reads)\n", bytes(x->bytes_read),
           bytes(x->bytes_demand), (unsigned long long)x->reads_demand, bytes(x->bytes_prefetch),
           (unsigned long long)x->reads_prefetch);
    if (x->stream_dense)
        printf("dense       streamed: %s in %llu reads of %s, %u layer buffers\n", bytes(x->bytes_dense),
               (unsigned long long)x->reads_dense, bytes(x->dense_bytes), x->stream_dense);
    if (!x->timing) return;
    printf("device      %s\n", x->device);
    printf("tok/s       %.3f  (TPOT mean %s, p50 %s, p99 %s over %llu decode steps)\n", x->tok_s,
           dur(x->tpot_mean_s), dur(x->tpot_p50_s), dur(x->tpot_p99_s), (unsigned long long)x->decode_steps);
    printf("TTFT        %s mean over %llu sequences\n", dur(x->ttft_mean_s), (unsigned long long)x->n_seqs);
    double tot = x->total_s > 0 ? x->total_s : 1;
    printf("time        %s = compute %s (%.1f%%: dense %s, experts %s, speculative %s)\n",
           dur(x->total_s), dur(x->compute_s), 100 * x->compute_s / tot, dur(x->dense_s), dur(x->expert_s),
           dur(x->spec_compute_s));
    printf("            + stall %s (%.1f%%: misses %s, late prefetches %s)\n", dur(x->stall_s),
           100 * x->stall_s / tot, dur(x->stall_miss_s), dur(x->stall_late_s));
    if (x->stream_dense)
        printf("            + dense stall %s (%.1f%%: waiting for a layer's streamed block)\n", dur(x->stall_dense_s),
               100 * x->stall_dense_s / tot);
    printf("I/O         utilisation %.1f%%\n", 100 * x->io_util);
    if (x->speculate)
        printf("speculate   %llu run, %llu confirmed (%s hidden), %llu wasted (%s)\n",
               (unsigned long long)x->spec_executed, (unsigned long long)x->spec_hits, dur(x->spec_hidden_s),
               (unsigned long long)x->spec_wasted, dur(x->spec_wasted_s));
}

const char *moe_capacity_text(const moe_replay_config *cfg, char *buf, size_t cap) {
    char b[32];
    if (cfg->capacity_bytes) snprintf(buf, cap, "%s in all", moe_bytes_text((double)cfg->capacity_bytes, b, sizeof b));
    else if (cfg->capacity_frac > 0) snprintf(buf, cap, "%g%% of all experts' bytes", cfg->capacity_frac * 100);
    else snprintf(buf, cap, "%u expert%s %s", cfg->capacity, cfg->capacity == 1 ? "" : "s",
                  cfg->scope == MOE_SCOPE_GLOBAL ? "in all" : "per layer");
    return buf;
}

void moe_run_print(const moe_replay_config *cfg, const moe_replay_result *res, const char *trace_path) {
    uint64_t misses = res->accesses - res->hits;
    printf("trace       %s\n", trace_path);
    char capt[96];
    printf("policy      %s, capacity %s, scope %s%s\n", res->policy, moe_capacity_text(cfg, capt, sizeof capt),
           moe_scope_name(cfg->scope), cfg->cold_per_seq ? ", cold per sequence" : ", warm");
    printf("accesses    %llu unique (step, layer, expert) activations", (unsigned long long)res->accesses);
    if (cfg->count_from)
        printf(" of tokens at position >= %llu (earlier ones warm the caches, uncounted)",
               (unsigned long long)cfg->count_from);
    printf("\n");
    printf("hits        %llu (%.4f)\n", (unsigned long long)res->hits, ratio(res->hits, res->accesses));
    printf("misses      %llu, of which compulsory %llu, not cached %llu\n", (unsigned long long)misses,
           (unsigned long long)res->compulsory_misses, (unsigned long long)res->bypasses);
    printf("token slots %llu, hit rate %.4f\n", (unsigned long long)res->token_slots,
           ratio(res->token_slot_hits, res->token_slots));
    printf("per layer  ");
    for (uint32_t l = 0; l < res->n_layers; l++)
        printf(" %.3f", ratio(res->layer_hits[l], res->layer_accesses[l]));
    printf("\n");
    if (res->ext) print_ext(cfg, res);
    if (res->seconds > 0 && !cfg->count_from) /* with --count-from, accesses are not all that was served */
        printf("speed       %.1f M accesses/s\n", (double)res->accesses / res->seconds / 1e6);
}
