/* main.c: `moesim <command> [options]`, git style. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../core/datadir.h"
#include "../core/version.h"
#include "commands.h"

typedef struct command {
    const char *name;
    int (*fn)(int, char **);
    const char *summary;
} command;

static const command commands[] = {
#define COMMAND(name, fn, summary) {name, fn, summary},
#include "commands.def"
#undef COMMAND
};

static void usage(FILE *f) {
    fprintf(f, "usage: moesim <command> [options]   (moesim <command> --help for details)\n"
               "       moesim --version | --data-path [FILE] | --commands\n\n"
               "moesim replays Mixture-of-Experts routing traces against expert-cache policies.\n\n"
               "commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n  --data-path [FILE]  where a data file (experiments/devices.ini, plots, ...) is\n"
               "                      found, or the data folders searched after the working\n"
               "                      directory, one a line\n"
               "  --commands          the command names alone, one a line\n\n"
               "Reference: man moesim, docs/reference.md.\n");
}

/* Output that did not reach its destination is a failure: a command whose
 * stdout hit a full disk, /dev/full or an I/O error exits 1 with a message,
 * whatever the command itself returned. Every write to stdout is buffered,
 * so an error on any of them leaves the stream's error flag set (or shows up
 * at the final flush); checking once here covers every printf of every
 * command. A closed pipe (`moesim ... | head`) follows coreutils: SIGPIPE is
 * left at its default, so the process dies of it silently with status
 * 128+13 as `cat` would; if SIGPIPE is ignored by the parent and the write
 * fails with EPIPE, the exit status is still 1 but no message is printed. */
static int finish_stdout(const char *cmd, int rc) {
    errno = 0;
    int bad = fflush(stdout) != 0 || ferror(stdout);
    int e = errno;
    if (fclose(stdout) != 0 && !bad) {
        bad = 1;
        e = errno;
    }
    if (!bad) return rc;
    if (e != EPIPE)
        fprintf(stderr, "moesim %s: writing the output: %s\n", cmd, e ? strerror(e) : "write error");
    return rc ? rc : 1;
}

/* `moesim --data-path [FILE]`: the one data look-up (core/datadir.h) made
 * visible, for people and for the shell completion. */
static int data_path(int argc, char **argv) {
    char buf[4096], dirs[MOE_DATA_DIRS_MAX][MOE_DATA_DIR_CAP];
    if (argc == 2) {
        size_t n = moe_data_dirs(dirs);
        for (size_t i = 0; i < n; i++) puts(dirs[i]);
        return finish_stdout("--data-path", 0);
    }
    if (argc > 3) {
        fprintf(stderr, "moesim --data-path: one FILE at most\n");
        return 2;
    }
    const char *f = moe_data_path(argv[2], buf, sizeof buf);
    if (access(f, F_OK)) {
        char text[2048];
        moe_data_dirs_text(text, sizeof text);
        fprintf(stderr, "moesim --data-path: %s: not found (looked in the working directory, then %s)\n", argv[2], text);
        return 1;
    }
    puts(f);
    return finish_stdout("--data-path", 0);
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--data-path")) return data_path(argc, argv);
    if (!strcmp(argv[1], "--commands")) {
        for (size_t i = 0; i < sizeof commands / sizeof *commands; i++) puts(commands[i].name);
        return finish_stdout("--commands", 0);
    }
    if (!strcmp(argv[1], "--version")) {
        printf("moesim %s (commit %s)\n", MOE_RELEASE, moe_version());
        return finish_stdout("--version", 0);
    }
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (!strcmp(argv[1], commands[i].name)) {
            int rc = commands[i].fn(argc - 1, argv + 1);
            return finish_stdout(argv[1], rc);
        }
    fprintf(stderr, "moesim: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
