/* fuzz_jsonl: both JSONL routing-log layouts (core/trace_jsonl.c) and the
 * layout sniffer. Two selector bytes pick the layout, the order (Mixtral),
 * the warm-up handling, the pass rule (Qwen) and strict mode; options that
 * conflict are refused by moe_jsonl_check_opts, as `trace import` does. */
#define MOE_FUZZ_TRACE
#include "fuzz.h"
#include "../../core/trace_formats.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    moe_error err;
    unsigned sel = fuzz_take_byte(&data, &n), sel2 = fuzz_take_byte(&data, &n);
    const char *path = fuzz_file(data, n, ".jsonl");
    moe_jsonl_opts o;
    memset(&o, 0, sizeof o);
    o.layout = sel & 1 ? MOE_JSONL_QWEN : MOE_JSONL_MIXTRAL;
    o.order = (sel >> 1) % 3;
    if (sel & 8) o.skip_warmup = sel >> 4;
    if (sel & 128) o.warmup_prefix = "warm";
    o.keep_warmup = sel2 & 1;
    static const char *const rules[] = {NULL, "token", "wrap", "rows=3", "key=pass", "rows=1", "key=req_id", NULL};
    if (rules[(sel2 >> 1) & 7] && moe_jsonl_pass_by(&o, rules[(sel2 >> 1) & 7], &err)) abort();
    moe_import_report r = {.strict = (sel >> 6) & 1, .say = NULL, .ctx = NULL};
    (void)moe_jsonl_sniff(path, &err);
    if (moe_jsonl_check_opts(&o, &err) == 0) fuzz_use_trace(moe_trace_load_jsonl_report(path, &o, &r, &err));
    return 0;
}
