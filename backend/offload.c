/* offload.c: the offloaded expert source (semantics in offload.h). */
#include "offload.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/cache.h"
#include "../core/cache_state.h"
#include "../core/device_profile.h"
#include "../core/on_miss.h"
#include "../core/precision.h"
#include "../core/prefetch.h"
#include "../core/split.h"
#include "../core/timing.h"
#include "dense_pack.h"
#include "forward_internal.h"
#include "quant.h"

enum { ST_NONE = 0, ST_PF_UNUSED = 1, ST_PF_EVICTED = 2 }; /* prefetch state of a key, as in replay_engine.c */
enum { READ_NONE = 0, READ_QUEUED, READ_DONE };
enum { LOW_COPY = -2 }; /* cur_slot of an expert run from its low copy */
enum { KIND_DEMAND = 0, KIND_PREFETCH = 1, KIND_DENSE = 2 }; /* slot.kind */
#define MOE_OFFLOAD_MAX_PACKS 6

/* One buffer an expert's data lives in while resident (or while one bypassed
 * expert is computed). */
typedef struct slot {
    void *raw;              /* pack block, MOE_PACK_ALIGN-aligned */
    moe_mlp_w w;            /* the weights the engine computes with: f32, or views of raw (quantized pack) */
    moe_qmat qgu, qdn;      /* a quantized pack's views into raw */
    int read;               /* READ_*: written under mu with release order; read with acquire */
    int kind;               /* KIND_* */
    uint64_t seqno;         /* position in the read queue */
    uint32_t layer, expert; /* a dense buffer: the decoder layer (expert unused) */
    uint32_t pack;          /* the pack the read is from */
    int64_t key;            /* global key held, -1 = free */
    char error[1024];       /* a failed read's message (moe_error.msg size) */
} slot;

struct moe_offload {
    const moe_model *m;
    moe_offload_config cfg;
    moe_pack packs[MOE_OFFLOAD_MAX_PACKS];
    uint32_t n_packs;       /* opened */
    uint8_t *pack_of;       /* [L*E]: the pack each expert is read from */
    uint32_t read_pack;     /* the pack read without a plan */
    /* --precision hobbit: a miss is read from the pack of the tier its
     * tokens need (need[e], this layer); prefetches and loaded states at
     * the high tier (the plan's static tier) */
    int hobbit;
    double hb_hi, hb_lo;
    int hb_high, hb_low;
    int tier_pack[MOE_PREC_COUNT]; /* pack holding each tier, -1 = none */
    uint8_t *need;
    /* --on-miss lowbit: every expert of pack low_pack, in memory (low_w[gk]) */
    int32_t low_pack;
    unsigned char *low_buf;
    moe_mlp_w *low_w;
    moe_qmat *low_q;        /* [2*L*E]: gate_up, down views into low_buf */
    uint16_t *low;          /* the current layer's experts run from their low copies */
    uint32_t n_low;
    uint64_t max_stride;
    uint32_t L, E, K;
    moe_cache **caches;
    uint32_t n_caches;
    moe_prefetcher *pf;
    moe_expert_source src;
    char policy[256], prefetcher[256];
    /* slots */
    slot *slots;
    uint32_t n_slots;
    uint32_t *free_list, n_free;
    int32_t *slot_of;       /* global key -> slot, -1 */
    int32_t *cur_slot;      /* expert of the layer being computed -> slot */
    /* --stream-dense (offload.h): the dense pack, B layer buffers (queue ids
     * n_slots + b), the weights bound to each, the next use to queue */
    moe_dense_pack dpack;
    slot *dslots;
    moe_layer_w *dense_w;
    uint32_t n_dense, n_dlayers;
    uint64_t dense_next;
    int have_dpack;
    /* I/O */
    pthread_t *threads;
    uint32_t n_threads;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint32_t *queue, q_head, q_tail, q_cap; /* slot ids (dense buffers: n_slots + b), FIFO */
    uint64_t next_seqno;
    uint32_t in_flight;
    int stop;
    /* what the one waiting thread waits for (wait_read, drain): an I/O
     * thread wakes it only when that is done, not after every read */
    const struct slot *awaited;
    int draining;
    double *busy_s;         /* per thread */
    /* replay state (per global key), as in replay_engine.c */
    uint8_t *pfstate, *seen;
    uint64_t *pred_stamp, *pred_has, *last_use;
    /* per-expert scratch */
    uint32_t *st_full, cur, *nt_full, *nt_list;
    uint16_t *full, *pred;
    int8_t *pf_status;      /* per predicted expert: moe_cache_admit_prefetch's status */
    float *wmax;
    uint8_t *hit;
    /* --on-miss: the served (resident) experts and the substitutes of a layer */
    uint16_t *kept, *sub, *slot_in, *slot_out; /* kept, sub: [E]; slot_in/out: [K] */
    uint32_t *st_sub;       /* per expert: == cur when marked in this layer (a substitute, or --skip: kept) */
    /* the live trace prefetchers and policies read */
    moe_trace *live;        /* calloc'ed; moe_trace_free releases it */
    uint64_t step;          /* index of the current step in live */
    uint64_t time;          /* access ordinal */
    int in_step;
    double step_t0;
    int64_t last_seq;
    FILE *pflog;
    moe_offload_stats st;
};

static double now_s(void) { return moe_engine_now(); }

static uint64_t gkey(const moe_offload *o, uint32_t l, uint32_t e) { return (uint64_t)l * o->E + e; }

/* ---- I/O threads ---------------------------------------------------------- */

typedef struct io_arg {
    moe_offload *o;
    uint32_t id;
} io_arg;

static void *io_main(void *p) {
    io_arg *a = p;
    moe_offload *o = a->o;
    uint32_t id = a->id;
    free(a);
    pthread_mutex_lock(&o->mu);
    for (;;) {
        while (!o->stop && o->q_head == o->q_tail) pthread_cond_wait(&o->cv, &o->mu);
        if (o->q_head == o->q_tail) break; /* stop, queue empty */
        uint32_t qi = o->queue[o->q_head++ % o->q_cap];
        slot *s = qi < o->n_slots ? &o->slots[qi] : &o->dslots[qi - o->n_slots];
        pthread_mutex_unlock(&o->mu);
        double t0 = now_s();
        moe_error err = {{0}};
        const moe_pack *pk = &o->packs[s->pack];
        int rc = s->kind == KIND_DENSE ? moe_dense_pack_read(&o->dpack, s->layer, s->raw, &err)
                                       : moe_pack_read(pk, s->layer, s->expert, s->raw, &err);
        /* a quantized or bf16 block is computed on as read (views into
         * raw); an f32 one is copied out (the engine reads s->w after
         * READ_DONE; the slot's last read decides which form it holds) */
        s->w.q_gate_up = s->w.q_down = NULL;
        s->w.gate_up16 = s->w.down16 = NULL;
        if (s->kind == KIND_DENSE) {
            /* bound by the engine's thread (src_dense): views, nothing to convert */
        } else if (!rc && moe_pack_dtype_bits(pk->dtype)) {
            moe_pack_qviews(pk, s->raw, &s->qgu, &s->qdn);
            s->w.q_gate_up = &s->qgu, s->w.q_down = &s->qdn;
        } else if (!rc && pk->dtype == MOE_PACK_BF16) {
            s->w.gate_up16 = s->raw, s->w.f16 = 0;
            s->w.down16 = (const uint16_t *)s->raw + 2 * (size_t)pk->inter * pk->hidden;
        } else if (!rc) {
            moe_pack_to_f32(pk, s->raw, s->w.gate_up, s->w.down);
        }
        double t1 = now_s();
        pthread_mutex_lock(&o->mu);
        o->busy_s[id] += t1 - t0;
        if (rc) snprintf(s->error, sizeof s->error, "%s", err.msg);
        __atomic_store_n(&s->read, READ_DONE, __ATOMIC_RELEASE);
        o->in_flight--;
        /* a waiter woken for another slot's read only goes back to sleep,
         * and on a two-vCPU VM each such wake-up costs the lane tens of
         * microseconds that no profile term prices */
        if (o->awaited == s || (o->draining && !o->in_flight)) pthread_cond_broadcast(&o->cv);
    }
    pthread_mutex_unlock(&o->mu);
    return NULL;
}

/* Queue a read into slot s (queue id qi) of (layer, expert) from pack, or
 * for KIND_DENSE of decoder layer `layer` from the dense pack. */
static void enqueue(moe_offload *o, uint32_t qi, slot *s, uint32_t l, uint32_t e, uint32_t pack, int kind) {
    pthread_mutex_lock(&o->mu);
    s->layer = l;
    s->expert = e;
    s->pack = pack;
    s->kind = kind;
    s->read = READ_QUEUED;
    s->error[0] = 0;
    s->seqno = o->next_seqno++;
    o->queue[o->q_tail++ % o->q_cap] = qi;
    o->in_flight++;
    pthread_cond_signal(&o->cv);
    pthread_mutex_unlock(&o->mu);
}

static void issue_read(moe_offload *o, uint32_t si, uint32_t l, uint32_t e, uint32_t pack, int kind) {
    enqueue(o, si, &o->slots[si], l, e, pack, kind);
    uint64_t b = o->packs[pack].expert_bytes;
    if (kind) { o->st.reads_prefetch++; o->st.bytes_prefetch += b; }
    else { o->st.reads_demand++; o->st.bytes_demand += b; }
}

/* Wait until slot si's read (if any) is done; returns the seconds waited.
 * The waiting thread sleeps rather than polls: on a VM whose disk the host
 * emulates (Firecracker), a busy guest CPU slows every read (measured: ~110
 * us alone, ~190 us beside a busy thread), more than a wake-up costs. */
static double wait_read(moe_offload *o, slot *s) {
    double t0 = 0, waited = 0;
    /* the common case, data already in, without the lock */
    if (__atomic_load_n(&s->read, __ATOMIC_ACQUIRE) != READ_QUEUED) return 0;
    pthread_mutex_lock(&o->mu);
    if (s->read == READ_QUEUED) {
        t0 = now_s();
        o->awaited = s;
        while (s->read == READ_QUEUED) pthread_cond_wait(&o->cv, &o->mu);
        o->awaited = NULL;
        waited = now_s() - t0;
    }
    pthread_mutex_unlock(&o->mu);
    return waited;
}

static double wait_slot(moe_offload *o, uint32_t si) { return wait_read(o, &o->slots[si]); }

static void drain(moe_offload *o) {
    pthread_mutex_lock(&o->mu);
    o->draining = 1;
    while (o->in_flight) pthread_cond_wait(&o->cv, &o->mu);
    o->draining = 0;
    pthread_mutex_unlock(&o->mu);
}

/* ---- slots ------------------------------------------------------------------ */

/* A free slot for key (or -1 for a scratch use): the most recently freed
 * one whose read is done. A slot freed with its read still in flight (a
 * prefetch evicted before its data arrived) is passed over while another
 * is free, and waited for only when none is: the simulator's lane never
 * waits for a buffer (an evicted prefetch's read just keeps its channel
 * busy), and taking the last freed slot first made the lane wait for the
 * very read that was just evicted (80-117 ms of a 480 ms tinymix run at
 * capacity 4 with prefetch, booked nowhere). */
static int32_t take_slot(moe_offload *o, int64_t key) {
    if (!o->n_free) return -1; /* cannot happen: slots = capacities + one layer's set */
    uint32_t pick = o->n_free - 1;
    for (uint32_t i = o->n_free; i-- > 0;)
        if (__atomic_load_n(&o->slots[o->free_list[i]].read, __ATOMIC_ACQUIRE) != READ_QUEUED) {
            pick = i;
            break;
        }
    uint32_t si = o->free_list[pick];
    o->free_list[pick] = o->free_list[--o->n_free];
    o->st.slot_wait_s += wait_slot(o, si);
    o->slots[si].key = key;
    if (key >= 0) o->slot_of[key] = (int32_t)si;
    return (int32_t)si;
}

static void give_slot(moe_offload *o, uint32_t si) {
    slot *s = &o->slots[si];
    if (s->key >= 0) o->slot_of[s->key] = -1;
    s->key = -1;
    o->free_list[o->n_free++] = si;
}

static void on_evict(void *ctx, const moe_cache *c, uint32_t key) {
    moe_offload *o = ctx;
    uint64_t gk = c->env.fixed_layer >= 0 ? gkey(o, (uint32_t)c->env.fixed_layer, key) : key;
    if (o->pfstate[gk] == ST_PF_UNUSED) {
        o->pfstate[gk] = ST_PF_EVICTED;
        o->st.pf_evicted_unused++;
        o->st.pf_wasted_bytes += o->packs[o->pack_of[gk]].expert_bytes;
    }
    if (o->slot_of[gk] >= 0) give_slot(o, (uint32_t)o->slot_of[gk]);
}

/* ---- the dense stream (--stream-dense, offload.h) -------------------------- */

/* Queue the block of use u (decoder layer u mod layers) into buffer u mod B. */
static void dense_issue(moe_offload *o, uint64_t u) {
    uint32_t b = (uint32_t)(u % o->n_dense);
    enqueue(o, o->n_slots + b, &o->dslots[b], (uint32_t)(u % o->n_dlayers), 0, 0, KIND_DENSE);
    o->st.reads_dense++;
    o->st.bytes_dense += o->dpack.block_bytes;
}

/* Decoder layer l's issue point, right after its demand reads: queue the
 * uses up to u + B - 1 (their buffers held uses already finished). */
static void dense_ahead(moe_offload *o, uint32_t l) {
    uint64_t u = o->step * o->n_dlayers + l;
    while (o->dense_next <= u + o->n_dense - 1) dense_issue(o, o->dense_next++);
}

/* The engine's dense() hook: layer l's block, waited for (a dense stall). */
static const moe_layer_w *src_dense(void *ctx, int l, moe_error *err) {
    moe_offload *o = ctx;
    if (!o->in_step) return moe_fail(err, "offload: forward call outside step_begin/step_end"), NULL;
    uint64_t u = o->step * o->n_dlayers + (uint32_t)l;
    if (o->dense_next <= u) { /* not queued yet: the run's first use, or B = 1 */
        o->dense_next = u;
        dense_issue(o, o->dense_next++);
    }
    uint32_t b = (uint32_t)(u % o->n_dense);
    slot *s = &o->dslots[b];
    o->st.stall_dense_s += wait_read(o, s);
    if (s->error[0]) return moe_fail(err, "%s", s->error), NULL;
    if (s->layer != (uint32_t)l) return moe_fail(err, "offload: dense buffer %u holds layer %u, not %d (a bug)", b, s->layer, l), NULL;
    moe_dense_pack_bind(&o->dpack, s->raw, &o->m->layers[l], &o->dense_w[b]);
    return &o->dense_w[b];
}

static int open_dense(moe_offload *o, const moe_model *m, const moe_offload_config *cfg, moe_error *err) {
    uint32_t NL = (uint32_t)m->cfg.n_layers;
    if (!cfg->dense_pack) return moe_fail(err, "--stream-dense: no dense pack given");
    if (cfg->stream_dense >= NL)
        return moe_fail(err, "--stream-dense=%u: %u layer buffers hold all %u layers of %s; drop --stream-dense (the "
                             "dense weights then stay in RAM)", cfg->stream_dense, cfg->stream_dense, NL, m->name);
    if (moe_dense_pack_open(&o->dpack, cfg->dense_pack, cfg->io_mode, err)) return -1;
    o->have_dpack = 1;
    if (moe_dense_pack_check_model(&o->dpack, m, err)) return -1;
    o->n_dense = cfg->stream_dense;
    o->n_dlayers = NL;
    o->dslots = calloc(o->n_dense, sizeof *o->dslots);
    o->dense_w = calloc(o->n_dense, sizeof *o->dense_w);
    if (!o->dslots || !o->dense_w) return moe_fail(err, "out of memory");
    for (uint32_t b = 0; b < o->n_dense; b++) {
        o->dslots[b].key = -1;
        if (!(o->dslots[b].raw = aligned_alloc(MOE_PACK_ALIGN, (size_t)o->dpack.stride)))
            return moe_fail(err, "out of memory for %u dense layer buffers (%.1f MiB each)", o->n_dense,
                            (double)o->dpack.stride / 1048576.0);
        memset(o->dslots[b].raw, 0, (size_t)o->dpack.stride); /* touched now, not by the first read (make_slots) */
    }
    o->src.dense = src_dense;
    o->st.dense_budget = o->n_dense;
    o->st.dense_block_bytes = o->dpack.block_bytes;
    o->st.dense_stride = o->dpack.stride;
    return 0;
}

/* ---- the live trace ------------------------------------------------------- */

static int live_init(moe_offload *o, moe_error *err) {
    moe_trace *t = o->live = calloc(1, sizeof *o->live);
    if (!t) return moe_fail(err, "out of memory");
    size_t S = o->cfg.max_steps, N = o->cfg.max_tokens, D = o->src.lookahead_depth;
    snprintf(t->model, sizeof t->model, "%s", o->m->name);
    snprintf(t->source, sizeof t->source, "moesim offload (live)");
    t->n_layers = o->L;
    t->n_experts = o->E;
    t->top_k = o->K;
    t->lookahead_depth = (uint32_t)D;
    t->step_first_token = calloc(S + 1, sizeof *t->step_first_token);
    t->step_id = calloc(S ? S : 1, sizeof *t->step_id);
    t->step_phase = calloc(S ? S : 1, 1);
    t->token_seq = calloc(N ? N : 1, sizeof *t->token_seq);
    t->token_pos = calloc(N ? N : 1, sizeof *t->token_pos);
    t->experts = malloc((N ? N : 1) * o->L * o->K * sizeof *t->experts);
    t->weights = malloc((N ? N : 1) * o->L * o->K * sizeof *t->weights);
    if (D) t->lookahead = malloc((N ? N : 1) * o->L * D * o->K * sizeof *t->lookahead);
    if (!t->step_first_token || !t->step_id || !t->step_phase || !t->token_seq || !t->token_pos || !t->experts ||
        !t->weights || (D && !t->lookahead))
        return moe_fail(err, "out of memory for a run of %zu steps, %zu tokens", S, N);
    return 0;
}


/* ---- setup ------------------------------------------------------------------- */

/* Specs that read the replayed trace as a whole (oracles) cannot run online. */
static int is_oracle(const char *canonical) {
    return strstr(canonical, "profile=self") || strstr(canonical, "oracle");
}

static int make_caches(moe_offload *o, moe_error *err) {
    const moe_offload_config *c = &o->cfg;
    o->n_caches = c->global ? 1 : o->L;
    o->caches = calloc(o->n_caches, sizeof *o->caches);
    uint32_t *caps = malloc(o->L * sizeof *caps);
    if (!o->caches || !caps) {
        free(caps);
        return moe_fail(err, "out of memory");
    }
    int rc = -1;
    if (!moe_split_is_uniform(c->split)) {
        char canon[256];
        if (c->global) {
            moe_fail(err, "--split %s: only per-layer scope has per-layer capacities", c->split);
            goto out;
        }
        if (moe_split_canonical(c->split, canon, sizeof canon, err)) goto out;
        if (is_oracle(canon)) {
            moe_fail(err, "--split %s reads the whole trace in advance (an oracle); an offloaded run is online: "
                          "give profile=PATH (a trace of another text)", canon);
            goto out;
        }
        if (moe_split_compute(c->split, o->live, c->capacity, c->cold_per_seq, caps, err)) goto out;
    } else {
        for (uint32_t l = 0; l < o->L; l++) caps[l] = c->capacity;
    }
    for (uint32_t i = 0; i < o->n_caches; i++) {
        moe_policy_env env = {
            .n_keys = c->global ? o->L * o->E : o->E,
            .capacity = caps[i],
            .n_layers = o->L,
            .n_experts = o->E,
            .fixed_layer = c->global ? -1 : (int32_t)i,
            .seed = c->seed * 1000003u + i, /* as the replay derives it */
            .trace = o->live,
        };
        if (!(o->caches[i] = moe_cache_new(c->policy, &env, err))) goto out;
        if (i == 0 && is_oracle(o->caches[0]->canonical)) {
            moe_fail(err, "policy %s reads the whole trace in advance (an oracle); an offloaded run is online: "
                          "give it another text's trace (pin:profile=PATH, learned:train=PATH)",
                     o->caches[0]->canonical);
            goto out;
        }
        if (o->caches[i]->ops->flags & MOE_POLICY_NEEDS_FUTURE) {
            moe_fail(err, "policy %s needs the future (next use): it cannot drive a real run", o->caches[i]->canonical);
            goto out;
        }
        moe_cache_set_evict_hook(o->caches[i], on_evict, o);
    }
    snprintf(o->policy, sizeof o->policy, "%s", o->caches[0]->canonical);
    /* every resident expert has a slot, plus one layer's set of scratch
     * slots for experts that are read but not cached (bypass) */
    uint64_t total = 0;
    for (uint32_t i = 0; i < o->n_caches; i++) total += o->caches[i]->capacity;
    o->n_slots = (uint32_t)total + o->E;
    rc = 0;
out:
    free(caps);
    return rc;
}

static int make_slots(moe_offload *o, moe_error *err) {
    int quantized = 1; /* no f32 pack: no f32 buffers needed (quantized and bf16 blocks are used as read) */
    for (uint32_t k = 0; k < o->n_packs; k++) quantized &= o->packs[k].dtype != MOE_PACK_F32;
    size_t H = (size_t)o->m->cfg.hidden, I = (size_t)o->m->cfg.expert_inter;
    o->slots = calloc(o->n_slots, sizeof *o->slots);
    o->free_list = malloc(o->n_slots * sizeof *o->free_list);
    o->q_cap = o->n_slots + o->n_dense + 1; /* every expert slot and dense buffer queued at once, plus one */
    o->queue = malloc(o->q_cap * sizeof *o->queue);
    if (!o->slots || !o->free_list || !o->queue) return moe_fail(err, "out of memory");
    for (uint32_t i = 0; i < o->n_slots; i++) {
        slot *s = &o->slots[i];
        s->key = -1;
        s->raw = aligned_alloc(MOE_PACK_ALIGN, (size_t)o->max_stride); /* the largest block of any pack */
        s->w.inter = (int)I;
        /* only quantized packs: 1 float each, never used (the views are) */
        s->w.gate_up = malloc((quantized ? 1 : 2 * I * H) * sizeof(float));
        s->w.down = malloc((quantized ? 1 : H * I) * sizeof(float));
        if (!s->raw || !s->w.gate_up || !s->w.down)
            return moe_fail(err, "out of memory for %u expert slots (%.1f MiB each)", o->n_slots,
                            (double)(o->max_stride + 3 * I * H * sizeof(float)) / 1048576.0);
        /* touch every page now: a first O_DIRECT read into untouched memory
         * faults it in, which would be charged to that read */
        memset(s->raw, 0, o->max_stride);
        memset(s->w.gate_up, 0, (quantized ? 1 : 2 * I * H) * sizeof(float));
        memset(s->w.down, 0, (quantized ? 1 : H * I) * sizeof(float));
        o->free_list[o->n_slots - 1 - i] = i; /* slot 0 is taken first */
    }
    o->n_free = o->n_slots;
    return 0;
}

static int start_threads(moe_offload *o, moe_error *err) {
    o->threads = calloc(o->cfg.io_threads, sizeof *o->threads);
    o->busy_s = calloc(o->cfg.io_threads, sizeof *o->busy_s);
    if (!o->threads || !o->busy_s) return moe_fail(err, "out of memory");
    for (uint32_t i = 0; i < o->cfg.io_threads; i++) {
        io_arg *a = malloc(sizeof *a);
        if (!a) return moe_fail(err, "out of memory");
        a->o = o;
        a->id = i;
        if (pthread_create(&o->threads[i], NULL, io_main, a)) {
            free(a);
            return moe_fail(err, "cannot start I/O thread %u", i);
        }
        o->n_threads++;
    }
    return 0;
}

static int src_layer(void *ctx, int m, int T, int *sel, float *selw, const float *logits, const uint16_t *la,
                     int *order, int *n, moe_error *err);
static const moe_mlp_w *src_get(void *ctx, int m, int x, moe_error *err);
static int load_state(moe_offload *o, moe_error *err);

/* The tier (enum moe_precision) a pack's dtype holds. */
static int tier_of_dtype(uint32_t dtype) {
    int bits = moe_pack_dtype_bits(dtype);
    return bits ? moe_prec_of_bits(bits) : dtype == MOE_PACK_F32 ? MOE_PREC_F32 : MOE_PREC_F16;
}

/* --on-miss lowbit[:bits=B]: the quantized pack of B bits, or of the
 * fewest bits, holds the low copies. */
static int pick_low_pack(moe_offload *o, const moe_offload_config *cfg, moe_error *err) {
    int want = moe_on_miss_bits(cfg->on_miss), best = -1;
    for (uint32_t i = 0; i < o->n_packs; i++) {
        int bits = moe_pack_dtype_bits(o->packs[i].dtype);
        if (bits && (want ? bits == want : best < 0 || bits < moe_pack_dtype_bits(o->packs[best].dtype))) best = (int)i;
    }
    if (best >= 0) { /* the mode as run: with its bits */
        o->low_pack = best;
        o->cfg.on_miss = moe_on_miss_with_bits(cfg->on_miss, moe_pack_dtype_bits(o->packs[best].dtype));
        return 0;
    }
    if (want)
        return moe_fail(err, "--on-miss lowbit:bits=%d: none of the packs given to --offload holds %d-bit experts "
                             "(make one: moesim model pack DIR -o q%d.pack --dtype q%d)", want, want, want, want);
    return moe_fail(err, "--on-miss lowbit runs a low-precision copy of each missing expert, and none of the packs "
                         "given to --offload is quantized: add one (moesim model pack DIR -o q2.pack --dtype q2; "
                         "--offload experts.pack,q2.pack)");
}

/* Read every expert of the low pack into memory, as matrix views. */
static int load_low_copies(moe_offload *o, moe_error *err) {
    const moe_pack *pk = &o->packs[o->low_pack];
    size_t LE = (size_t)o->L * o->E, stride = (size_t)pk->stride;
    if (LE > SIZE_MAX / stride) return moe_fail(err, "%s: too large to hold in memory", pk->path);
    double t0 = now_s();
    o->low_buf = aligned_alloc(MOE_PACK_ALIGN, LE * stride);
    o->low_w = calloc(LE, sizeof *o->low_w);
    o->low_q = calloc(2 * LE, sizeof *o->low_q);
    o->low = malloc(o->E * sizeof *o->low);
    if (!o->low_buf || !o->low_w || !o->low_q || !o->low)
        return moe_fail(err, "out of memory for the low-precision copies (%s: %.1f MiB)", pk->path,
                        (double)(LE * stride) / 1048576.0);
    for (size_t gk = 0; gk < LE; gk++) {
        unsigned char *raw = o->low_buf + gk * stride;
        if (moe_pack_read(pk, (uint32_t)(gk / o->E), (uint32_t)(gk % o->E), raw, err)) return -1;
        moe_pack_qviews(pk, raw, &o->low_q[2 * gk], &o->low_q[2 * gk + 1]);
        o->low_w[gk] = (moe_mlp_w){.inter = (int)pk->inter, .q_gate_up = &o->low_q[2 * gk], .q_down = &o->low_q[2 * gk + 1]};
    }
    o->st.lowbit_bits = moe_pack_dtype_bits(pk->dtype);
    o->st.lowbit_bytes = LE * stride;
    o->st.lowbit_load_s = now_s() - t0;
    return 0;
}

/* Open the pack or packs of cfg->pack (comma-separated) and decide which
 * one each expert is read from: the only one, or under cfg->precision (a
 * static plan) the one holding the expert's tier. */
static int open_packs(moe_offload *o, const moe_model *m, const moe_offload_config *cfg, moe_error *err) {
    char list[4096];
    if (snprintf(list, sizeof list, "%s", cfg->pack) >= (int)sizeof list) return moe_fail(err, "--offload: list too long");
    for (char *save = NULL, *p = strtok_r(list, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
        if (o->n_packs == MOE_OFFLOAD_MAX_PACKS) return moe_fail(err, "--offload: at most %d packs", MOE_OFFLOAD_MAX_PACKS);
        if (moe_pack_open(&o->packs[o->n_packs], p, cfg->io_mode, err)) return -1;
        o->n_packs++;
        if (moe_pack_check_model(&o->packs[o->n_packs - 1], m, err)) return -1;
        for (uint32_t i = 0; i + 1 < o->n_packs; i++)
            if (tier_of_dtype(o->packs[i].dtype) == tier_of_dtype(o->packs[o->n_packs - 1].dtype))
                return moe_fail(err, "--offload: %s and %s hold the same precision (%s)", o->packs[i].path, p,
                                moe_pack_dtype_name(o->packs[i].dtype));
    }
    if (!o->n_packs) return moe_fail(err, "--offload: no pack given");
    size_t LE = (size_t)o->L * o->E;
    if (!(o->pack_of = calloc(LE ? LE : 1, 1))) return moe_fail(err, "out of memory");
    for (uint32_t i = 0; i < o->n_packs; i++)
        if (o->packs[i].stride > o->max_stride) o->max_stride = o->packs[i].stride;
    o->low_pack = -1;
    if (moe_on_miss_mode(cfg->on_miss) == MOE_ON_MISS_LOWBIT && pick_low_pack(o, cfg, err)) return -1;
    if (!cfg->precision) {
        uint32_t n_read = o->n_packs - (o->low_pack >= 0);
        if (n_read > 1) return moe_fail(err, "--offload: %u packs: --precision says which expert is read from which", o->n_packs);
        if (!n_read)
            return moe_fail(err, "--on-miss lowbit: %s is the low-precision copy; give the pack a miss would read "
                                 "too (--offload experts.pack,%s)", o->packs[0].path, o->packs[0].path);
        o->read_pack = o->low_pack == 0 ? 1 : 0;
        memset(o->pack_of, (int)o->read_pack, LE);
        if (o->low_pack >= 0 && tier_of_dtype(o->packs[o->read_pack].dtype) >= tier_of_dtype(o->packs[o->low_pack].dtype))
            return moe_fail(err, "--on-miss lowbit: the low copy (%s, %s) has no fewer bits than the pack read (%s, %s)",
                            o->packs[o->low_pack].path, moe_pack_dtype_name(o->packs[o->low_pack].dtype),
                            o->packs[o->read_pack].path, moe_pack_dtype_name(o->packs[o->read_pack].dtype));
        return 0;
    }
    moe_trace geom = {.n_layers = o->L, .n_experts = o->E};
    moe_precision_plan plan;
    if (moe_precision_plan_new(cfg->precision, &geom, &plan, err)) return moe_fail_prefix(err, "--precision");
    int rc = 0;
    for (int p = 0; p < MOE_PREC_COUNT; p++) o->tier_pack[p] = -1;
    for (uint32_t i = 0; i < o->n_packs; i++) o->tier_pack[tier_of_dtype(o->packs[i].dtype)] = (int)i;
    if (plan.dynamic) {
        o->hobbit = 1, o->hb_hi = plan.hi, o->hb_lo = plan.lo, o->hb_high = plan.high, o->hb_low = plan.low;
        if (o->tier_pack[plan.low] < 0) /* (the high tier: the static plan's, checked below) */
            rc = moe_fail(err, "--precision %s wants its low copies at %g bits; no pack given to --offload holds "
                               "them", plan.canonical, moe_prec_bits[plan.low]);
    } else if (plan.profile_oracle)
        rc = moe_fail(err, "--precision %s: an oracle profile knows the text in advance; an offloaded run needs "
                           "profile=TRACE (other texts)", plan.canonical);
    for (size_t gk = 0; !rc && gk < LE; gk++) {
        uint32_t i = 0;
        while (i < o->n_packs && tier_of_dtype(o->packs[i].dtype) != plan.tier[gk]) i++;
        if (i == o->n_packs) {
            char have[200] = "";
            for (uint32_t k = 0; k < o->n_packs; k++)
                snprintf(have + strlen(have), sizeof have - strlen(have), "%s%s", k ? ", " : "",
                         moe_pack_dtype_name(o->packs[k].dtype));
            rc = moe_fail(err, "--precision %s wants layer %zu expert %zu at %g bits; the packs hold %s", plan.canonical,
                          gk / o->E, gk % o->E, moe_prec_bits[plan.tier[gk]], have);
        } else {
            o->pack_of[gk] = (uint8_t)i;
        }
    }
    moe_precision_plan_free(&plan);
    return rc;
}

moe_offload *moe_offload_new(const moe_model *m, const moe_offload_config *cfg, moe_error *err) {
    moe_offload *o = calloc(1, sizeof *o);
    if (!o) return moe_fail(err, "out of memory"), NULL;
    o->m = m;
    o->cfg = *cfg;
    o->L = (uint32_t)m->cfg.n_moe_layers;
    o->E = (uint32_t)m->cfg.n_experts;
    o->K = (uint32_t)m->cfg.top_k;
    o->last_seq = -1;
    pthread_mutex_init(&o->mu, NULL);
    pthread_cond_init(&o->cv, NULL);
    o->src = (moe_expert_source){.ctx = o, .layer = src_layer, .get = src_get};
    size_t LE = (size_t)o->L * o->E;
    if (cfg->io_threads < 1) {
        moe_fail(err, "--io-threads: at least one I/O thread is needed");
        goto fail;
    }
    if (!cfg->max_steps || !cfg->max_tokens) {
        moe_fail(err, "offload: empty run");
        goto fail;
    }
    if (open_packs(o, m, cfg, err)) goto fail;
    if (cfg->stream_dense && open_dense(o, m, cfg, err)) goto fail;
    if (cfg->prefetch) {
        /* the prefetcher is created on the live trace; its lookahead depth is
         * what the engine must compute for it */
        char canon[256];
        if (moe_prefetch_canonical(cfg->prefetch, canon, sizeof canon, err)) goto fail;
        if (is_oracle(canon) || !strncmp(canon, "log", 3)) {
            moe_fail(err, "--prefetch %s reads the trace in advance; an offloaded run predicts from the live "
                          "hidden state (gate, transition, history, topn)", canon);
            goto fail;
        }
        if (!strncmp(canon, "gate", 4)) {
            const char *a = strstr(canon, "ahead=");
            o->src.lookahead_depth = a ? atoi(a + 6) : 1;
            if (o->src.lookahead_depth >= (int)o->L) {
                moe_fail(err, "--prefetch %s: ahead must be below the number of MoE layers (%u)", canon, o->L);
                goto fail;
            }
        }
    }
    if (live_init(o, err)) goto fail;
    o->slot_of = malloc(LE * sizeof *o->slot_of);
    o->cur_slot = malloc(o->E * sizeof *o->cur_slot);
    o->pfstate = calloc(LE, 1);
    o->seen = calloc(LE, 1);
    o->pred_stamp = calloc(LE, sizeof *o->pred_stamp);
    o->last_use = calloc(LE, sizeof *o->last_use);
    o->pred_has = calloc(o->L, sizeof *o->pred_has);
    o->st_full = calloc(o->E, sizeof *o->st_full);
    o->nt_full = calloc(o->E, sizeof *o->nt_full);
    o->nt_list = calloc(o->E, sizeof *o->nt_list);
    o->full = malloc(o->E * sizeof *o->full);
    o->pred = malloc(o->E * sizeof *o->pred);
    o->pf_status = malloc(o->E);
    o->wmax = malloc(o->E * sizeof *o->wmax);
    o->hit = calloc(o->E, 1);
    o->kept = malloc(o->E * sizeof *o->kept);
    o->sub = malloc(o->E * sizeof *o->sub);
    o->st_sub = calloc(o->E, sizeof *o->st_sub);
    o->need = calloc(o->E, 1);
    o->slot_in = malloc((o->K + 1) * sizeof *o->slot_in);
    o->slot_out = malloc((o->K + 1) * sizeof *o->slot_out);
    o->st.n_layers = o->L;
    o->st.layer_accesses = calloc(o->L, sizeof(uint64_t));
    o->st.layer_hits = calloc(o->L, sizeof(uint64_t));
    o->st.step_accesses = calloc(cfg->max_steps, sizeof(uint64_t));
    o->st.step_hits = calloc(cfg->max_steps, sizeof(uint64_t));
    o->st.step_s = calloc(cfg->max_steps, sizeof(double));
    o->st.step_phase = calloc(cfg->max_steps, 1);
    o->st.step_seq = calloc(cfg->max_steps, sizeof(uint32_t));
    o->st.step_tokens = calloc(cfg->max_steps, sizeof(uint32_t));
    if (!o->slot_of || !o->cur_slot || !o->pfstate || !o->seen || !o->pred_stamp || !o->last_use || !o->pred_has ||
        !o->st_full || !o->nt_full || !o->nt_list || !o->full || !o->pred || !o->pf_status || !o->wmax || !o->hit ||
        !o->kept || !o->sub || !o->st_sub || !o->need || !o->slot_in || !o->slot_out ||
        !o->st.layer_accesses || !o->st.layer_hits || !o->st.step_accesses || !o->st.step_hits || !o->st.step_s ||
        !o->st.step_phase || !o->st.step_seq || !o->st.step_tokens) {
        moe_fail(err, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < LE; i++) o->slot_of[i] = -1;
    o->st.io_threads = cfg->io_threads;
    o->st.expert_bytes = o->packs[o->read_pack].expert_bytes; /* (one pack; with a plan, per tier) */
    if (make_caches(o, err) || make_slots(o, err) || start_threads(o, err)) goto fail;
    if (o->low_pack >= 0 && load_low_copies(o, err)) goto fail;
    if (cfg->prefetch) {
        moe_prefetch_env penv = {o->live, o->L, o->E, o->K, cfg->seed};
        if (!(o->pf = moe_prefetcher_new(cfg->prefetch, &penv, err))) goto fail;
        snprintf(o->prefetcher, sizeof o->prefetcher, "%s", o->pf->canonical);
    }
    if (cfg->prefetch_log) {
        if (!(o->pflog = fopen(cfg->prefetch_log, "w"))) {
            moe_fail(err, "%s: cannot write the prefetch log", cfg->prefetch_log);
            goto fail;
        }
        fprintf(o->pflog, "# moesim prefetch log v1\n# prefetcher %s\n# step layer target experts...\n",
                o->prefetcher[0] ? o->prefetcher : "none");
    }
    if (cfg->load_state && load_state(o, err)) goto fail;
    return o;
fail:
    moe_offload_free(o);
    return NULL;
}

void moe_offload_free(moe_offload *o) {
    if (!o) return;
    if (o->n_threads) {
        pthread_mutex_lock(&o->mu);
        o->stop = 1;
        pthread_cond_broadcast(&o->cv);
        pthread_mutex_unlock(&o->mu);
        for (uint32_t i = 0; i < o->n_threads; i++) pthread_join(o->threads[i], NULL);
    }
    if (o->caches)
        for (uint32_t i = 0; i < o->n_caches; i++) moe_cache_free(o->caches[i]);
    free(o->caches);
    moe_prefetcher_free(o->pf);
    if (o->slots)
        for (uint32_t i = 0; i < o->n_slots; i++) {
            free(o->slots[i].raw);
            free(o->slots[i].w.gate_up);
            free(o->slots[i].w.down);
        }
    free(o->slots);
    for (uint32_t b = 0; o->dslots && b < o->n_dense; b++) free(o->dslots[b].raw);
    free(o->dslots);
    free(o->dense_w);
    if (o->have_dpack) moe_dense_pack_close(&o->dpack);
    free(o->low_buf);
    free(o->low_w);
    free(o->low_q);
    free(o->low);
    free(o->free_list);
    free(o->queue);
    free(o->threads);
    free(o->busy_s);
    free(o->slot_of);
    free(o->cur_slot);
    free(o->pfstate);
    free(o->seen);
    free(o->pred_stamp);
    free(o->last_use);
    free(o->pred_has);
    free(o->st_full);
    free(o->nt_full);
    free(o->nt_list);
    free(o->full);
    free(o->pred);
    free(o->pf_status);
    free(o->wmax);
    free(o->hit);
    free(o->kept), free(o->sub), free(o->st_sub), free(o->need), free(o->slot_in), free(o->slot_out);
    free(o->st.layer_accesses);
    free(o->st.layer_hits);
    free(o->st.step_accesses);
    free(o->st.step_hits);
    free(o->st.step_s);
    free(o->st.step_phase);
    free(o->st.step_seq);
    free(o->st.step_tokens);
    moe_trace_free(o->live);
    if (o->pflog) fclose(o->pflog);
    for (uint32_t i = 0; i < o->n_packs; i++) moe_pack_close(&o->packs[i]);
    free(o->pack_of);
    pthread_mutex_destroy(&o->mu);
    pthread_cond_destroy(&o->cv);
    free(o);
}

moe_expert_source *moe_offload_source(moe_offload *o) { return &o->src; }
int moe_offload_on_miss(const moe_offload *o) { return o->cfg.on_miss; }

uint32_t moe_offload_pack_dtype(const moe_offload *o) { return o->packs[o->read_pack].dtype; }

const char *moe_offload_policy(const moe_offload *o) { return o->policy; }
const char *moe_offload_prefetcher(const moe_offload *o) { return o->prefetcher; }

/* ---- saved state ------------------------------------------------------------ */

/* Insert the saved keys in file order (the normal eviction rule) and read
 * their data; the caller's TTFT then starts with a warm cache. */
static int load_state(moe_offload *o, moe_error *err) {
    uint32_t *keys = NULL;
    size_t n = 0;
    if (moe_cache_state_load(o->cfg.load_state, o->L, o->E, &keys, &n, err)) return -1;
    double t0 = now_s();
    moe_access a = {.next_use = MOE_NEVER, .weight = NAN};
    for (size_t i = 0; i < n; i++) {
        uint32_t l = keys[i] / o->E, e = keys[i] % o->E;
        moe_cache *c = o->caches[o->cfg.global ? 0 : l];
        uint32_t key = o->cfg.global ? keys[i] : e;
        a.layer = l;
        a.expert = e;
        moe_cache_begin_group(c);
        int64_t victim;
        if (moe_cache_insert(c, key, &a, &victim) != 1) continue;
        int32_t si = take_slot(o, keys[i]);
        if (si < 0) break; /* cannot happen: the state fits the caches, which have a slot each */
        issue_read(o, (uint32_t)si, l, e, o->pack_of[gkey(o, l, e)], 1);
        o->st.state_loaded++;
    }
    free(keys);
    drain(o);
    /* the pre-read is not part of the run's reads */
    o->st.reads_prefetch = o->st.bytes_prefetch = 0;
    for (uint32_t i = 0; i < o->n_threads; i++) o->busy_s[i] = 0;
    for (uint32_t i = 0; i < o->n_slots; i++)
        if (o->slots[i].error[0]) return moe_fail(err, "%s", o->slots[i].error);
    o->st.state_load_s = now_s() - t0;
    return 0;
}

int moe_offload_save_state(const moe_offload *o, const char *path, moe_error *err) {
    size_t LE = (size_t)o->L * o->E;
    uint8_t *res = calloc(LE, 1);
    uint32_t *keys = malloc(LE * sizeof *keys);
    if (!res || !keys) {
        free(res);
        free(keys);
        return moe_fail(err, "out of memory");
    }
    for (uint32_t i = 0; i < o->n_caches; i++)
        for (uint32_t k = 0; k < o->caches[i]->n_keys; k++)
            if (moe_cache_resident(o->caches[i], k)) res[o->cfg.global ? k : gkey(o, i, k)] = 1;
    size_t n = moe_cache_state_order(res, o->last_use, (uint32_t)LE, keys);
    int rc = moe_cache_state_save(path, o->L, o->E, keys, n, err);
    free(res);
    free(keys);
    return rc;
}

/* ---- steps ------------------------------------------------------------------- */

int moe_offload_step_begin(moe_offload *o, uint32_t seq, int phase, uint32_t pos0, uint32_t T, moe_error *err) {
    moe_trace *t = o->live;
    if (o->in_step) return moe_fail(err, "offload: step_begin twice");
    if (o->step >= o->cfg.max_steps || t->n_tokens + T > o->cfg.max_tokens)
        return moe_fail(err, "offload: run longer than the %u steps / %u tokens it was set up for", o->cfg.max_steps,
                        o->cfg.max_tokens);
    if (T < 1 || T > MOE_ENGINE_MAX_STEP) return moe_fail(err, "offload: a step has 1..%d tokens", MOE_ENGINE_MAX_STEP);
    int seq_change = o->last_seq >= 0 && (int64_t)seq != o->last_seq;
    if (o->cfg.cold_per_seq && seq_change) {
        /* as the replay: a cold restart of every cache; reads in flight
         * finish first so no slot is reused under a read */
        drain(o);
        for (uint64_t gk = 0; gk < (uint64_t)o->L * o->E; gk++)
            if (o->pfstate[gk] == ST_PF_UNUSED) {
                o->st.pf_unused_end++;
                o->st.pf_wasted_bytes += o->packs[o->pack_of[gk]].expert_bytes;
            }
        for (uint32_t i = 0; i < o->n_caches; i++)
            if (moe_cache_reset(o->caches[i], err)) return -1;
        for (uint32_t i = 0; i < o->n_slots; i++)
            if (o->slots[i].key >= 0) give_slot(o, i);
        memset(o->seen, 0, (size_t)o->L * o->E);
        memset(o->pfstate, 0, (size_t)o->L * o->E);
        o->st.restarts++;
    }
    o->last_seq = seq;
    uint64_t s = o->step;
    t->step_first_token[s] = t->n_tokens;
    t->step_first_token[s + 1] = t->n_tokens + T;
    t->step_id[s] = s;
    t->step_phase[s] = (uint8_t)phase;
    for (uint32_t i = 0; i < T; i++) {
        t->token_seq[t->n_tokens + i] = seq;
        t->token_pos[t->n_tokens + i] = pos0 + i;
    }
    t->n_tokens += T;
    t->n_steps = s + 1;
    for (uint32_t i = 0; i < o->n_caches; i++)
        if (o->caches[i]->ops->on_step) o->caches[i]->ops->on_step(o->caches[i]->st, s);
    o->st.step_phase[s] = (uint8_t)phase;
    o->st.step_seq[s] = seq;
    o->st.step_tokens[s] = T;
    o->in_step = 1;
    o->step_t0 = now_s();
    return 0;
}

int moe_offload_step_end(moe_offload *o, moe_error *err) {
    if (!o->in_step) return moe_fail(err, "offload: step_end without step_begin");
    o->st.step_s[o->step] = now_s() - o->step_t0;
    o->in_step = 0;
    o->step++;
    o->st.n_steps = o->step;
    return 0;
}

/* ---- one layer ---------------------------------------------------------------- */

/* Record the step's routing at MoE layer m in the live trace, and gather the
 * full set (ascending), token counts and max gate weight per expert. */
static uint32_t record_and_gather(moe_offload *o, uint32_t m, int T, const int *sel, const float *selw,
                                  const uint16_t *la) {
    moe_trace *t = o->live;
    uint64_t tok0 = t->step_first_token[o->step];
    uint32_t K = o->K, D = t->lookahead_depth, nf = 0;
    if (++o->cur == 0) {
        memset(o->st_full, 0, o->E * sizeof *o->st_full);
        o->cur = 1;
    }
    for (int i = 0; i < T; i++) {
        size_t r = moe_trace_rec(t, tok0 + (uint64_t)i, m);
        for (uint32_t k = 0; k < K; k++) {
            uint16_t e = (uint16_t)sel[i * K + k];
            float w = selw[i * K + k];
            t->experts[r + k] = e;
            t->weights[r + k] = w;
            if (o->st_full[e] != o->cur) {
                o->st_full[e] = o->cur;
                o->full[nf++] = e;
                o->nt_full[e] = 0;
                o->wmax[e] = w;
            } else if (w > o->wmax[e] || isnan(o->wmax[e])) {
                o->wmax[e] = w;
            }
            o->nt_full[e]++;
        }
        if (D && la) memcpy(t->lookahead + (((tok0 + (uint64_t)i) * o->L + m) * D) * K, la + (size_t)i * D * K,
                            (size_t)D * K * sizeof *la);
    }
    for (uint32_t i = 1; i < nf; i++) { /* ascending ids */
        uint16_t v = o->full[i];
        uint32_t j = i;
        while (j && o->full[j - 1] > v) { o->full[j] = o->full[j - 1]; j--; }
        o->full[j] = v;
    }
    return nf;
}

/* Prefetch accuracy against the router's full set (replay_engine.c's rule). */
static void score_prediction(moe_offload *o, uint32_t m, uint32_t nf, int T, const int *sel) {
    if (o->pred_has[m] != o->step + 1) return;
    const uint64_t *ps = o->pred_stamp + (size_t)m * o->E;
    o->st.pf_actual += nf;
    for (uint32_t i = 0; i < nf; i++) o->st.pf_correct += ps[o->full[i]] == o->step + 1;
    for (int i = 0; i < T * (int)o->K; i++) {
        o->st.pf_slots++;
        o->st.pf_slot_correct += ps[sel[i]] == o->step + 1;
    }
}

/* Observe, predict, insert the predicted experts and queue their reads
 * (replay_engine.c's prefetch(), with real reads). */
static void prefetch(moe_offload *o, uint32_t m, uint32_t nf, moe_access a) {
    uint64_t s = o->step;
    for (uint32_t i = 0; i < nf; i++) o->nt_list[i] = o->nt_full[o->full[i]];
    o->pf->ops->observe(o->pf->st, s, m, o->full, o->nt_list, nf);
    uint32_t lt = 0;
    uint32_t n = o->pf->ops->predict(o->pf->st, s, m, &lt, o->pred);
    if (!n || lt <= m || lt >= o->L) return;
    if (o->pflog) {
        fprintf(o->pflog, "%llu %u %u", (unsigned long long)s, m, lt);
        for (uint32_t i = 0; i < n; i++) fprintf(o->pflog, " %u", o->pred[i]);
        fputc('\n', o->pflog);
    }
    o->st.pf_predictions++;
    o->st.pf_predicted += n;
    o->pred_has[lt] = s + 1;
    moe_cache *ct = o->caches[o->cfg.global ? 0 : lt];
    uint32_t bt = o->cfg.global ? lt * o->E : 0;
    for (uint32_t i = 0; i < n; i++) o->pred_stamp[(size_t)lt * o->E + o->pred[i]] = s + 1;
    a.layer = lt;
    a.weight = NAN;
    o->st.evictions += moe_cache_admit_prefetch(ct, bt, o->pred, n, o->cfg.global, &a, o->pf_status);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t e = o->pred[i];
        uint64_t gk = gkey(o, lt, e);
        if (o->pf_status[i] <= 0) {
            o->st.pf_bypassed += o->pf_status[i] < 0;
            continue;
        }
        int32_t si = take_slot(o, (int64_t)gk);
        if (si < 0) continue; /* cannot happen: every cached expert has a slot (src_get reports it) */
        issue_read(o, (uint32_t)si, lt, e, o->pack_of[gk], 1);
        o->pfstate[gk] = ST_PF_UNUSED;
        o->st.pf_issued++;
    }
}

/* --on-miss skip / substitute / lowbit (core/on_miss.h, the replay's rule):
 * per token, slots whose expert is not resident are dropped (sel -1), given
 * a resident substitute, or (lowbit) kept, to run from the low copy; a
 * token's remaining weights are rescaled to the sum of all its chosen
 * weights when slots were dropped. Fills o->kept with the resident chosen
 * experts (ascending: the set to serve), o->sub with the substitutes not
 * among them and o->low with the experts run from low copies; counts token
 * slots as the replay does. */
static uint32_t apply_on_miss(moe_offload *o, moe_cache *c, uint32_t base, uint32_t nf, int T, int *sel, float *selw,
                              const float *logits, uint32_t *n_sub) {
    uint32_t K = o->K, nk = 0, ns = 0;
    int lowbit = o->low_pack >= 0;
    o->n_low = 0;
    for (uint32_t i = 0; i < nf; i++)
        if (moe_cache_resident(c, base + o->full[i])) o->kept[nk++] = o->full[i];
        else if (lowbit) o->low[o->n_low++] = o->full[i];
    o->st.skipped_activations += nf - nk - o->n_low;
    o->st.lowbit_activations += o->n_low;
    for (int t = 0; t < T; t++) {
        int *s = sel + (size_t)t * K;
        float *w = selw + (size_t)t * K;
        for (uint32_t k = 0; k < K; k++) o->slot_in[k] = (uint16_t)s[k];
        o->st.substituted_slots += moe_on_miss_token(o->cfg.on_miss, o->slot_in, K, c, base, logits + (size_t)t * o->E,
                                                     o->E, o->slot_out);
        double all = 0, left = 0;
        for (uint32_t k = 0; k < K; k++) {
            uint16_t e = o->slot_out[k];
            all += w[k];
            if (e != MOE_NO_EXPERT) left += w[k];
            if (e == o->slot_in[k]) {
                o->st.token_slots++;
                o->st.token_slot_hits++; /* a kept slot's expert is resident */
                continue;
            }
            if (lowbit) { /* runs from the low copy, at its own weight */
                o->st.lowbit_slots++;
                o->slot_out[k] = o->slot_in[k], left += w[k];
                continue;
            }
            o->st.skipped_slots++;
            if (e == MOE_NO_EXPERT) continue;
            if (o->st_sub[e] != o->cur) { /* o->cur: this layer's stamp (record_and_gather) */
                o->st_sub[e] = o->cur;
                int kept = 0;
                for (uint32_t i = 0; i < nk && !kept; i++) kept = o->kept[i] == e;
                if (!kept) o->sub[ns++] = e;
            }
        }
        for (uint32_t k = 0; k < K; k++) {
            s[k] = o->slot_out[k] == MOE_NO_EXPERT ? -1 : (int)o->slot_out[k];
            if (left > 0 && left < all) w[k] = (float)(w[k] * (all / left));
        }
    }
    *n_sub = ns;
    return nk;
}

/* --skip and HOBBIT (core/on_miss.h, core/precision.h, the replay's
 * gather): per token, slots dropped by adaptive top-k, HOBBIT's lo
 * threshold or skip-on-miss get sel -1 (weights untouched); o->kept
 * receives the experts some token kept (ascending: the set to serve);
 * HOBBIT: o->need[e] the highest tier a token keeping e needs. */
static uint32_t apply_skip(moe_offload *o, moe_cache *c, uint32_t base, uint32_t nf, int T, int *sel,
                           const float *selw) {
    uint32_t K = o->K, nk = 0;
    for (int t = 0; t < T; t++) {
        int *s = sel + (size_t)t * K;
        const float *w = selw + (size_t)t * K;
        double wsum = 0, cum = 0;
        for (uint32_t k = 0; k < K; k++) wsum += isnan(w[k]) ? 0 : w[k];
        for (uint32_t k = 0; k < K; k++) {
            double wn = wsum > 0 && !isnan(w[k]) ? w[k] / wsum : 0;
            int need = -1, drop = moe_skip_by_frac(o->cfg.skip_frac, k, w[k], w[0]);
            if (!drop && o->hobbit) {
                int cls = moe_hobbit_class(cum, o->hb_hi, o->hb_lo);
                if (cls == MOE_HOBBIT_SKIP) drop = 1;
                else need = cls == MOE_HOBBIT_HIGH ? o->hb_high : o->hb_low;
            }
            drop = drop || moe_skip_by_cum(o->cfg.skip_cum, k, cum, moe_cache_resident(c, base + (uint32_t)s[k]));
            cum += wn;
            if (drop) {
                s[k] = -1, o->st.skipped_slots++;
                continue;
            }
            /* kept: stamped with this layer's o->cur; the highest tier (lowest enum) wins */
            uint32_t e = (uint32_t)s[k];
            if (o->st_sub[e] != o->cur) o->st_sub[e] = o->cur, o->need[e] = (uint8_t)need;
            else if (need < o->need[e]) o->need[e] = (uint8_t)need;
        }
    }
    for (uint32_t i = 0; i < nf; i++)
        if (o->st_sub[o->full[i]] == o->cur) o->kept[nk++] = o->full[i];
    o->st.skipped_activations += nf - nk;
    return nk;
}

static int src_layer(void *ctx, int mi, int T, int *sel, float *selw, const float *logits, const uint16_t *la,
                     int *order, int *n_out, moe_error *err) {
    moe_offload *o = ctx;
    uint32_t m = (uint32_t)mi;
    if (!o->in_step) return moe_fail(err, "offload: forward call outside step_begin/step_end");
    uint32_t nf = record_and_gather(o, m, T, sel, selw, la);
    score_prediction(o, m, nf, T, sel);
    moe_cache *c = o->caches[o->cfg.global ? 0 : m];
    uint32_t base = o->cfg.global ? m * o->E : 0;
    /* the set served: the router's, or under --on-miss its resident part */
    const uint16_t *serve = o->full;
    uint32_t ns = nf, nsub = 0;
    if (o->cfg.on_miss) {
        ns = apply_on_miss(o, c, base, nf, T, sel, selw, logits, &nsub);
        serve = o->kept;
    } else if (o->cfg.skip_cum > 0 || o->cfg.skip_frac > 0 || o->hobbit) {
        ns = apply_skip(o, c, base, nf, T, sel, selw);
        serve = o->kept;
    }
    moe_cache_begin_group(c);
    for (uint32_t i = 0; i < ns; i++) moe_cache_protect(c, base + serve[i]);
    /* substitutes too: a global cache's prefetch must not evict one before it runs */
    for (uint32_t i = 0; i < nsub; i++) moe_cache_protect(c, base + o->sub[i]);
    moe_access a = {.next_use = MOE_NEVER, .step = o->step, .layer = m};
    uint64_t hits = 0;
    for (uint32_t i = 0; i < ns; i++) {
        uint32_t e = serve[i], key = base + e;
        uint64_t gk = gkey(o, m, e);
        a.time = o->time++;
        a.expert = e;
        a.weight = o->wmax[e];
        int64_t victim;
        enum moe_access_result r = moe_cache_access(c, key, &a, &victim);
        o->st.evictions += c->last_evictions;
        o->last_use[gk] = a.time + 1;
        if (r == MOE_HIT) {
            hits++;
            o->hit[e] = 1;
            if (o->pfstate[gk] == ST_PF_UNUSED) o->st.pf_useful++;
            o->cur_slot[e] = o->slot_of[gk];
        } else {
            o->hit[e] = 0;
            if (!o->seen[gk]) o->st.compulsory++;
            if (o->pfstate[gk] == ST_PF_EVICTED) o->st.collision_misses++;
            int32_t si = take_slot(o, r == MOE_MISS_INSERTED ? (int64_t)gk : -1);
            if (si < 0) return moe_fail(err, "offload: no free expert slot (a bug: there is one per cached "
                                             "expert plus one layer's set)");
            if (r != MOE_MISS_INSERTED) o->st.bypasses++;
            /* HOBBIT: at the precision its tokens need (the replay's rule) */
            issue_read(o, (uint32_t)si, m, e, o->hobbit ? o->tier_pack[o->need[e]] : o->pack_of[gk], 0);
            o->cur_slot[e] = si;
        }
        /* a prefetched key keeps its state until used: pf_late is judged at
         * get(); then it is an ordinary resident key */
        if (!(r == MOE_HIT && o->pfstate[gk] == ST_PF_UNUSED)) o->pfstate[gk] = ST_NONE;
        o->seen[gk] = 1;
    }
    o->st.accesses += ns;
    o->st.hits += hits;
    o->st.layer_accesses[m] += ns;
    o->st.layer_hits[m] += hits;
    o->st.step_accesses[o->step] += ns;
    o->st.step_hits[o->step] += hits;
    if (!o->cfg.on_miss) /* the slots kept (apply_on_miss counted its own) */
        for (int i = 0; i < T * (int)o->K; i++)
            if (sel[i] >= 0) o->st.token_slots++, o->st.token_slot_hits += o->hit[sel[i]];
    if (o->n_dense) dense_ahead(o, m); /* behind this layer's demand reads (every layer is a MoE layer: l == m) */
    if (o->pf) prefetch(o, m, nf, a);
    /* the experts to run: the served set, then the substitutes (resident:
     * their slots) and the low copies (LOW_COPY: not in a slot) */
    uint16_t *run = serve == o->kept ? o->kept : o->full;
    uint32_t nr = ns;
    for (uint32_t i = 0; i < nsub; i++) {
        uint16_t e = o->sub[i];
        o->hit[e] = 1;
        o->cur_slot[e] = o->slot_of[gkey(o, m, e)];
        run[nr++] = e;
    }
    for (uint32_t i = 0; o->cfg.on_miss && i < o->n_low; i++) {
        o->hit[o->low[i]] = 1;
        o->cur_slot[o->low[i]] = LOW_COPY;
        run[nr++] = o->low[i];
    }
    /* compute order: data already in (ascending id), then by read queue */
    int n = 0;
    for (uint32_t i = 0; i < nr; i++)
        if (o->cur_slot[run[i]] == LOW_COPY ||
            __atomic_load_n(&o->slots[o->cur_slot[run[i]]].read, __ATOMIC_ACQUIRE) != READ_QUEUED)
            order[n++] = run[i];
    int first_pending = n;
    for (uint32_t i = 0; i < nr && n < (int)nr; i++) {
        int in = 0; /* a read may complete between the two passes: place each expert once */
        for (int j = 0; j < first_pending && !in; j++) in = order[j] == run[i];
        if (!in) order[n++] = run[i];
    }
    for (int i = first_pending + 1; i < n; i++) {
        int v = order[i], j = i;
        uint64_t sv = o->slots[o->cur_slot[v]].seqno;
        while (j > first_pending && o->slots[o->cur_slot[order[j - 1]]].seqno > sv) { order[j] = order[j - 1]; j--; }
        order[j] = v;
    }
    *n_out = n;
    return 0;
}

static const moe_mlp_w *src_get(void *ctx, int mi, int x, moe_error *err) {
    moe_offload *o = ctx;
    if (o->cur_slot[x] == LOW_COPY) return &o->low_w[gkey(o, (uint32_t)mi, (uint32_t)x)];
    if (o->cur_slot[x] < 0) {
        moe_fail(err, "offload: layer %d expert %d has no slot (a bug)", mi, x);
        return NULL;
    }
    uint32_t si = (uint32_t)o->cur_slot[x];
    slot *s = &o->slots[si];
    uint64_t gk = gkey(o, (uint32_t)mi, (uint32_t)x);
    double waited = wait_slot(o, si);
    int pf_hit = o->hit[x] && o->pfstate[gk] == ST_PF_UNUSED;
    if (pf_hit) {
        o->pfstate[gk] = ST_NONE;
        if (waited > 0) o->st.pf_late++;
    }
    /* the kind of the read waited for decides the stall's kind */
    if (s->kind) o->st.stall_late_s += waited;
    else o->st.stall_miss_s += waited;
    if (s->error[0]) {
        moe_fail(err, "%s", s->error);
        return NULL;
    }
    if (s->key < 0) give_slot(o, si); /* a bypassed expert's scratch slot: free once computed... */
    return &s->w;
}

int moe_offload_finish(moe_offload *o, const moe_offload_stats **stats, moe_error *err) {
    drain(o);
    for (uint64_t gk = 0; gk < (uint64_t)o->L * o->E; gk++)
        if (o->pfstate[gk] == ST_PF_UNUSED) {
            o->st.pf_unused_end++;
            o->st.pf_wasted_bytes += o->packs[o->pack_of[gk]].expert_bytes;
        }
    o->st.io_busy_s = 0;
    for (uint32_t i = 0; i < o->n_threads; i++) o->st.io_busy_s += o->busy_s[i];
    if (o->pflog) {
        int bad = ferror(o->pflog);
        bad |= fclose(o->pflog) != 0;
        o->pflog = NULL;
        if (bad) return moe_fail(err, "%s: write failed", o->cfg.prefetch_log);
    }
    *stats = &o->st;
    return 0;
}

/* The i-th expert of the probe's scattered order (Knuth's multiplicative
 * hash of i, modulo the expert count). */
static uint32_t probe_expert(uint32_t i, uint32_t n_exp) {
    return (uint32_t)(((uint64_t)i * 2654435761u) % n_exp);
}

/* Why every read is of a different expert, all of them read once first:
 * on a VM the guest's disk is a file on the host, and what the host does
 * with it shows in the times. Blocks it has cached read ~3x faster than
 * the others (1.2 GB/s on a first O_DIRECT pass over a pack here, 2.8-4.4
 * GB/s on the next), so every block is read once, untimed; and a block
 * read again within a second or so was ~2.5x slower than one read longer
 * ago (OLMoE's 12 MiB experts: 9.3 ms per read against 3.5-4.2 ms; one
 * fixed set of 8 read over and over: 11.3 ms), which the runs, spread
 * over many experts, do not see. One offload for every round: its slots
 * are allocated and touched once (3 GiB at Mixtral's 336 MiB experts). */
int moe_offload_probe_reads(const moe_model *m, const char *pack, int io_mode, const uint32_t *sizes,
                            const uint32_t *bursts, int n_sizes, uint32_t rounds, double gap_s, moe_probe_point *out,
                            moe_error *err) {
    moe_offload_config cfg = {.pack = pack, .io_mode = io_mode, .io_threads = 1, .policy = "lru", .capacity = 1,
                              .seed = 1, .max_steps = 1, .max_tokens = 1};
    uint64_t total = 0;
    uint32_t most = 1;
    if (n_sizes < 1 || rounds < 1) return moe_fail(err, "probe: at least one burst size and one round");
    for (int i = 0; i < n_sizes; i++) {
        if (sizes[i] < 1 || sizes[i] > (uint32_t)m->cfg.n_experts)
            return moe_fail(err, "probe: burst of 1..%d reads", m->cfg.n_experts);
        if (bursts[i] < 1) return moe_fail(err, "probe: at least one burst");
        total += (uint64_t)rounds * bursts[i] * sizes[i];
        if (bursts[i] > most) most = bursts[i];
    }
    moe_offload *o = moe_offload_new(m, &cfg, err);
    if (!o) return -1;
    int rc = 0;
    uint32_t n_exp = o->L * o->E, next = 0;
    /* per burst (reused), then per (size, round) medians */
    double *t = malloc((3 * (size_t)most + 3 * (size_t)n_sizes * rounds) * sizeof *t);
    if (!t) {
        moe_offload_free(o);
        return moe_fail(err, "out of memory");
    }
    double *busy = t + most, *beyond = busy + most, *r_wall = beyond + most, *r_busy = r_wall + (size_t)n_sizes * rounds,
           *r_beyond = r_busy + (size_t)n_sizes * rounds;
    int32_t si[MOE_MAX_EXPERTS < 1024 ? MOE_MAX_EXPERTS : 1024];
    uint64_t warm = total < n_exp ? total : n_exp;
    for (uint32_t j = 0; j < warm && !rc; j++) { /* every block the rounds read, once, untimed */
        uint32_t k = probe_expert(j, n_exp), s0 = (uint32_t)take_slot(o, -1);
        issue_read(o, s0, k / o->E, k % o->E, 0, 0);
        wait_slot(o, s0);
        if (o->slots[s0].error[0]) rc = moe_fail(err, "%s", o->slots[s0].error);
        give_slot(o, s0);
    }
    for (uint32_t r = 0; r < rounds && !rc; r++)
        for (int z = 0; z < n_sizes && !rc; z++) {
            uint32_t burst = sizes[z];
            for (uint32_t i = 0; i < bursts[z] && !rc; i++) {
                double t0 = now_s(), busy0 = o->busy_s[0]; /* the I/O thread is idle: nothing in flight */
                for (uint32_t j = 0; j < burst; j++) {
                    uint32_t k = probe_expert(next, n_exp);
                    next = (next + 1) % n_exp;
                    si[j] = take_slot(o, -1);
                    issue_read(o, (uint32_t)si[j], k / o->E, k % o->E, 0, 0);
                }
                for (uint32_t j = 0; j < burst; j++) wait_slot(o, (uint32_t)si[j]);
                t[i] = now_s() - t0;
                /* busy_s was updated under the lock before the last read was
                 * marked done, and wait_slot took that lock after it: no race */
                busy[i] = o->busy_s[0] - busy0;
                beyond[i] = t[i] - busy[i];
                for (uint32_t j = 0; j < burst; j++) {
                    if (o->slots[si[j]].error[0] && !rc) rc = moe_fail(err, "%s", o->slots[si[j]].error);
                    give_slot(o, (uint32_t)si[j]);
                }
                if (gap_s > 0) {
                    struct timespec ts = {0, (long)(gap_s * 1e9)};
                    nanosleep(&ts, NULL);
                }
            }
            /* medians: one burst slowed by another tenant's I/O (at 336 MiB
             * blocks the same burst took 85 to 266 ms per read within a
             * minute) says nothing about thread costs */
            size_t at = (size_t)z * rounds + r;
            r_wall[at] = moe_time_stats_of(t, bursts[z]).p50;
            r_busy[at] = moe_time_stats_of(busy, bursts[z]).p50;
            r_beyond[at] = moe_time_stats_of(beyond, bursts[z]).p50;
        }
    moe_offload_free(o);
    for (int z = 0; z < n_sizes && !rc; z++) { /* and the median over the rounds */
        out[z].wall_s = moe_time_stats_of(r_wall + (size_t)z * rounds, rounds).p50;
        out[z].busy_s = moe_time_stats_of(r_busy + (size_t)z * rounds, rounds).p50;
        out[z].beyond_s = moe_time_stats_of(r_beyond + (size_t)z * rounds, rounds).p50;
    }
    free(t);
    return rc;
}
