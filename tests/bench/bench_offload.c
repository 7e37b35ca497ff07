/* bench_offload.c: the offload machinery's own cost, each figure against a
 * baseline measured in the same run, interleaved (5 rounds, medians).
 *
 *   bench offload_decode_resident <tok/s> tok/s   decode, every weight in RAM
 *   bench offload_decode_cached <tok/s> tok/s     decode offloaded, every expert
 *                                                 cached (a saved state of all of
 *                                                 them pre-read): only the cache
 *                                                 machinery is added
 *   bench offload_overhead <%> %                  cached vs resident (goal <= 5)
 *   bench offload_read_dd <MB/s> MB/s             dd iflag=direct of the pack, one
 *                                                 expert block per read
 *   bench offload_read_backend <MB/s> MB/s        the backend's demand reads (pread
 *                                                 O_DIRECT + checksum + widening,
 *                                                 one I/O thread), bytes / busy time
 *   bench offload_read_vs_dd <x> ratio            backend / dd
 * Uses models/tinymix (MOESIM_BENCH_MODEL=DIR for another); writes its pack
 * and state under $TMPDIR. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../backend/engine.h"
#include "../../backend/pack.h"
#include "../../core/cache_state.h"
#include "../../cli/offload_run.h"

#define ROUNDS 5
#define PROMPT 32
#define DECODE 96

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return v[n / 2];
}

/* Resident decode: DECODE greedy steps after the prompt; tok/s of decode. */
static double resident_decode(const moe_model *m, const int *prompt) {
    moe_error err;
    moe_engine *e = moe_engine_new(m, 1, PROMPT + DECODE + 1, &err);
    float *lg = malloc((size_t)m->cfg.vocab * sizeof *lg);
    if (!e || !lg) return 0;
    moe_engine_forward(e, prompt, PROMPT, lg, 0, NULL, &err);
    double t = 0;
    for (int i = 0; i < DECODE; i++) {
        int tok = 0;
        for (int v = 1; v < m->cfg.vocab; v++)
            if (lg[v] > lg[tok]) tok = v;
        double t0 = moe_engine_now();
        moe_engine_forward(e, &tok, 1, lg, 0, NULL, &err);
        t += moe_engine_now() - t0;
    }
    free(lg);
    moe_engine_free(e);
    return DECODE / t;
}

static int offloaded(const moe_model *m, const int *prompt, const char *pack, const char *state, uint32_t cap,
                     double *tok_s, double *read_Bps) {
    moe_error err;
    moe_offload_job job = {.model = m, .prompt = prompt, .n_prompt = PROMPT, .max_tokens = DECODE + 1, .threads = 1,
                           .prefill_chunk = PROMPT};
    job.oc = (moe_offload_config){.pack = pack, .io_mode = MOE_IO_DIRECT, .io_threads = 1, .policy = "lru",
                                  .capacity = cap, .seed = 1, .load_state = state};
    moe_offload_out out;
    if (moe_offload_generate(&job, &out, &err)) {
        fprintf(stderr, "bench_offload: %s\n", err.msg);
        return -1;
    }
    double dec = 0;
    uint64_t n = 0;
    for (uint64_t s = 0; s < out.stats->n_steps; s++)
        if (out.stats->step_phase[s] == MOE_PHASE_DECODE) {
            dec += out.stats->step_s[s];
            n++;
        }
    *tok_s = dec > 0 ? (double)n / dec : 0;
    *read_Bps = out.stats->io_busy_s > 0 ? (double)out.stats->bytes_demand / out.stats->io_busy_s : 0;
    moe_offload_out_free(&out);
    return 0;
}

/* dd's figure for one pass over the pack in expert-sized O_DIRECT reads. */
static double dd_Bps(const char *pack, uint64_t block) {
    char cmd[2048], line[512];
    snprintf(cmd, sizeof cmd, "dd if='%s' of=/dev/null iflag=direct bs=%llu 2>&1", pack, (unsigned long long)block);
    FILE *p = popen(cmd, "r");
    double bytes = 0, secs = 0;
    if (!p) return 0;
    while (fgets(line, sizeof line, p)) {
        /* "N bytes (...) copied, S s, R MB/s" */
        const char *c = strstr(line, " copied, ");
        if (c) {
            bytes = atof(line);
            secs = atof(c + 9);
        }
    }
    pclose(p);
    return secs > 0 ? bytes / secs : 0;
}

int main(void) {
    const char *dir = getenv("MOESIM_BENCH_MODEL");
    if (!dir) dir = "models/tinymix";
    char cfg[512], pack[512], state[512];
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    if (access(cfg, R_OK)) {
        printf("bench_offload: skipped, %s not present (set MOESIM_BENCH_MODEL=DIR)\n", cfg);
        return 0;
    }
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp) tmp = "/tmp";
    snprintf(pack, sizeof pack, "%s/moesim-bench-%d.pack", tmp, (int)getpid());
    snprintf(state, sizeof state, "%s/moesim-bench-%d.state", tmp, (int)getpid());
    moe_error err;
    moe_model *m = moe_model_load(dir, &err);
    if (!m || moe_pack_write(m, pack, strcmp(m->dtype, "BF16") ? MOE_PACK_F32 : MOE_PACK_BF16, NULL, NULL, &err)) {
        fprintf(stderr, "bench_offload: %s\n", err.msg);
        return 1;
    }
    /* a state holding every expert: the cached run reads all of them before
     * its first step and never misses */
    uint32_t L = (uint32_t)m->cfg.n_moe_layers, E = (uint32_t)m->cfg.n_experts;
    uint32_t *keys = malloc((size_t)L * E * sizeof *keys);
    for (uint32_t k = 0; k < L * E; k++) keys[k] = k;
    if (moe_cache_state_save(state, L, E, keys, (size_t)L * E, &err)) {
        fprintf(stderr, "bench_offload: %s\n", err.msg);
        return 1;
    }
    free(keys);
    int prompt[PROMPT];
    for (int i = 0; i < PROMPT; i++) prompt[i] = "The quick brown fox jumps over the lazy dog"[i];
    double res[ROUNDS], cached[ROUNDS], dd[ROUNDS], rd[ROUNDS], unused;
    for (int r = 0; r < ROUNDS; r++) {
        res[r] = resident_decode(m, prompt);
        if (offloaded(m, prompt, pack, state, E, &cached[r], &unused)) return 1;
        dd[r] = dd_Bps(pack, (uint64_t)moe_expert_params(m) * (strcmp(m->dtype, "BF16") ? 4 : 2));
        if (offloaded(m, prompt, pack, NULL, 1, &unused, &rd[r])) return 1;
    }
    double mr = median(res, ROUNDS), mc = median(cached, ROUNDS), mdd = median(dd, ROUNDS), mrd = median(rd, ROUNDS);
    printf("bench offload_decode_resident %.1f tok/s\n", mr);
    printf("bench offload_decode_cached %.1f tok/s\n", mc);
    printf("bench offload_overhead %.1f %%\n", 100 * (mr / mc - 1));
    printf("bench offload_read_dd %.1f MB/s\n", mdd / 1e6);
    printf("bench offload_read_backend %.1f MB/s\n", mrd / 1e6);
    printf("bench offload_read_vs_dd %.2f ratio\n", mdd > 0 ? mrd / mdd : 0);
    unlink(pack);
    unlink(state);
    moe_model_free(m);
    return 0;
}
