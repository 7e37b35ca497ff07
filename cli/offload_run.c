/* offload_run.c: an offloaded generation and its measured result. */
#include "offload_run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../backend/capture.h"
#include "../backend/sample.h"
#include "../core/on_miss.h"
#include "../core/timing.h"
#include "../core/trace_formats.h"
#include "../sim/replay_ext.h"

void moe_offload_out_free(moe_offload_out *out) {
    moe_trace_free(out->trace);
    free(out->generated);
    moe_offload_free(out->off);
    memset(out, 0, sizeof *out);
}

/* One forward call as one step: offload bracket + capture. */
static int step(moe_engine *eng, moe_offload *off, moe_capture *cap, const int *tok, int n, int phase,
                float *logits, moe_error *err) {
    int pos = moe_engine_pos(eng);
    if (moe_offload_step_begin(off, 0, phase, (uint32_t)pos, (uint32_t)n, err) ||
        moe_engine_forward(eng, tok, n, logits, 0, moe_capture_routing(cap), err) ||
        moe_offload_step_end(off, err) || moe_capture_step(cap, phase, 0, pos, n, err))
        return -1;
    return 0;
}

int moe_offload_generate(const moe_offload_job *job, moe_offload_out *out, moe_error *err) {
    memset(out, 0, sizeof *out);
    const moe_model *m = job->model;
    const moe_model_config *c = &m->cfg;
    int chunk = job->prefill_chunk;
    if (chunk < 1 || chunk > MOE_ENGINE_MAX_STEP)
        return moe_fail(err, "--prefill-chunk: offloaded runs take 1..%d tokens per step (got %d)",
                        MOE_ENGINE_MAX_STEP, chunk);
    int ctx = job->n_prompt + (int)job->max_tokens;
    moe_offload_config oc = job->oc;
    oc.max_tokens = (uint32_t)ctx;
    oc.max_steps = (uint32_t)((job->n_prompt + chunk - 1) / chunk + job->max_tokens);
    int rc = -1;
    moe_engine *eng = NULL;
    moe_capture *cap = NULL;
    moe_sampler smp = {0};
    float *logits = malloc((size_t)c->vocab * sizeof *logits);
    out->generated = malloc((job->max_tokens + 1) * sizeof *out->generated);
    if (!logits || !out->generated || moe_sampler_init(&smp, c->vocab, job->temperature, job->top_p, job->sample_seed)) {
        moe_fail(err, "out of memory");
        goto done;
    }
    if (!(out->off = moe_offload_new(m, &oc, err))) goto done;
    if (!(eng = moe_engine_new(m, job->threads, ctx, err))) goto done;
    if (moe_engine_set_expert_source(eng, moe_offload_source(out->off), err)) goto done;
    /* --on-miss substitute: the replay picks the substitutes from the router's logits */
    if (!(cap = moe_capture_new(m, oc.on_miss == MOE_ON_MISS_SUBSTITUTE, job->capture_lookahead, chunk))) {
        moe_fail(err, "out of memory");
        goto done;
    }
    moe_engine_set_timing(eng, 1);
    double t0 = moe_engine_now();
    for (int p0 = 0; p0 < job->n_prompt; p0 += chunk) {
        int n = job->n_prompt - p0 < chunk ? job->n_prompt - p0 : chunk;
        if (step(eng, out->off, cap, job->prompt + p0, n, MOE_PHASE_PREFILL, logits, err)) goto done;
    }
    while (out->n_generated < job->max_tokens) {
        int tok = moe_sample(&smp, logits);
        out->generated[out->n_generated++] = tok;
        if (job->on_token) job->on_token(job->on_token_ctx, tok);
        int stop = 0;
        for (int i = 0; i < c->n_eos; i++) stop |= tok == c->eos[i];
        if (out->n_generated == job->max_tokens || stop) break; /* the last token needs no forward pass */
        if (step(eng, out->off, cap, &tok, 1, MOE_PHASE_DECODE, logits, err)) goto done;
    }
    out->wall_s = moe_engine_now() - t0;

    out->times = moe_engine_times_get(eng);
    if (moe_offload_finish(out->off, &out->stats, err)) goto done;
    if (job->save_state && moe_offload_save_state(out->off, job->save_state, err)) goto done;
    char meta[512];
    snprintf(meta, sizeof meta,
             "arch=%s\nweights_dtype=%s\nprompt_tokens=%d\ngenerated=%llu\nprefill_chunk=%d\noffloaded=1\n"
             "lookahead_hidden=post_attention_layernorm output of layer l (MoE block input)\n",
             c->model_type, m->dtype, job->n_prompt, (unsigned long long)out->n_generated, chunk);
    out->trace = moe_capture_finish(cap, meta, err);
    cap = NULL;
    if (!out->trace) goto done;
    rc = 0;
done:
    moe_capture_abort(cap);
    moe_sampler_free(&smp);
    free(logits);
    moe_engine_free(eng);
    if (rc) moe_offload_out_free(out);
    return rc;
}

int moe_offload_result(const moe_offload_out *out, const char *policy, const char *prefetcher,
                       moe_replay_result *res, moe_error *err) {
    const moe_offload_stats *st = out->stats;
    const moe_trace *t = out->trace;
    memset(res, 0, sizeof *res);
    if (moe_replay_result_alloc(res, t, 0)) return moe_fail(err, "out of memory");
    moe_replay_ext *x = res->ext = calloc(1, sizeof *x);
    double *dec = malloc((st->n_steps + 1) * sizeof *dec);
    if (!x || !dec) {
        free(dec);
        moe_replay_result_free(res);
        return moe_fail(err, "out of memory");
    }
    snprintf(res->policy, sizeof res->policy, "%s", policy);
    res->accesses = st->accesses;
    res->hits = st->hits;
    res->compulsory_misses = st->compulsory;
    res->bypasses = st->bypasses;
    res->evictions = st->evictions;
    res->restarts = st->restarts;
    res->token_slots = st->token_slots;
    res->token_slot_hits = st->token_slot_hits;
    x->skipped_slots = st->skipped_slots;
    x->skipped_activations = st->skipped_activations;
    x->substituted_slots = st->substituted_slots;
    x->lowbit = st->lowbit_bits > 0;
    x->lowbit_slots = st->lowbit_slots;
    x->lowbit_activations = st->lowbit_activations;
    memcpy(res->layer_accesses, st->layer_accesses, st->n_layers * sizeof(uint64_t));
    memcpy(res->layer_hits, st->layer_hits, st->n_layers * sizeof(uint64_t));
    for (uint64_t s = 0; s < st->n_steps; s++) {
        res->win_accesses[s / res->win_steps] += st->step_accesses[s];
        res->win_hits[s / res->win_steps] += st->step_hits[s];
    }
    res->seconds = out->wall_s;
    x->timing = 1;
    x->prefetch = prefetcher && *prefetcher;
    snprintf(x->device, sizeof x->device, "measured");
    snprintf(x->prefetcher, sizeof x->prefetcher, "%s", prefetcher ? prefetcher : "");
    /* time: the sum of step durations (sampling between steps is outside, as
     * in the simulator's timeline) */
    double total = 0, ttft = 0, first_ttft_done = 0;
    uint64_t nd = 0;
    for (uint64_t s = 0; s < st->n_steps; s++) {
        total += st->step_s[s];
        if (!first_ttft_done) {
            ttft += st->step_s[s];
            int more_prefill = st->step_phase[s] == MOE_PHASE_PREFILL && s + 1 < st->n_steps &&
                               st->step_phase[s + 1] == MOE_PHASE_PREFILL;
            if (!more_prefill) first_ttft_done = 1;
        }
        if (st->step_phase[s] == MOE_PHASE_DECODE) {
            dec[nd++] = st->step_s[s];
            x->decode_tokens += st->step_tokens[s];
        }
        x->tokens += st->step_tokens[s];
    }
    x->n_seqs = st->n_steps ? 1 : 0;
    x->ttft_mean_s = ttft;
    x->total_s = total;
    x->dense_s = out->times.dense_s + out->times.head_s;
    x->expert_s = out->times.expert_s;
    x->compute_s = x->dense_s + x->expert_s;
    x->stall_miss_s = st->stall_miss_s;
    x->stall_late_s = st->stall_late_s;
    x->stall_s = x->stall_miss_s + x->stall_late_s;
    x->io_util = total > 0 ? st->io_busy_s / (total * st->io_threads) : 0;
    moe_time_stats ts = moe_time_stats_of(dec, nd);
    x->decode_steps = nd;
    x->tpot_mean_s = ts.mean;
    x->tpot_p50_s = ts.p50;
    x->tpot_p99_s = ts.p99;
    x->tok_s = nd && ts.sum > 0 ? (double)x->decode_tokens / ts.sum : total > 0 ? (double)x->tokens / total : 0;
    free(dec);
    x->bytes_demand = st->bytes_demand;
    x->bytes_prefetch = st->bytes_prefetch;
    x->bytes_read = st->bytes_demand + st->bytes_prefetch;
    x->reads_demand = st->reads_demand;
    x->reads_prefetch = st->reads_prefetch;
    x->pf_predictions = st->pf_predictions;
    x->pf_predicted = st->pf_predicted;
    x->pf_correct = st->pf_correct;
    x->pf_actual = st->pf_actual;
    x->pf_slots = st->pf_slots;
    x->pf_slot_correct = st->pf_slot_correct;
    x->pf_precision = st->pf_predicted ? (double)st->pf_correct / (double)st->pf_predicted : 0;
    x->pf_recall = st->pf_actual ? (double)st->pf_correct / (double)st->pf_actual : 0;
    x->pf_recall_k = st->pf_slots ? (double)st->pf_slot_correct / (double)st->pf_slots : 0;
    x->pf_issued = st->pf_issued;
    x->pf_bypassed = st->pf_bypassed;
    x->pf_useful = st->pf_useful;
    x->pf_late = st->pf_late;
    x->pf_evicted_unused = st->pf_evicted_unused;
    x->pf_unused_end = st->pf_unused_end;
    x->collision_misses = st->collision_misses;
    x->pf_wasted_bytes = st->pf_wasted_bytes;
    /* every expert at the pack's precision */
    int prec = st->expert_bytes == t->expert_bytes[MOE_PREC_F32] ? MOE_PREC_F32 : MOE_PREC_F16;
    x->tier_activations[prec] = res->accesses;
    x->tier_bytes_read[prec] = x->bytes_read;
    memcpy(x->expert_bytes, t->expert_bytes, sizeof x->expert_bytes);
    x->eff_bits_active = prec == MOE_PREC_F32 ? 32 : 16;
    return 0;
}

void moe_offload_print_cache(FILE *f, const char *cmd, const char *policy, const moe_offload_config *oc,
                             const moe_offload_stats *st) {
    fprintf(f,
            "moesim %s: offloaded, %s, capacity %u %s, io %s x%u: %llu accesses, %llu hits (%.1f%%), %llu not cached; "
            "read %.1f MiB (%.1f demand, %.1f prefetch)\n",
            cmd, policy, oc->capacity, oc->global ? "in all" : "per layer", moe_io_mode_name(oc->io_mode),
            oc->io_threads, (unsigned long long)st->accesses, (unsigned long long)st->hits,
            st->accesses ? 100.0 * (double)st->hits / (double)st->accesses : 0.0, (unsigned long long)st->bypasses,
            (double)(st->bytes_demand + st->bytes_prefetch) / 1048576.0, (double)st->bytes_demand / 1048576.0,
            (double)st->bytes_prefetch / 1048576.0);
    if (st->lowbit_bits)
        fprintf(f, "moesim %s: --on-miss lowbit: %llu slots ran %d-bit copies held in memory (%.1f MiB, read in %.2f s "
                "before the first step)\n", cmd, (unsigned long long)st->lowbit_slots, st->lowbit_bits,
                (double)st->lowbit_bytes / 1048576.0, st->lowbit_load_s);
}

int moe_offload_write_steps(const char *path, const moe_offload_stats *st, const double *predicted, moe_error *err) {
    moe_atomic_file af;
    if (moe_atomic_open(&af, path, err)) return -1;
    fprintf(af.f, "step,phase,tokens,seconds,accesses,hits%s\n", predicted ? ",predicted_seconds" : "");
    for (uint64_t s = 0; s < st->n_steps; s++) {
        fprintf(af.f, "%llu,%s,%u,%.9f,%llu,%llu", (unsigned long long)s,
                st->step_phase[s] == MOE_PHASE_DECODE ? "decode" : "prefill", st->step_tokens[s], st->step_s[s],
                (unsigned long long)st->step_accesses[s], (unsigned long long)st->step_hits[s]);
        if (predicted) fprintf(af.f, ",%.9f", predicted[s]);
        fputc('\n', af.f);
    }
    return moe_atomic_commit(&af, err);
}
