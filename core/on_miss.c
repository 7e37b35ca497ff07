/* on_miss.c: the miss-handling rule of on_miss.h. */
#include "on_miss.h"

#include <string.h>

#include "trace.h"

static const char *const names[] = {"wait", "skip", "substitute"};

int moe_on_miss_parse(const char *s, int *mode, moe_error *err) {
    for (int i = 0; i < 3; i++)
        if (!strcmp(s, names[i])) return *mode = i, 0;
    return moe_fail(err, "unknown --on-miss mode '%s' (wait, skip, substitute)", s);
}

const char *moe_on_miss_name(int mode) { return mode >= 0 && mode < 3 ? names[mode] : "?"; }

uint32_t moe_on_miss_token(int mode, const uint16_t *experts, uint32_t n, const moe_cache *c, uint32_t base,
                           const float *logits, uint32_t E, uint16_t *out) {
    uint32_t subs = 0;
    for (uint32_t k = 0; k < n; k++) {
        uint16_t e = experts[k];
        out[k] = e;
        if (mode == MOE_ON_MISS_WAIT || e == MOE_NO_EXPERT || moe_cache_resident(c, base + e)) continue;
        out[k] = MOE_NO_EXPERT;
        if (mode != MOE_ON_MISS_SUBSTITUTE) continue;
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
