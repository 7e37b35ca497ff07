/* fuzz_cache_state: saved cache states (core/cache_state.c, --load-state),
 * read for a 4-layer, 8-expert model; every key it returns must be one. */
#include "fuzz.h"
#include "../../core/cache_state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    moe_error err;
    uint32_t *keys = NULL;
    size_t nk = 0;
    if (moe_cache_state_load(fuzz_file(data, n, ".state"), 4, 8, &keys, &nk, &err) == 0) {
        for (size_t i = 0; i < nk; i++)
            if (keys[i] >= 32) {
                fprintf(stderr, "cache state: key %u out of range\n", keys[i]);
                abort();
            }
    }
    free(keys);
    return 0;
}
