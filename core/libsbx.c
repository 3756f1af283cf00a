/* libsbx.c — library-wide entry points. */
#include <sbx/sbx.h>

#ifndef SBX_VERSION
#define SBX_VERSION "0.1.0"
#endif

const char *sbx_version(void)
{
    return SBX_VERSION;
}
