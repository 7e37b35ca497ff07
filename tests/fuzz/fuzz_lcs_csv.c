/* fuzz_lcs_csv: libCacheSim CSV key sequences (core/trace_lcs.c) and the
 * header sniffer. The first byte picks the object column, the header flag
 * and the delimiter. */
#define MOE_FUZZ_TRACE
#include "fuzz.h"
#include "../../core/trace_formats.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    moe_error err;
    unsigned sel = fuzz_take_byte(&data, &n);
    static const char delims[4] = {0, ',', '\t', ';'};
    moe_lcs_opts o = {.obj_col = sel & 7, .has_header = (sel >> 3) & 1, .delim = delims[(sel >> 4) & 3]};
    moe_import_report r = {.strict = (sel >> 6) & 1, .say = NULL, .ctx = NULL};
    char *line = fuzz_string(data, n > 4096 ? 4096 : n);
    (void)moe_lcs_csv_header_obj_col(line, o.delim ? o.delim : ',');
    free(line);
    const char *path = fuzz_file(data, n, ".csv");
    moe_trace *t = moe_trace_load_lcs_csv_report(path, &o, &r, &err);
    fuzz_check_lcs_import(path, 0, &o, &r, t);
    fuzz_use_trace(t);
    return 0;
}
