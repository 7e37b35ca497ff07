/* test_cache_state.c: saved expert-cache states (core/cache_state.h): the
 * file round trip, the least-recently-used-first order of the resident keys
 * (ties by key), and every load error named by file and line. */
#include <stdint.h>
#include <unistd.h>

#include "../../core/cache_state.h"
#include "check.h"

static char dir[64]; /* created by main, removed at the end */

static const char *path_of(const char *name) {
    static char p[4][128];
    static int i;
    i = (i + 1) % 4;
    snprintf(p[i], sizeof p[i], "%s/%s", dir, name);
    return p[i];
}

static int write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    fputs(text, f);
    return fclose(f);
}

static char *read_text(const char *path) {
    static char buf[4096];
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return buf;
}

static void save_load_round_trip(void) {
    moe_error err = {{0}};
    const uint32_t L = 6, E = 32;
    /* global keys layer * E + expert, in a non-sorted order (file order is kept) */
    const uint32_t keys[] = {3 * 32 + 19, 0 * 32 + 0, 5 * 32 + 31, 2 * 32 + 7, 0 * 32 + 31, 4 * 32 + 1};
    const size_t n = sizeof keys / sizeof *keys;
    const char *p = path_of("a.state");
    CHECK(moe_cache_state_save(p, L, E, keys, n, &err) == 0);
    char *text = read_text(p);
    CHECK(text);
    CHECK(!strcmp(text, "# moesim cache state v1\ngeometry 6 32\n3 19\n0 0\n5 31\n2 7\n0 31\n4 1\n"));
    uint32_t *got = NULL;
    size_t n_got = 99;
    CHECK(moe_cache_state_load(p, L, E, &got, &n_got, &err) == 0);
    CHECK_EQ_U(n_got, n);
    for (size_t i = 0; i < n; i++) CHECK_EQ_U(got[i], keys[i]);
    free(got);
    /* no temporary file left beside it */
    char cmd[256];
    snprintf(cmd, sizeof cmd, "test $(ls -A %s | grep -c tmp) -eq 0", dir);
    CHECK(system(cmd) == 0);
    /* saving again replaces the file */
    CHECK(moe_cache_state_save(p, L, E, keys + 2, 1, &err) == 0);
    CHECK(!strcmp(read_text(p), "# moesim cache state v1\ngeometry 6 32\n5 31\n"));
}

static void empty_state_round_trip(void) {
    moe_error err = {{0}};
    const char *p = path_of("empty.state");
    CHECK(moe_cache_state_save(p, 2, 8, NULL, 0, &err) == 0);
    CHECK(!strcmp(read_text(p), "# moesim cache state v1\ngeometry 2 8\n"));
    uint32_t *got = (uint32_t *)1;
    size_t n = 99;
    CHECK(moe_cache_state_load(p, 2, 8, &got, &n, &err) == 0);
    CHECK_EQ_U(n, 0);
    free(got);
}

static void load_accepts_comments_blank_lines_crlf(void) {
    moe_error err = {{0}};
    const char *p = path_of("c.state");
    CHECK(write_text(p, "# moesim cache state v1\r\n# saved by hand\r\n\r\ngeometry 2 8\r\n"
                        "1 7\r\n# a comment between keys\n\n 0\t3 \n1 0") == 0);
    uint32_t *got = NULL;
    size_t n = 0;
    CHECK(moe_cache_state_load(p, 2, 8, &got, &n, &err) == 0);
    CHECK_EQ_U(n, 3);
    CHECK_EQ_U(got[0], 1 * 8 + 7);
    CHECK_EQ_U(got[1], 0 * 8 + 3);
    CHECK_EQ_U(got[2], 1 * 8 + 0);
    free(got);
}

/* load_error TEXT NEEDLE: loading TEXT (as 2 layers x 8 experts) fails with
 * a message containing "<path><NEEDLE>", and hands out nothing */
static int load_error(const char *name, const char *text, const char *needle, char *msg_out, size_t cap) {
    moe_error err = {{0}};
    const char *p = path_of(name);
    if (write_text(p, text)) return 0;
    uint32_t *got = (uint32_t *)8; /* left alone on failure */
    size_t n = 77;
    int rc = moe_cache_state_load(p, 2, 8, &got, &n, &err);
    snprintf(msg_out, cap, "%s", err.msg);
    char want[512];
    snprintf(want, sizeof want, "%s%s", p, needle);
    return rc == -1 && strstr(err.msg, want) != NULL && got == (uint32_t *)8 && n == 77;
}

static void load_errors_name_file_and_line(void) {
    char msg[1024];
#define BAD(name, text, needle)                                                               \
    do {                                                                                      \
        if (!load_error(name, text, needle, msg, sizeof msg)) {                               \
            printf("info %s: got '%s', expected '<path>%s'\n", name, msg, needle);           \
            CHECK(!"load error message");                                                     \
        }                                                                                     \
    } while (0)
    BAD("magic.state", "# moesim cache state v2\ngeometry 2 8\n0 1\n",
        ":1: not a moesim cache state (expected '# moesim cache state v1')");
    BAD("nomagic.state", "geometry 2 8\n0 1\n", ":1: not a moesim cache state");
    BAD("nogeo.state", "# moesim cache state v1\n# comment\n0 1\n", ":3: expected 'geometry LAYERS EXPERTS'");
    BAD("geo_extra.state", "# moesim cache state v1\ngeometry 2 8 4\n", ":2: expected 'geometry LAYERS EXPERTS'");
    BAD("geo_only_magic.state", "# moesim cache state v1\n# nothing else\n", ": no 'geometry LAYERS EXPERTS' line");
    BAD("wronggeo.state", "# moesim cache state v1\ngeometry 6 32\n0 1\n",
        ":2: state of 6 layers x 32 experts, the model has 2 x 8");
    BAD("layer.state", "# moesim cache state v1\ngeometry 2 8\n0 1\n2 0\n",
        ":4: layer 2 expert 0 is outside 2 layers x 8 experts");
    BAD("expert.state", "# moesim cache state v1\ngeometry 2 8\n\n1 8\n", ":4: layer 1 expert 8 is outside");
    BAD("dup.state", "# moesim cache state v1\ngeometry 2 8\n1 2\n0 0\n1 2\n", ":5: layer 1 expert 2 listed twice");
    BAD("garbage.state", "# moesim cache state v1\ngeometry 2 8\n0 1\nhello world\n",
        ":4: expected 'LAYER EXPERT', got 'hello world'");
    BAD("three.state", "# moesim cache state v1\ngeometry 2 8\n0 1 2\n", ":3: expected 'LAYER EXPERT', got '0 1 2'");
    BAD("one.state", "# moesim cache state v1\ngeometry 2 8\n1\n", ":3: expected 'LAYER EXPERT', got '1'");
    BAD("negative.state", "# moesim cache state v1\ngeometry 2 8\n-1 2\n", ":3: expected 'LAYER EXPERT', got '-1 2'");
    BAD("trailing.state", "# moesim cache state v1\ngeometry 2 8\n1 2x\n", ":3: expected 'LAYER EXPERT', got '1 2x'");
#undef BAD
    /* a missing file names it */
    moe_error err = {{0}};
    uint32_t *got = NULL;
    size_t n = 0;
    const char *p = path_of("none.state");
    CHECK(moe_cache_state_load(p, 2, 8, &got, &n, &err) == -1);
    CHECK_STR_CONTAINS(err.msg, p);
}

static void save_to_missing_dir_fails(void) {
    moe_error err = {{0}};
    const uint32_t k = 3;
    const char *p = path_of("nodir/x.state");
    CHECK(moe_cache_state_save(p, 2, 8, &k, 1, &err) == -1);
    CHECK_STR_CONTAINS(err.msg, p);
    CHECK(access(p, F_OK) != 0);
}

static void order_by_last_use_ties_by_key(void) {
    /* 10 keys: resident 1, 2, 4, 5, 7, 9 */
    const uint8_t resident[10] = {0, 1, 1, 0, 1, 1, 0, 1, 0, 1};
    /* last use (access time + 1): key 7 oldest, then 2 and 9 tied (2 first),
     * then 4, then 1 and 5 tied (1 first); non-resident times are ignored */
    const uint64_t last_use[10] = {0, 50, 20, 1, 30, 50, 2, 10, 99, 20};
    uint32_t keys[10];
    size_t n = moe_cache_state_order(resident, last_use, 10, keys);
    CHECK_EQ_U(n, 6);
    const uint32_t want[6] = {7, 2, 9, 4, 1, 5};
    for (size_t i = 0; i < n; i++) CHECK_EQ_U(keys[i], want[i]);
    /* nothing resident */
    const uint8_t none[10] = {0};
    CHECK_EQ_U(moe_cache_state_order(none, last_use, 10, keys), 0);
    /* all tied: key order; all resident, reverse times: reverse order */
    const uint8_t all[10] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    const uint64_t same[10] = {5, 5, 5, 5, 5, 5, 5, 5, 5, 5}, rev[10] = {10, 9, 8, 7, 6, 5, 4, 3, 2, 1};
    CHECK_EQ_U(moe_cache_state_order(all, same, 10, keys), 10);
    for (uint32_t i = 0; i < 10; i++) CHECK_EQ_U(keys[i], i);
    CHECK_EQ_U(moe_cache_state_order(all, rev, 10, keys), 10);
    for (uint32_t i = 0; i < 10; i++) CHECK_EQ_U(keys[i], 9 - i);
}

static void order_then_save_then_load(void) {
    /* a larger state: 6 x 32 keys, a pseudo-random resident half, times with ties */
    enum { NK = 6 * 32 };
    uint8_t resident[NK];
    uint64_t last_use[NK];
    uint64_t s = 12345;
    for (uint32_t k = 0; k < NK; k++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        resident[k] = (s >> 40) & 1;
        last_use[k] = 1 + ((s >> 20) % 40);
    }
    uint32_t keys[NK];
    size_t n = moe_cache_state_order(resident, last_use, NK, keys);
    CHECK(n > 50 && n < 150);
    for (size_t i = 1; i < n; i++) {
        CHECK(last_use[keys[i - 1]] <= last_use[keys[i]]);
        if (last_use[keys[i - 1]] == last_use[keys[i]]) CHECK(keys[i - 1] < keys[i]);
    }
    moe_error err = {{0}};
    const char *p = path_of("big.state");
    CHECK(moe_cache_state_save(p, 6, 32, keys, n, &err) == 0);
    uint32_t *got = NULL;
    size_t n_got = 0;
    CHECK(moe_cache_state_load(p, 6, 32, &got, &n_got, &err) == 0);
    CHECK_EQ_U(n_got, n);
    int same = 1;
    for (size_t i = 0; i < n; i++) same &= got[i] == keys[i];
    free(got);
    CHECK(same);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/moesim-state-XXXXXX");
    if (!mkdtemp(dir)) {
        printf("FAIL test_cache_state: cannot create a temporary directory\n");
        return 1;
    }
    RUN(save_load_round_trip);
    RUN(empty_state_round_trip);
    RUN(load_accepts_comments_blank_lines_crlf);
    RUN(load_errors_name_file_and_line);
    RUN(save_to_missing_dir_fails);
    RUN(order_by_last_use_ties_by_key);
    RUN(order_then_save_then_load);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) printf("info could not remove %s\n", dir);
    CHECK_EXIT();
}
