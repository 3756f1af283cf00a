/* error_names.c — names and default messages of the codes, from the one list in error.h. */
#include <sbx/error.h>

const char *sbx_code_name(int code)
{
    switch (code) {
    case SBX_OK:
        return "ok";
#define SBX__ERR_NAME(e, v, n, m)                                                              \
    case e:                                                                                    \
        return n;
        SBX_ERROR_MAP(SBX__ERR_NAME)
#undef SBX__ERR_NAME
    }
    return "unknown";
}

const char *sbx_strerror(int code)
{
    switch (code) {
    case SBX_OK:
        return "success";
#define SBX__ERR_MSG(e, v, n, m)                                                               \
    case e:                                                                                    \
        return m;
        SBX_ERROR_MAP(SBX__ERR_MSG)
#undef SBX__ERR_MSG
    }
    return "unknown error code";
}
