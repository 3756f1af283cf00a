/* idmap.c — user namespace id maps, written by the parent (user_namespaces(7)).
 *
 * As root: sandbox ids 0..65535 map to uid_base..uid_base+65535 on the host, a range no host
 * account uses, so even sandbox "root" is nobody on the host. setgroups stays allowed so the
 * agent can clear the supplementary groups inherited from the caller (otherwise a host gid
 * such as 0 would keep granting group access inside).
 * Unprivileged: only the caller's own uid/gid can be mapped, to the sandbox user; setgroups
 * must be denied first (the kernel requires it: CVE-2014-8989).
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

#include "ns.h"
#include <sbx/session.h>

void sbx__ns_ids(struct sbx_backend_ids *out)
{
    out->range_mapped = geteuid() == 0;
    out->sandbox_uid = SBX_SANDBOX_UID;
    out->sandbox_gid = SBX_SANDBOX_UID;
}

static int write_proc(pid_t pid, const char *file, const char *data, sbx_error **err)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return sbx_err(err, SBX_EBACKEND, errno, "start", "open %s", path);
    int r = sbx__write_full(fd, data, strlen(data));
    int e = errno;
    close(fd);
    if (r < 0)
        return sbx_err(err, e == EPERM ? SBX_EPERM : SBX_EBACKEND, e, "start",
                       "write '%.40s' to %s", data, path);
    return 0;
}

int sbx__ns_write_idmaps(pid_t pid, int range_mapped, uint32_t uid_base, sbx_error **err)
{
    char map[64];
    int r;
    if (range_mapped) {
        snprintf(map, sizeof(map), "0 %u 65536\n", uid_base);
        r = write_proc(pid, "uid_map", map, err);
        if (r == 0)
            r = write_proc(pid, "gid_map", map, err);
        return r;
    }
    r = write_proc(pid, "setgroups", "deny", err);
    if (r == 0) {
        snprintf(map, sizeof(map), "%u %u 1\n", SBX_SANDBOX_UID, (unsigned)geteuid());
        r = write_proc(pid, "uid_map", map, err);
    }
    if (r == 0) {
        snprintf(map, sizeof(map), "%u %u 1\n", SBX_SANDBOX_UID, (unsigned)getegid());
        r = write_proc(pid, "gid_map", map, err);
    }
    return r;
}
