/* workspace.c — the host directory behind the sandbox's workspace. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core.h"
#include "error_internal.h"
#include "util.h"

/* A temporary workspace is TMPDIR/sbx-ws-XXXXXX/workspace: the outer directory is the
 * caller's, mode 0700, so no other host user can look into the sandbox's files; the inner one
 * is the sandbox user's, mode 0755, as a home directory would be. */
int sbx__workspace_make_temp(uint32_t owner_uid, uint32_t owner_gid, char **dir_out,
                             char **ws_out, sbx_error **err)
{
    const char *tmp = getenv("TMPDIR");
    if (!tmp || tmp[0] != '/')
        tmp = "/tmp";
    char *dir = NULL, *ws = NULL;
    if (asprintf(&dir, "%s/sbx-ws-XXXXXX", tmp) < 0)
        return sbx_err(err, SBX_ENOMEM, 0, "start", "out of memory");
    if (!mkdtemp(dir)) {
        int e = errno;
        sbx_err(err, SBX_EWORKSPACE_START, e, "start", "create a workspace in '%s'", tmp);
        sbx_err_ctx(err, "path", "%s", tmp);
        free(dir);
        return SBX_EWORKSPACE_START;
    }
    if (asprintf(&ws, "%s/workspace", dir) < 0) {
        rmdir(dir);
        free(dir);
        return sbx_err(err, SBX_ENOMEM, 0, "start", "out of memory");
    }
    /* The sandbox user must own its workspace; as root that is a mapped host uid. */
    if (mkdir(ws, 0755) < 0 ||
        ((getuid() != owner_uid || getgid() != owner_gid) && chown(ws, owner_uid, owner_gid) < 0)) {
        int e = errno;
        sbx_err(err, SBX_EWORKSPACE_START, e, "start", "prepare the workspace '%s' for uid %u", ws,
                owner_uid);
        sbx_err_ctx(err, "path", "%s", ws);
        rmdir(ws);
        rmdir(dir);
        free(ws);
        free(dir);
        return SBX_EWORKSPACE_START;
    }
    *dir_out = dir;
    *ws_out = ws;
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
