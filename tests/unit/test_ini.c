/* test_ini.c: the INI reader, including malformed input reported as file:line. */
#include <unistd.h>

#include "../../core/device_profile.h"
#include "../../core/ini.h"
#include "check.h"

static void parses_sections_comments_and_values(void) {
    moe_error err;
    moe_ini *ini = moe_ini_parse("top = 1\n# comment\n; another\n\n[Dev A]\r\n  Key = some value  # note\n"
                                 "empty =\nhash = a#b\n[b]\nkey=2 ; inline\n", "x.ini", &err);
    CHECK(ini);
    CHECK_EQ_U(ini->n_sections, 2);
    CHECK_EQ_U(ini->n_entries, 5);
    CHECK(!strcmp(moe_ini_get(ini, "", "top"), "1"));
    CHECK(!strcmp(moe_ini_get(ini, "dev a", "KEY"), "some value")); /* case-insensitive lookup */
    CHECK(!strcmp(moe_ini_get(ini, "Dev A", "empty"), ""));
    CHECK(!strcmp(moe_ini_get(ini, "Dev A", "hash"), "a#b"));        /* '#' not after a space */
    CHECK(!strcmp(moe_ini_get(ini, "b", "key"), "2"));
    CHECK(moe_ini_get(ini, "b", "nokey") == NULL);
    CHECK_EQ_U(moe_ini_find(ini, "Dev A", "key")->line, 6);
    CHECK_EQ_U(moe_ini_find_section(ini, "B")->line, 9);
    double d;
    uint64_t u;
    CHECK(moe_ini_get_double(ini, "b", "key", 0, 0, 10, &d, &err) == 0 && d == 2);
    CHECK(moe_ini_get_double(ini, "b", "absent", 7.5, 0, 10, &d, &err) == 0 && d == 7.5);
    CHECK(moe_ini_get_u64(ini, "", "top", 0, 0, 10, &u, &err) == 0 && u == 1);
    CHECK(moe_ini_get_double(ini, "Dev A", "key", 0, 0, 10, &d, &err) == -1);
    CHECK_STR_CONTAINS(err.msg, "x.ini:6: key 'Key': 'some value' is not a number");
    CHECK(moe_ini_get_u64(ini, "b", "key", 0, 5, 10, &u, &err) == -1);
    CHECK_STR_CONTAINS(err.msg, "x.ini:10: key 'key': 2 out of range 5..10");
    static const char *const known[] = {"key", "empty", NULL};
    CHECK(moe_ini_check_keys(ini, "Dev A", known, &err) == -1);
    CHECK_STR_CONTAINS(err.msg, "x.ini:8: unknown key 'hash' in [Dev A] (known: key, empty)");
    moe_ini_free(ini);
}

static void expect_error(const char *text, const char *msg) {
    moe_error err = {{0}};
    moe_ini *ini = moe_ini_parse(text, "bad.ini", &err);
    if (ini) {
        moe_ini_free(ini);
        printf("FAIL expect_error: '%s' parsed\n", text);
        check_case_failed = 1;
        return;
    }
    if (!strstr(err.msg, msg)) {
        printf("FAIL expect_error: '%s' gave '%s', expected '%s'\n", text, err.msg, msg);
        check_case_failed = 1;
    }
}

static void malformed_lines_name_file_and_line(void) {
    expect_error("[a]\nno equals sign\n", "bad.ini:2: expected 'key = value' or '[section]', got 'no equals sign'");
    expect_error("\n\n[a\n", "bad.ini:3: section header without ']'");
    expect_error("[]\n", "bad.ini:1: empty section name");
    expect_error("[a] x\n", "bad.ini:1: text after section header");
    expect_error("[a]\n = 3\n", "bad.ini:2: empty key");
    expect_error("[a]\nk = 1\nK = 2\n", "bad.ini:3: key 'K' given twice in [a] (first at line 2)");
    expect_error("[a]\n[b]\n[A]\n", "bad.ini:3: section [A] given twice (first at line 1)");
    CHECK(!check_case_failed);
    moe_error err;
    CHECK(moe_ini_load("/nonexistent/x.ini", &err) == NULL);
    CHECK_STR_CONTAINS(err.msg, "/nonexistent/x.ini: No such file");
}

/* The shipped profile files parse and hold what the timing model needs. */
static void shipped_profiles(void) {
    moe_error err;
    static const char *const devs[] = {"apple-m1-ssd", "apple-m2-max-ssd", "t4", "rtx-3060", "rtx-3080-mobile",
                                       "a100-sxm", "nvme-cpu"};
    for (size_t i = 0; i < sizeof devs / sizeof *devs; i++) {
        moe_device_profile d;
        if (moe_device_profile_load(MOE_DEVICES_INI, devs[i], &d, &err)) printf("  %s\n", err.msg);
        CHECK(moe_device_profile_load(MOE_DEVICES_INI, devs[i], &d, &err) == 0);
        CHECK(d.io_bandwidth_Bps > 0 && d.mem_bandwidth_Bps > 0 && d.peak_flops > 0);
    }
    static const char *const models[] = {"Mixtral-8x7B", "Qwen3-30B-A3B", "OLMoE-1B-7B", "DeepSeek-V2-Lite", "tinymix"};
    for (size_t i = 0; i < sizeof models / sizeof *models; i++) {
        moe_model_profile m;
        CHECK(moe_model_profile_load(MOE_MODELS_INI, models[i], &m, &err) == 0);
        CHECK(m.expert_bytes[MOE_PREC_Q2] < m.expert_bytes[MOE_PREC_F16]);
    }
    moe_model_profile m;
    CHECK(moe_model_profile_load(MOE_MODELS_INI, "mixtral-8x7b:dense_bits=4", &m, &err) == 0);
    CHECK_EQ_U(m.expert_bytes[MOE_PREC_F16], 352321536);       /* 3 * 4096 * 14336 * 2 */
    CHECK_EQ_U(m.expert_bytes[MOE_PREC_Q2], 55050240);         /* x 2.5 bits / 8 */
    CHECK_NEAR(m.dense_bits, 4, 0);
    /* total parameters: 32 * (8 * expert + dense) + head = 46.7B (Mistral) */
    CHECK_NEAR((32 * (8 * m.expert_params + m.dense_params) + 2 * m.head_params) / 1e9, 46.7, 0.05);
    CHECK(moe_model_profile_load(MOE_MODELS_INI, "nosuch", &m, &err) == -1);
    CHECK_STR_CONTAINS(err.msg, "unknown model 'nosuch' (known: Mixtral-8x7B,");
}

static void profile_errors_name_line(void) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/moesim_test_ini_%d.ini", (int)getpid());
    FILE *f = fopen(path, "w");
    fputs("[d]\nio_bandwidth_GBps = fast\n[e]\nio_bandwidth_GBps = 1\nspeed = 3\n[f]\nio_channels = 2\n", f);
    fclose(f);
    moe_device_profile d;
    moe_error err;
    CHECK(moe_device_profile_load(path, "d", &d, &err) == -1);
    CHECK_STR_CONTAINS(err.msg, ":2: key 'io_bandwidth_GBps': 'fast' is not a number");
    CHECK(moe_device_profile_load(path, "e", &d, &err) == -1);
    CHECK_STR_CONTAINS(err.msg, ":5: unknown key 'speed' in [e]");
    CHECK(moe_device_profile_load(path, "f", &d, &err) == -1);
    CHECK_STR_CONTAINS(err.msg, ":6: device [f] needs io_bandwidth_GBps > 0");
    unlink(path);
}

int main(void) {
    RUN(parses_sections_comments_and_values);
    RUN(malformed_lines_name_file_and_line);
    RUN(shipped_profiles);
    RUN(profile_errors_name_line);
    CHECK_EXIT();
}
