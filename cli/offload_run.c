/* offload_run.c: an offloaded generation and its measured result. */
#include "offload_run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "../backend/capture.h"
#include "../backend/sample.h"
#include "../core/on_miss.h"
#include "../core/timing.h"
#include "../core/trace_formats.h"
#include "../core/units.h"
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

int moe_route_from_check(const moe_trace *t, const char *path, const moe_model *m, uint64_t steps, moe_error *err) {
    const moe_model_config *c = &m->cfg;
    if (moe_trace_is_keys(t)) return moe_fail(err, "%s: a key sequence has no routing to execute", path);
    if (t->n_experts != (uint32_t)c->n_experts || t->top_k != (uint32_t)c->top_k || t->n_layers != (uint32_t)c->n_moe_layers)
        return moe_fail(err, "%s: trace geometry %u layers x %u experts, top-%u does not match model %s (%d MoE layers x %d "
                        "experts, top-%d)", path, t->n_layers, t->n_experts, t->top_k, m->name, c->n_moe_layers,
                        c->n_experts, c->top_k);
    uint64_t S = steps && steps < t->n_steps ? steps : t->n_steps;
    if (!S) return moe_fail(err, "%s: the trace has no steps", path);
    for (uint64_t s = 0; s < S; s++) {
        uint64_t a = t->step_first_token[s], b = t->step_first_token[s + 1];
        if (b - a > MOE_ENGINE_MAX_STEP)
            return moe_fail(err, "%s: step %llu has %llu tokens; an offloaded step holds at most %d (re-chunk the prefill)",
                            path, (unsigned long long)s, (unsigned long long)(b - a), MOE_ENGINE_MAX_STEP);
        size_t r0 = moe_trace_rec(t, a, 0), r1 = moe_trace_rec(t, b, 0);
        for (size_t r = r0; r < r1; r++)
            if (t->experts[r] == MOE_NO_EXPERT)
                return moe_fail(err, "%s: step %llu, token %llu, layer %zu has an empty slot; --route-from needs every slot "
                                "filled", path, (unsigned long long)s, (unsigned long long)(a + (r - r0) / ((size_t)t->n_layers * t->top_k)),
                                (r / t->top_k) % t->n_layers);
    }
    return 0;
}

/* The trace's first L layers, as a new trace (owned arrays). */
static moe_trace *first_layers(const moe_trace *t, uint32_t L, moe_error *err) {
    moe_trace_builder *b = moe_tb_new(L, t->n_experts, t->top_k, t->weights != NULL, 0, t->lookahead_depth);
    if (!b) return moe_fail(err, "out of memory"), NULL;
    uint32_t K = t->top_k, D = t->lookahead_depth;
    for (uint64_t s = 0; s < t->n_steps; s++) {
        if (moe_tb_begin_step(b, t->step_id[s], t->step_phase[s], err)) goto fail;
        for (uint64_t tok = t->step_first_token[s]; tok < t->step_first_token[s + 1]; tok++) {
            int64_t ti = moe_tb_add_token(b, t->token_seq[tok], t->token_pos[tok], err);
            if (ti < 0) goto fail;
            for (uint32_t l = 0; l < L; l++) {
                size_t r = moe_trace_rec(t, tok, l);
                for (uint32_t k = 0; k < K; k++)
                    if (t->experts[r + k] != MOE_NO_EXPERT &&
                        moe_tb_set(b, (uint64_t)ti, l, k, t->experts[r + k], t->weights ? t->weights[r + k] : 0, err))
                        goto fail;
                if (!D) continue;
                uint16_t *la = moe_tb_lookahead(b, (uint64_t)ti, l);
                for (uint32_t d = 0; d < D; d++)
                    for (uint32_t k = 0; k < K; k++)
                        la[d * K + k] = l + d + 1 < L ? t->lookahead[r * D + d * K + k] : MOE_NO_EXPERT;
            }
        }
    }
    char meta[256];
    snprintf(meta, sizeof meta, "truncated_from_layers=%u\n", t->n_layers);
    moe_trace *out = moe_tb_finish(b, t->model, t->source, meta, err);
    if (out) memcpy(out->expert_bytes, t->expert_bytes, sizeof out->expert_bytes);
    return out;
fail:
    moe_tb_abort(b);
    return NULL;
}

moe_trace *moe_route_from_open(const char *path, const moe_model *m, uint64_t steps, int truncate, moe_error *err) {
    moe_trace *t = moe_trace_load(path, err);
    uint32_t L = (uint32_t)m->cfg.n_moe_layers;
    if (t && t->n_layers > L && !moe_trace_is_keys(t)) {
        if (!truncate) {
            moe_fail(err, "%s: the trace has %u MoE layers, model %s %u (a truncated model executes the trace's first "
                          "layers with --route-truncate)", path, t->n_layers, m->name, L);
            moe_trace_free(t);
            return NULL;
        }
        moe_trace *cut = first_layers(t, L, err);
        moe_trace_free(t);
        if (!cut) return NULL;
        t = cut;
    }
    if (t && moe_route_from_check(t, path, m, steps, err)) {
        moe_trace_free(t);
        return NULL;
    }
    return t;
}

/* The longest sequence among the first S steps, in tokens (the KV cache's
 * size), and their total token count. */
static void route_extent(const moe_trace *t, uint64_t S, int *longest, uint64_t *total) {
    uint64_t run = 0, best = 0;
    for (uint64_t s = 0; s < S; s++) {
        uint64_t a = t->step_first_token[s], n = t->step_first_token[s + 1] - a;
        if (s && t->token_seq[a] != t->token_seq[t->step_first_token[s - 1]]) run = 0;
        run += n;
        if (run > best) best = run;
    }
    *longest = (int)best;
    *total = t->step_first_token[S];
}

/* --route-from: the trace's steps, each one forward call whose routing is
 * the trace's; a new sequence id empties the KV cache. The tokens fed are
 * the greedy continuation (prefill: position mod vocabulary): with routing
 * given, they change no cost. */
static int route_from_loop(const moe_offload_job *job, moe_engine *eng, moe_offload *off, moe_capture *cap,
                           float *logits, uint64_t S, moe_error *err) {
    const moe_trace *t = job->route_from;
    const moe_model_config *c = &job->model->cfg;
    int tok[MOE_ENGINE_MAX_STEP], next = 0;
    for (uint64_t s = 0; s < S; s++) {
        uint64_t a = t->step_first_token[s];
        int n = (int)(t->step_first_token[s + 1] - a), phase = t->step_phase[s];
        uint32_t seq = t->token_seq[a];
        if (s && seq != t->token_seq[t->step_first_token[s - 1]]) moe_engine_reset(eng);
        int pos = moe_engine_pos(eng);
        for (int i = 0; i < n; i++) tok[i] = phase == MOE_PHASE_DECODE && i == 0 && pos ? next : (pos + i) % c->vocab;
        size_t r = moe_trace_rec(t, a, 0);
        moe_forced_routing fr = {t->experts + r, t->weights ? t->weights + r : NULL,
                                 t->lookahead ? t->lookahead + r * t->lookahead_depth : NULL, (int)t->lookahead_depth};
        moe_engine_force_routing(eng, &fr);
        if (moe_offload_step_begin(off, seq, phase, (uint32_t)pos, (uint32_t)n, err) ||
            moe_engine_forward(eng, tok, n, logits, 0, moe_capture_routing(cap), err) ||
            moe_offload_step_end(off, err) || moe_capture_step(cap, phase, seq, pos, n, err))
            return moe_fail_prefix(err, "%s step %llu", "--route-from", (unsigned long long)s);
        int best = 0;
        for (int v = 1; v < c->vocab; v++)
            if (logits[v] > logits[best]) best = v;
        next = best;
    }
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
    uint64_t route_S = 0;
    if (job->route_from) {
        const moe_trace *t = job->route_from;
        uint64_t total;
        route_S = job->route_steps && job->route_steps < t->n_steps ? job->route_steps : t->n_steps;
        route_extent(t, route_S, &ctx, &total);
        if (total > UINT32_MAX || route_S > UINT32_MAX) return moe_fail(err, "--route-from: too many steps for one run");
        oc.max_tokens = (uint32_t)total;
        oc.max_steps = (uint32_t)route_S;
        chunk = MOE_ENGINE_MAX_STEP; /* capture buffers hold the largest step */
    }
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
    if (job->route_from) {
        if (route_from_loop(job, eng, out->off, cap, logits, route_S, err)) goto done;
    } else {
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
    }
    out->wall_s = moe_engine_now() - t0;

    out->times = moe_engine_times_get(eng);
    if (moe_offload_finish(out->off, &out->stats, err)) goto done;
    if (job->save_state && moe_offload_save_state(out->off, job->save_state, err)) goto done;
    char meta[512];
    if (job->route_from)
        snprintf(meta, sizeof meta, "arch=%s\nweights_dtype=%s\nrouted_from=%s\nrouted_steps=%llu\noffloaded=1\n",
                 c->model_type, m->dtype, job->route_from->model, (unsigned long long)route_S);
    else
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
    for (uint64_t s = 0; s < st->n_steps; s++) moe_replay_count_step(res, s, st->step_accesses[s], st->step_hits[s]);
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
    x->stream_dense = st->dense_budget;
    x->dense_bytes = st->dense_block_bytes;
    x->bytes_dense = st->bytes_dense;
    x->reads_dense = st->reads_dense;
    x->stall_dense_s = st->stall_dense_s;
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
    if (st->dense_budget) {
        char a[32], b[32];
        fprintf(f, "moesim %s: --stream-dense=%u: read %llu dense blocks of %llu B (%s in all), waited %s for them\n",
                cmd, st->dense_budget, (unsigned long long)st->reads_dense, (unsigned long long)st->dense_block_bytes,
                moe_bytes_text((double)st->bytes_dense, a, sizeof a), moe_duration_text(st->stall_dense_s, b, sizeof b));
    }
    if (st->lowbit_bits)
        fprintf(f, "moesim %s: --on-miss lowbit: %llu slots ran %d-bit copies held in memory (%.1f MiB, read in %.2f s "
                "before the first step)\n", cmd, (unsigned long long)st->lowbit_slots, st->lowbit_bits,
                (double)st->lowbit_bytes / 1048576.0, st->lowbit_load_s);
}

moe_offload_memory moe_offload_memory_of(const moe_model *m, const moe_offload_config *oc, const moe_offload_stats *st) {
    moe_offload_memory mem = {0};
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0) mem.peak_rss = (uint64_t)ru.ru_maxrss * 1024; /* KiB on Linux */
    const moe_model_config *c = &m->cfg;
    uint64_t routed = (uint64_t)c->n_moe_layers * (uint64_t)c->n_experts * moe_expert_params(m);
    mem.dense = 2 * (m->n_params > routed ? m->n_params - routed : 0);
    uint64_t block = (st->expert_bytes + 4095) / 4096 * 4096;
    uint64_t experts = oc->global ? oc->capacity : (uint64_t)oc->capacity * (uint64_t)c->n_moe_layers;
    mem.cache = experts * block;
    mem.scratch = (uint64_t)c->n_experts * block;
    if (st->dense_budget) { /* the layers' blocks are not resident: B buffers are */
        uint64_t streamed = (uint64_t)c->n_layers * st->dense_block_bytes;
        mem.dense = mem.dense > streamed ? mem.dense - streamed : 0;
        mem.dense_buffers = (uint64_t)st->dense_budget * st->dense_stride;
    }
    return mem;
}

void moe_offload_print_memory(FILE *f, const char *cmd, const moe_offload_memory *mem) {
    char a[32], b[32], c[32], d[32], e[32];
    fprintf(f, "moesim %s: memory: peak RSS %s; dense weights %s + cache %s + one layer of scratch slots %s", cmd,
            moe_bytes_text((double)mem->peak_rss, a, sizeof a), moe_bytes_text((double)mem->dense, b, sizeof b),
            moe_bytes_text((double)mem->cache, c, sizeof c), moe_bytes_text((double)mem->scratch, d, sizeof d));
    if (mem->dense_buffers)
        fprintf(f, " + dense layer buffers %s", moe_bytes_text((double)mem->dense_buffers, e, sizeof e));
    fputc('\n', f);
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
