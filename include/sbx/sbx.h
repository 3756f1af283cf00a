/* sbx/sbx.h — the whole public API of libsbx. */
#ifndef SBX_SBX_H
#define SBX_SBX_H

#include "archive.h"
#include "error.h"
#include "events.h"
#include "exec.h"
#include "files.h"
#include "net.h"
#include "pty.h"
#include "seccomp.h"
#include "session.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Library version string, e.g. "0.1.0". Thread safety: any thread. */
SBX_API const char *sbx_version(void);

#ifdef __cplusplus
}
#endif
#endif
