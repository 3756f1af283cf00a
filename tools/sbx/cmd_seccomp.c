/* cmd_seccomp.c — `sbx seccomp dump [--allow-ptrace] [FILE]`: checks a policy the way a
 * session would (parse, compile for this machine) and prints it normalised. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int sbx_cmd_seccomp(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "dump") != 0) {
        fprintf(stderr, "usage: sbx seccomp dump [--allow-ptrace] [FILE]\n");
        return 2;
    }
    int allow_ptrace = 0;
    const char *file = NULL;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--allow-ptrace") == 0)
            allow_ptrace = 1;
        else if (!file && argv[i][0] != '-')
            file = argv[i];
        else {
            fprintf(stderr, "sbx seccomp: unexpected argument '%s'\n", argv[i]);
            return 2;
        }
    }
    char msg[512];
    char *text = NULL;
    if (file && !(text = sbx_cli_read_file(file, msg, sizeof(msg)))) {
        fprintf(stderr, "sbx seccomp: %s\n", msg);
        return 1;
    }
    char *out = NULL;
    sbx_error *err = NULL;
    int r = sbx_seccomp_check(text, allow_ptrace, &out, &err);
    free(text);
    if (r < 0) {
        sbx_cli_print_error(file, err);
        sbx_error_free(err);
        return 1;
    }
    fputs(out, stdout);
    free(out);
    return 0;
}
