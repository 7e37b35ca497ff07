/* test_on_miss.c: the miss-handling rule (core/on_miss.c) on a hand-filled
 * cache, every answer worked out by hand. */
#include "check.h"

#include "../../core/cache.h"
#include "../../core/on_miss.h"
#include "../../core/trace.h"

/* An LRU cache of 8 experts holding exactly `resident` (insert order). */
static moe_cache *cache_with(const uint32_t *resident, int n) {
    moe_policy_env env = {.n_keys = 8, .capacity = 8, .n_layers = 1, .n_experts = 8, .fixed_layer = 0, .seed = 1};
    moe_error err;
    moe_cache *c = moe_cache_new("lru", &env, &err);
    for (int i = 0; c && i < n; i++) {
        moe_access a = {.time = (uint64_t)i, .next_use = MOE_NEVER, .expert = resident[i], .weight = 1};
        int64_t v;
        moe_cache_insert(c, resident[i], &a, &v);
    }
    return c;
}

static void test_parse(void) {
    int m = -1;
    moe_error err = {{0}};
    CHECK(moe_on_miss_parse("substitute", &m, &err) == 0 && m == MOE_ON_MISS_SUBSTITUTE);
    CHECK(moe_on_miss_parse("skip", &m, &err) == 0 && m == MOE_ON_MISS_SKIP);
    CHECK(moe_on_miss_parse("wait", &m, &err) == 0 && m == MOE_ON_MISS_WAIT);
    CHECK(!strcmp(moe_on_miss_name(MOE_ON_MISS_SKIP), "skip"));
    /* lowbit: the bits ride above the mode's byte, and come back in the name */
    CHECK(moe_on_miss_parse("lowbit", &m, &err) == 0 && m == MOE_ON_MISS_LOWBIT && !moe_on_miss_bits(m));
    CHECK(!strcmp(moe_on_miss_name(m), "lowbit"));
    int bits[] = {8, 4, 3, 2};
    for (int i = 0; i < 4; i++) {
        char s[32];
        snprintf(s, sizeof s, "lowbit:bits=%d", bits[i]);
        CHECK(moe_on_miss_parse(s, &m, &err) == 0 && moe_on_miss_mode(m) == MOE_ON_MISS_LOWBIT &&
              moe_on_miss_bits(m) == bits[i] && m == (MOE_ON_MISS_LOWBIT | bits[i] << 8));
        CHECK(!strcmp(moe_on_miss_name(m), s));
    }
    CHECK(moe_on_miss_parse("lowbit:bits=5", &m, &err) != 0);
    CHECK_STR_CONTAINS(err.msg, "--on-miss lowbit:bits=5: expected lowbit:bits=B with B one of 8, 4, 3, 2");
    CHECK(moe_on_miss_parse("lowbit:bits=16", &m, &err) != 0);
    CHECK(moe_on_miss_parse("fallback", &m, &err) != 0);
    CHECK_STR_CONTAINS(err.msg, "unknown --on-miss mode 'fallback' (wait, skip, substitute, lowbit[:bits=B])");
}

/* Resident {1, 4, 6}; the token chose 4, 2, 7, 1 (rank order).
 *   wait: unchanged.
 *   skip: 2 and 7 are missing -> 4, -, -, 1.
 *   substitute, logits with 6 > 5 > 3 > others: slot 1 (expert 2) takes the
 *   best resident expert the token did not choose: 6 (1 and 4 are its own);
 *   slot 2 (expert 7): 6 is taken by slot 1, no resident one is left -> dropped. */
static void test_rule_by_hand(void) {
    const uint32_t res[] = {1, 4, 6};
    moe_cache *c = cache_with(res, 3);
    CHECK(c);
    const uint16_t chose[4] = {4, 2, 7, 1};
    float logits[8] = {0, 0.5f, 1, 3, 0.2f, 5, 6, 2};
    uint16_t out[4];
    CHECK_EQ_U(moe_on_miss_token(MOE_ON_MISS_WAIT, chose, 4, c, 0, logits, 8, out), 0);
    CHECK(out[0] == 4 && out[1] == 2 && out[2] == 7 && out[3] == 1);
    CHECK_EQ_U(moe_on_miss_token(MOE_ON_MISS_SKIP, chose, 4, c, 0, logits, 8, out), 0);
    CHECK(out[0] == 4 && out[1] == MOE_NO_EXPERT && out[2] == MOE_NO_EXPERT && out[3] == 1);
    CHECK_EQ_U(moe_on_miss_token(MOE_ON_MISS_SUBSTITUTE, chose, 4, c, 0, logits, 8, out), 1);
    CHECK(out[0] == 4 && out[1] == 6 && out[2] == MOE_NO_EXPERT && out[3] == 1);
    /* lowbit marks the missing slots as skip does (the caller runs their low copies) */
    CHECK_EQ_U(moe_on_miss_token(MOE_ON_MISS_LOWBIT | 2 << 8, chose, 4, c, 0, logits, 8, out), 0);
    CHECK(out[0] == 4 && out[1] == MOE_NO_EXPERT && out[2] == MOE_NO_EXPERT && out[3] == 1);
    /* ties go to the lower id: 1 and 6 equal, token chose neither */
    const uint16_t chose2[2] = {2, 4};
    float flat[8] = {0, 1, 0, 0, 1, 0, 1, 0};
    CHECK_EQ_U(moe_on_miss_token(MOE_ON_MISS_SUBSTITUTE, chose2, 2, c, 0, flat, 8, out), 1);
    CHECK(out[0] == 1 && out[1] == 4);
    moe_cache_free(c);
}

/* Nothing resident: skip and substitute drop every slot, count no substitutes. */
static void test_empty_cache(void) {
    moe_cache *c = cache_with(NULL, 0);
    CHECK(c);
    const uint16_t chose[3] = {0, 5, 3};
    float logits[8] = {0};
    uint16_t out[3];
    CHECK_EQ_U(moe_on_miss_token(MOE_ON_MISS_SUBSTITUTE, chose, 3, c, 0, logits, 8, out), 0);
    CHECK(out[0] == MOE_NO_EXPERT && out[1] == MOE_NO_EXPERT && out[2] == MOE_NO_EXPERT);
    moe_cache_free(c);
}

int main(void) {
    RUN(test_parse);
    RUN(test_rule_by_hand);
    RUN(test_empty_cache);
    CHECK_EXIT();
}
