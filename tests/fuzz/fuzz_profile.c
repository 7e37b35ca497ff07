/* fuzz_profile: device and model profile files (core/device_profile.c over
 * core/ini.c), loaded by every section name the file has, as --device NAME
 * and --model NAME would; plus a model spec with overrides. */
#include "fuzz.h"
#include "../../core/device_profile.h"
#include "../../core/ini.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    moe_error err;
    const char *path = fuzz_file(data, n, ".ini");
    moe_ini *ini = moe_ini_load(path, &err);
    if (!ini) return 0;
    for (size_t i = 0; i < ini->n_sections && i < 16; i++) {
        char spec[300];
        moe_device_profile d;
        moe_model_profile m;
        (void)moe_device_profile_load(path, ini->sections[i].name, &d, &err);
        if (moe_model_profile_load(path, ini->sections[i].name, &m, &err) == 0 &&
            moe_device_profile_load(path, ini->sections[i].name, &d, &err) == 0) {
            /* profiles that load must give times a timeline can use */
            double t[3] = {moe_profile_dense_s(&d, &m, 4, 100), moe_profile_expert_s(&d, &m, 0, 4),
                           moe_profile_head_s(&d, &m, 4)};
            for (int k = 0; k < 3; k++)
                if (!(t[k] >= 0 && t[k] < 1e9)) {
                    fprintf(stderr, "profile '%s' loads but gives time %g s\n", ini->sections[i].name, t[k]);
                    abort();
                }
        }
        snprintf(spec, sizeof spec, "%s:dense_bits=4", ini->sections[i].name);
        (void)moe_model_profile_load(path, spec, &m, &err);
    }
    moe_ini_free(ini);
    return 0;
}
