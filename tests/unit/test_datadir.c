/* test_datadir.c: the data look-up (core/datadir.h): a path that exists as
 * given wins, an absolute path is untouched, a missing one comes back as
 * written, and $MOESIM_DATA is searched (for paths and globs) after the
 * folders next to the binary. The binary of this test lives in BUILD/tests,
 * whose parent is no checkout and has no share/moesim, so only
 * $MOESIM_DATA (and an installed PREFIX, which never holds these names) can
 * answer. */
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../core/datadir.h"
#include "check.h"

static char root[256]; /* a fresh $MOESIM_DATA */

static void write_file(const char *rel) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    FILE *f = fopen(p, "w");
    if (f) fputs("x\n", f), fclose(f);
}

static void as_given_and_absolute(void) {
    char buf[1024];
    /* the tests run from the repository root, where this file exists */
    const char *here = "tests/unit/check.h";
    CHECK(moe_data_path(here, buf, sizeof buf) == here);
    const char *abs = "/nonexistent/moesim/abs.ini";
    CHECK(moe_data_path(abs, buf, sizeof buf) == abs);
    const char *none = "experiments/no-such-file-anywhere.ini";
    CHECK(moe_data_path(none, buf, sizeof buf) == none);
}

static void moesim_data_is_searched(void) {
    char buf[1024], want[512];
    setenv("MOESIM_DATA", root, 1);
    snprintf(want, sizeof want, "%s/sub/datadir-test-a.ini", root);
    CHECK(!strcmp(moe_data_path("sub/datadir-test-a.ini", buf, sizeof buf), want));
    /* the folder list names it, last */
    char dirs[MOE_DATA_DIRS_MAX][MOE_DATA_DIR_CAP];
    size_t n = moe_data_dirs(dirs);
    CHECK(n >= 1 && !strcmp(dirs[n - 1], root));
    char text[2048];
    moe_data_dirs_text(text, sizeof text);
    CHECK_STR_CONTAINS(text, root);
    /* a path too long for the buffer is not truncated into another one */
    char small[8];
    CHECK(!strcmp(moe_data_path("sub/datadir-test-a.ini", small, sizeof small), "sub/datadir-test-a.ini"));
    unsetenv("MOESIM_DATA");
    CHECK(!strcmp(moe_data_path("sub/datadir-test-a.ini", buf, sizeof buf), "sub/datadir-test-a.ini"));
}

static void globs_fall_back_to_the_data_folders(void) {
    glob_t g;
    setenv("MOESIM_DATA", root, 1);
    CHECK(moe_data_glob("sub/datadir-test-*.ini", &g) == 0);
    CHECK_EQ_U(g.gl_pathc, 2);
    char want[512];
    snprintf(want, sizeof want, "%s/sub/datadir-test-a.ini", root);
    CHECK(!strcmp(g.gl_pathv[0], want));
    globfree(&g);
    /* a match as given wins over the data folders */
    CHECK(moe_data_glob("tests/unit/check.*", &g) == 0);
    CHECK_EQ_U(g.gl_pathc, 1);
    CHECK(!strcmp(g.gl_pathv[0], "tests/unit/check.h"));
    globfree(&g);
    CHECK(moe_data_glob("sub/no-match-*.ini", &g) == GLOB_NOMATCH);
    globfree(&g);
    unsetenv("MOESIM_DATA");
}

int main(void) {
    snprintf(root, sizeof root, "%s/moesim_datadir_XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(root)) return perror("mkdtemp"), 1;
    char sub[300];
    snprintf(sub, sizeof sub, "%s/sub", root);
    mkdir(sub, 0755);
    write_file("sub/datadir-test-a.ini");
    write_file("sub/datadir-test-b.ini");
    RUN(as_given_and_absolute);
    RUN(moesim_data_is_searched);
    RUN(globs_fall_back_to_the_data_folders);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", root);
    CHECK_EXIT();
}
