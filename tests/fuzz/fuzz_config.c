/* fuzz_config: a model's config.json (backend/config.c): architecture,
 * geometry, layer kinds and their range checks. */
#include "fuzz.h"
#include "../../backend/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    moe_error err;
    moe_model_config c;
    memset(&c, 0, sizeof c);
    (void)moe_config_load(&c, fuzz_file(data, n, ".json"), &err);
    return 0;
}
