/* on_miss.c: the miss-handling rule of on_miss.h. */
#include "on_miss.h"

#include <string.h>

#include "trace.h"

static const char *const names[] = {"wait", "skip", "substitute", "lowbit"};
/* lowbit:bits=B by B: the tiers a quantized copy can have (core/precision.h) */
static const char *const lowbit_names[9] = {[2] = "lowbit:bits=2", [3] = "lowbit:bits=3", [4] = "lowbit:bits=4",
                                            [8] = "lowbit:bits=8"};

int moe_on_miss_parse(const char *s, int *mode, moe_error *err) {
    for (int i = 0; i < 4; i++)
        if (!strcmp(s, names[i])) return *mode = i, 0;
    for (int b = 0; b < 9; b++)
        if (lowbit_names[b] && !strcmp(s, lowbit_names[b])) return *mode = moe_on_miss_with_bits(MOE_ON_MISS_LOWBIT, b), 0;
    if (!strncmp(s, "lowbit:", 7))
        return moe_fail(err, "--on-miss %s: expected lowbit:bits=B with B one of 8, 4, 3, 2 (the low copy's precision)", s);
    return moe_fail(err, "unknown --on-miss mode '%s' (wait, skip, substitute, lowbit[:bits=B])", s);
}

const char *moe_on_miss_name(int v) {
    int m = moe_on_miss_mode(v), b = moe_on_miss_bits(v);
    if (m == MOE_ON_MISS_LOWBIT && b) return b < 9 && lowbit_names[b] ? lowbit_names[b] : "?";
    return m >= 0 && m < 4 && !b ? names[m] : "?";
}

uint32_t moe_on_miss_token(int mode, const uint16_t *experts, uint32_t n, const moe_cache *c, uint32_t base,
                           const float *logits, uint32_t E, uint16_t *out) {
    uint32_t subs = 0;
    for (uint32_t k = 0; k < n; k++) {
        uint16_t e = experts[k];
        out[k] = e;
        if (moe_on_miss_mode(mode) == MOE_ON_MISS_WAIT || e == MOE_NO_EXPERT || moe_cache_resident(c, base + e)) continue;
        out[k] = MOE_NO_EXPERT;
        if (moe_on_miss_mode(mode) != MOE_ON_MISS_SUBSTITUTE) continue;
        int best = -1;
        for (uint32_t x = 0; x < E; x++) {
            if (!moe_cache_resident(c, base + x)) continue;
            int taken = 0; /* chosen by the token, or already a substitute of it */
            for (uint32_t j = 0; j < n && !taken; j++) taken = experts[j] == x || (j < k && out[j] == x);
            if (!taken && (best < 0 || logits[x] > logits[best])) best = (int)x;
        }
        if (best >= 0) out[k] = (uint16_t)best, subs++;
    }
    return subs;
}
