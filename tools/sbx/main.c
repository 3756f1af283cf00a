/* main.c — the sbx command-line tool: dispatches subcommands. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: sbx <command> [options]\n"
               "\n"
               "Run untrusted commands in an isolated Linux sandbox.\n"
               "\n"
               "commands:\n"
               "  run [options] -- CMD [ARGS...]   run one command in a fresh sandbox\n"
               "  seccomp dump [FILE]              print the effective seccomp policy (the\n"
               "                                   built-in one, or FILE checked)\n"
               "\n"
               "options:\n"
               "  -h, --help      show this help (sbx run --help for run's options)\n"
               "  -V, --version   print the version\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "-V") == 0 || strcmp(cmd, "--version") == 0) {
        printf("sbx %s\n", SBX_VERSION);
        return 0;
    }
    if (strcmp(cmd, "run") == 0)
        return sbx_cmd_run(argc - 1, argv + 1);
    if (strcmp(cmd, "seccomp") == 0)
        return sbx_cmd_seccomp(argc - 1, argv + 1);
    fprintf(stderr, "sbx: unknown command '%s' (see sbx --help)\n", cmd);
    return 2;
}
