/* commands.h: prototypes of every subcommand listed in commands.def. */
#ifndef MOE_COMMANDS_H
#define MOE_COMMANDS_H

#define COMMAND(name, fn, summary) int fn(int argc, char **argv);
#include "commands.def"
#undef COMMAND

/* `moesim trace stats`, dispatched by cmd_trace. */
int cmd_trace_stats(int argc, char **argv);

#endif
