/* agent_path.c — finds the sbx-agent binary: the configured path, $SBX_AGENT_PATH, the
 * directory of the running program (build trees, relocated installs), then the installed
 * libexec path. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ns.h"

/* access(X_OK) alone also passes a directory, which execveat would then refuse. */
static int usable(const char *p)
{
    struct stat st;
    if (stat(p, &st) < 0)
        return 0;
    if (!S_ISREG(st.st_mode)) {
        errno = EACCES;
        return 0;
    }
    return access(p, X_OK) == 0;
}

int sbx__agent_path(const char *configured, char **out, sbx_error **err)
{
    const char *env = getenv("SBX_AGENT_PATH");
    if (configured || (env && *env)) {
        const char *p = configured ? configured : env;
        if (!usable(p))
            return sbx_err(err, SBX_EINVAL, errno, "start",
                           "sbx-agent '%s' (from %s) is not an executable file", p,
                           configured ? "agent_path" : "SBX_AGENT_PATH");
        *out = strdup(p);
        return *out ? 0 : sbx_err(err, SBX_ENOMEM, 0, "start", "out of memory");
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash && (size_t)(slash - self) + sizeof("/sbx-agent") < sizeof(self)) {
            strcpy(slash, "/sbx-agent");
            if (usable(self)) {
                *out = strdup(self);
                return *out ? 0 : sbx_err(err, SBX_ENOMEM, 0, "start", "out of memory");
            }
        }
    }
    if (usable(SBX_AGENT_INSTALL_PATH)) {
        *out = strdup(SBX_AGENT_INSTALL_PATH);
        return *out ? 0 : sbx_err(err, SBX_ENOMEM, 0, "start", "out of memory");
    }
    return sbx_err(err, SBX_EINVAL, 0, "start",
                   "cannot find sbx-agent: not next to this program nor at " SBX_AGENT_INSTALL_PATH
                   "; set SBX_AGENT_PATH");
}
