/* main.c: `moesim <command> [options]`, git style. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

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
    fprintf(f, "usage: moesim <command> [options]   (moesim <command> --help for details)\n\n"
               "moesim replays Mixture-of-Experts routing traces against expert-cache policies.\n\n"
               "commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
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

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
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
