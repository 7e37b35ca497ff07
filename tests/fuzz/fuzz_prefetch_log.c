/* fuzz_prefetch_log: prefetch logs (core/prefetch_log.c, `log:file=`),
 * read for a 4-layer, 8-expert, top-2 model and then asked for every
 * (step, layer) prediction of 16 steps, as the replay would. */
#include "fuzz.h"
#include "../../core/prefetch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    moe_error err;
    char spec[600];
    snprintf(spec, sizeof spec, "log:file=%s", fuzz_file(data, n, ".log"));
    moe_prefetch_env env = {.trace = NULL, .n_layers = 4, .n_experts = 8, .top_k = 2, .seed = 1};
    moe_prefetcher *p = moe_prefetcher_new(spec, &env, &err);
    if (!p) return 0;
    uint16_t out[8], set[2] = {1, 5};
    uint32_t nt[2] = {1, 1};
    for (uint64_t s = 0; s < 16; s++)
        for (uint32_t l = 0; l < 4; l++) {
            uint32_t target = l + 1;
            p->ops->observe(p->st, s, l, set, nt, 2);
            uint32_t k = p->ops->predict(p->st, s, l, &target, out);
            if (k > 8 || (k && target >= 4)) {
                fprintf(stderr, "prefetch log: %u experts for layer %u\n", k, target);
                abort();
            }
            for (uint32_t i = 0; i < k; i++)
                if (out[i] >= 8) abort();
        }
    moe_prefetcher_free(p);
    return 0;
}
