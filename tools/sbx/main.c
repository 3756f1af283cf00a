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
               "sessions (sandboxes that stay up; SESSION is an id, an id prefix or a name):\n"
               "  create [options]                 start one and print its id\n"
               "  exec [options] SESSION -- CMD... run a command in it\n"
               "  ps [--json]                      list sessions and their status\n"
               "  stop SESSION                     save the workspace (with --snapshot-dir) and\n"
               "                                   shut the sandbox down\n"
               "  start SESSION                    resume a stopped session\n"
               "  rm [-f] SESSION...               remove sessions (-f: also running ones)\n"
               "  gc                               remove sessions whose sandbox is gone\n"
               "  ls [--json] SESSION [PATH]       list a workspace directory\n"
               "  cp SRC DST                       copy a file in or out (SESSION:PATH, -)\n"
               "  extract SESSION PATH < ARCHIVE   unpack a tar or zip into the workspace\n"
               "  snapshot SESSION > WS.tar        write the workspace as a tar\n"
               "  restore SESSION < WS.tar         replace the workspace with a tar\n"
               "  events tail FILE                 show a JSONL event log (--events)\n"
               "  shell [SESSION] [-- CMD]         an interactive shell on a new terminal\n"
               "  port SESSION [PORT]              host address of an exposed port (create -p)\n"
               "  doctor [--json]                  check this host and say what to change\n"
               "\n"
               "Sessions are kept in $SBX_STATE_DIR, else /run/sbx as root, else\n"
               "$XDG_RUNTIME_DIR/sbx.\n"
               "\n"
               "options:\n"
               "  -h, --help      show this help (sbx COMMAND --help for a command's options)\n"
               "  -V, --version   print the version\n");
}

/* cmd_events.c */

static const struct {
    const char *name;
    int (*fn)(int argc, char **argv);
} commands[] = {
    {"run", sbx_cmd_run},         {"seccomp", sbx_cmd_seccomp}, {"create", sbx_cmd_create},
    {"exec", sbx_cmd_exec},       {"ps", sbx_cmd_ps},           {"stop", sbx_cmd_stop},
    {"start", sbx_cmd_start},     {"rm", sbx_cmd_rm},           {"gc", sbx_cmd_gc},
    {"ls", sbx_cmd_ls},           {"cp", sbx_cmd_cp},           {"extract", sbx_cmd_extract},
    {"snapshot", sbx_cmd_snapshot}, {"restore", sbx_cmd_restore},
    {"events", sbx_cmd_events},
    {"shell", sbx_cmd_shell},
    {"doctor", sbx_cmd_doctor},
    {"port", sbx_cmd_port},
};

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
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(cmd, commands[i].name) == 0)
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "sbx: unknown command '%s' (see sbx --help)\n", cmd);
    return 2;
}
