/* expert_quant.h: a model's routed experts quantized in RAM, each at the
 * tier a precision plan (core/precision.h) gives it.
 *
 * An engine given such a set (moe_engine_set_quantized) computes every
 * expert whose tier is Q8, Q4, Q3 or Q2 from its packed matrices
 * (backend/quant.h: gate and up rows [2I][H], down [H][I], each quantized
 * along its input dimension) and every F32 / F16 expert from the model's
 * own f32 weights (F16 is the file's own precision for an f16 or bf16
 * model, so nothing is lost). The model itself is left as it is, so one
 * model serves a full-precision engine and a quantized one side by side.
 *
 * HOBBIT (a dynamic plan) decides per token slot, in rank order, with c the
 * token's normalised gate weight of the slots ranked before: c < hi runs the
 * high-tier copy, c < lo the low-tier copy, else the slot is skipped (its
 * output left out, the other weights unchanged: the skipped gate mass the
 * simulator reports). Both copies of every expert are held. */
#ifndef MOE_BACKEND_EXPERT_QUANT_H
#define MOE_BACKEND_EXPERT_QUANT_H

#include <stdint.h>

#include "../core/error.h"
#include "../core/precision.h"
#include "model.h"
#include "quant.h"

typedef struct moe_qexperts {
    int n_layers, n_experts; /* MoE layers (ordinals), routed experts */
    uint8_t *tier;           /* [L][E] enum moe_precision */
    moe_qmat *gate_up, *down; /* [L][E]; rows 0 when the expert is not quantized */
    uint64_t packed_bytes;   /* bytes of every quantized expert's blocks */
    /* HOBBIT (dynamic): thresholds and the low-tier copies (rows 0: the
     * low tier is the model's own precision); tier[] holds the high tier */
    int dynamic, low_tier;
    double hi, lo;
    moe_qmat *low_gate_up, *low_down;
} moe_qexperts;


/* Bits of a tier: 8, 4, 3, 2, or 0 for F32 / F16 (not quantized). */
int moe_tier_bits(int tier);
/* Bytes of one routed expert (gate, up [I][H], down [H][I]) stored at a
 * tier: F32 4 per weight, F16 2, a quantized tier its two packed blocks
 * (backend/quant.h: b bits a weight, a bf16 scale and bias per group of 64
 * inputs, 4-byte padding), so Q4 of the tiny model (H 128, I 144) is 31488
 * bytes, not 0.5625 x 55296 = 31104. */
uint64_t moe_expert_bytes_at(int hidden, int inter, int tier);
/* Quantize model m's experts at tier[l * E + e] (l the MoE ordinal). The
 * model must hold its experts (not loaded with MOE_LOAD_NO_EXPERTS). */
moe_qexperts *moe_qexperts_new(const moe_model *m, const uint8_t *tier, moe_error *err);
/* The same for HOBBIT's two tiers (high at every expert, and low copies). */
moe_qexperts *moe_qexperts_new_hobbit(const moe_model *m, int high_tier, int low_tier, double hi, double lo,
                                      moe_error *err);
void moe_qexperts_free(moe_qexperts *q);

#endif
