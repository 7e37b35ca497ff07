/* cmd_plan.c: `moesim plan` (being written). */
#include <stdio.h>

#include "commands.h"

int cmd_plan(int argc, char **argv) {
    (void)argc, (void)argv;
    fputs("moesim plan: not yet implemented\n", stderr);
    return 2;
}
