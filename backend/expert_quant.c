/* expert_quant.c: quantize a model's routed experts (see expert_quant.h). */
#include "expert_quant.h"

#include <stdlib.h>
#include <string.h>

#include "../core/device_profile.h"
#include "../core/trace.h"

int moe_tier_bits(int tier) {
    return tier >= MOE_PREC_Q8 && tier < MOE_PREC_COUNT ? (int)moe_prec_bits[tier] : 0;
}

uint64_t moe_expert_bytes_at(int hidden, int inter, int tier) {
    uint64_t params = 3 * (uint64_t)hidden * (uint64_t)inter;
    int bits = moe_tier_bits(tier);
    if (bits) return moe_qmat_bytes(2 * inter, hidden, bits) + moe_qmat_bytes(hidden, inter, bits);
    return tier == MOE_PREC_F32 ? 4 * params : tier == MOE_PREC_F16 ? 2 * params : 0;
}

moe_qexperts *moe_qexperts_new(const moe_model *m, const uint8_t *tier, moe_error *err) {
    const moe_model_config *c = &m->cfg;
    if (!m->experts_loaded) {
        moe_fail(err, "quantized experts need the model's experts in RAM");
        return NULL;
    }
    int L = c->n_moe_layers, E = c->n_experts, H = c->hidden;
    size_t n = (size_t)L * E;
    moe_qexperts *q = calloc(1, sizeof *q);
    if (q) q->tier = malloc(n), q->gate_up = calloc(n, sizeof *q->gate_up), q->down = calloc(n, sizeof *q->down);
    if (!q || !q->tier || !q->gate_up || !q->down) {
        moe_qexperts_free(q);
        moe_fail(err, "out of memory");
        return NULL;
    }
    q->n_layers = L, q->n_experts = E;
    float *wide = NULL; /* one bf16 expert widened for the quantizer */
    for (int l = 0, mi = 0; l < c->n_layers; l++) {
        if (!c->is_moe[l]) continue;
        for (int x = 0; x < E; x++) {
            size_t i = (size_t)mi * E + x;
            q->tier[i] = tier[i];
            int bits = moe_tier_bits(tier[i]);
            if (!bits) continue;
            const moe_mlp_w *w = &m->layers[l].experts[x];
            int I = w->inter;
            const float *fgu, *fdn;
            if (!w->gate_up && !wide && !(wide = malloc(3 * (size_t)I * H * sizeof(float)))) {
                moe_fail(err, "out of memory");
                moe_qexperts_free(q);
                return NULL;
            }
            moe_mlp_f32(w, H, wide, wide + (wide ? 2 * (size_t)I * H : 0), &fgu, &fdn);
            if (moe_qmat_quantize(&q->gate_up[i], fgu, 2 * I, H, bits, err) ||
                moe_qmat_quantize(&q->down[i], fdn, H, I, bits, err)) {
                moe_fail_prefix(err, "layer %d expert %d", l, x);
                moe_qexperts_free(q);
                free(wide);
                return NULL;
            }
            q->packed_bytes += moe_expert_bytes_at(H, I, tier[i]);
        }
        mi++;
    }
    free(wide);
    return q;
}

moe_qexperts *moe_qexperts_new_hobbit(const moe_model *m, int high_tier, int low_tier, double hi, double lo,
                                      moe_error *err) {
    size_t n = (size_t)m->cfg.n_moe_layers * m->cfg.n_experts;
    uint8_t *tier = malloc(n ? n : 1);
    if (!tier) {
        moe_fail(err, "out of memory");
        return NULL;
    }
    memset(tier, low_tier, n);
    moe_qexperts *low = moe_qexperts_new(m, tier, err), *q = NULL;
    memset(tier, high_tier, n);
    if (low) q = moe_qexperts_new(m, tier, err);
    free(tier);
    if (!q) {
        moe_qexperts_free(low);
        return NULL;
    }
    /* the low set's copies move into q */
    q->dynamic = 1, q->low_tier = low_tier, q->hi = hi, q->lo = lo;
    q->low_gate_up = low->gate_up, q->low_down = low->down;
    q->packed_bytes += low->packed_bytes;
    low->gate_up = low->down = NULL;
    moe_qexperts_free(low);
    return q;
}

void moe_qexperts_free(moe_qexperts *q) {
    if (!q) return;
    size_t n = (size_t)q->n_layers * q->n_experts;
    for (size_t i = 0; q->gate_up && q->down && i < n; i++) moe_qmat_free(&q->gate_up[i]), moe_qmat_free(&q->down[i]);
    for (size_t i = 0; q->low_gate_up && q->low_down && i < n; i++)
        moe_qmat_free(&q->low_gate_up[i]), moe_qmat_free(&q->low_down[i]);
    free(q->tier), free(q->gate_up), free(q->down), free(q->low_gate_up), free(q->low_down);
    free(q);
}
