/* exec_result.c — the exec result object. */
#include <stdlib.h>

#include "core.h"

void sbx_exec_result_free(sbx_exec_result *r)
{
    if (!r)
        return;
    free(r->out);
    free(r->err);
    free(r);
}
