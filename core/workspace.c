/* workspace.c — the host directory behind the sandbox's workspace. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core.h"
#include "error_internal.h"
#include "util.h"

int sbx__workspace_make_temp(uint32_t owner_uid, uint32_t owner_gid, char **out,
                             sbx_error **err)
{
    const char *tmp = getenv("TMPDIR");
    if (!tmp || tmp[0] != '/')
        tmp = "/tmp";
    char *path = NULL;
    if (asprintf(&path, "%s/sbx-ws-XXXXXX", tmp) < 0)
        return sbx_err(err, SBX_ENOMEM, 0, "start", "out of memory");
    if (!mkdtemp(path)) {
        int e = errno;
        sbx_err(err, SBX_EWORKSPACE_START, e, "start", "create a workspace in '%s'", tmp);
        sbx_err_ctx(err, "path", "%s", tmp);
        free(path);
        return SBX_EWORKSPACE_START;
    }
    /* The sandbox user must own its workspace; as root that is a mapped host uid. */
    if ((getuid() != owner_uid || getgid() != owner_gid) && chown(path, owner_uid, owner_gid) < 0) {
        int e = errno;
        rmdir(path);
        sbx_err(err, SBX_EWORKSPACE_START, e, "start", "give the workspace '%s' to uid %u", path,
                owner_uid);
        sbx_err_ctx(err, "path", "%s", path);
        free(path);
        return SBX_EWORKSPACE_START;
    }
    chmod(path, 0755);
    *out = path;
    return 0;
}

int sbx__workspace_check(const char *path, sbx_error **err)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        int e = errno;
        sbx_err(err, SBX_EWORKSPACE_START, e, "start", "workspace '%s' is not usable", path);
        sbx_err_ctx(err, "path", "%s", path);
        return SBX_EWORKSPACE_START;
    }
    if (!S_ISDIR(st.st_mode)) {
        sbx_err(err, SBX_EWORKSPACE_START, ENOTDIR, "start", "workspace '%s' is not a directory",
                path);
        sbx_err_ctx(err, "path", "%s", path);
        return SBX_EWORKSPACE_START;
    }
    return 0;
}

int sbx__abs_path_ok(const char *p, int allow_root)
{
    if (!p || p[0] != '/')
        return -EINVAL;
    if (!allow_root && p[1] == '\0')
        return -EINVAL;
    if (strlen(p) >= 4096)
        return -EINVAL;
    /* No "." or ".." components: the path must already be normal. */
    for (const char *c = p; *c;) {
        while (*c == '/')
            c++;
        const char *e = strchr(c, '/');
        size_t l = e ? (size_t)(e - c) : strlen(c);
        if ((l == 1 && c[0] == '.') || (l == 2 && c[0] == '.' && c[1] == '.'))
            return -EINVAL;
        c += l;
    }
    return 0;
}
