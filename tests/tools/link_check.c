/* link_check — a program linked against the shared libsbx only, as an embedder's would be: it
 * fails to link when libsbx.so leaves a dependency's symbols undefined, and at run time it
 * runs one command through the library. */
#include <stdio.h>
#include <string.h>

#include <sbx/sbx.h>

int main(void)
{
    const char *argv[] = {"echo linked", NULL};
    sbx_exec_opts xo = SBX_EXEC_OPTS_INIT;
    xo.argv = argv;
    sbx_session_opts so = SBX_SESSION_OPTS_INIT;
    so.flags = SBX_SESSION_EPHEMERAL_WORKSPACE;
    sbx_exec_result *r = NULL;
    sbx_error *err = NULL;
    if (sbx_run(&so, &xo, &r, &err) < 0) {
        fprintf(stderr, "link_check: %s\n", sbx_error_message(err));
        sbx_error_free(err);
        return 1;
    }
    int ok = r->exit_code == 0 && r->out && strcmp((const char *)r->out, "linked\n") == 0;
    sbx_exec_result_free(r);
    puts(ok ? "libsbx.so works" : "libsbx.so ran the command wrongly");
    return ok ? 0 : 1;
}
