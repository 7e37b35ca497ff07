/* fuzz_lcs_oracle: libCacheSim oracleGeneral binary traces (core/trace_lcs.c)
 * and the sniffer that recognises them without --format. */
#define MOE_FUZZ_TRACE
#include "fuzz.h"
#include "../../core/trace_formats.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    moe_error err;
    const char *path = fuzz_file(data, n, ".oracleGeneral.bin");
    (void)moe_lcs_oracle_sniff(path, &err);
    moe_trace *t = moe_trace_load_lcs_oracle(path, &err);
    fuzz_check_lcs_import(path, 1, NULL, NULL, t);
    fuzz_use_trace(t);
    return 0;
}
