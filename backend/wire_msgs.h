/* wire_msgs.h — the payloads of CONFIG and EXEC, encoded by the host and decoded by the
 * agent. Shared (libc only). */
#ifndef SBX_WIRE_MSGS_H
#define SBX_WIRE_MSGS_H

#include <stdint.h>

#include "wire.h"

enum sbx_wire_mount_kind {
    SBX_MOUNT_FD = 0,   /* a detached mount tree (open_tree) passed as fds[fd_index] */
    SBX_MOUNT_PATH = 1, /* a host path the agent binds itself (unprivileged callers, who
                           cannot open_tree, and whose identity the agent shares) */
    SBX_MOUNT_TMPFS = 2, /* a fresh tmpfs owned by the sandbox user (ephemeral workspace) */
};

enum sbx_wire_mount_flags {
    SBX_MOUNT_RO = 1u << 0,
};

struct sbx_wire_mount {
    uint32_t kind;
    uint32_t flags;
    uint32_t fd_index;
    char *src; /* SBX_MOUNT_PATH: host path */
    char *dst; /* absolute path inside the sandbox */
};

enum sbx_wire_config_flags {
    SBX_CFG_DETACHED = 1u << 0,  /* keep running when the main socket closes */
    SBX_CFG_RANGE_MAP = 1u << 1, /* 65536 ids are mapped (root mode); else only 0 */
};

#define SBX_WIRE_MAX_MOUNTS 64

/* The agent's uid and gid inside when a range is mapped (root callers): outside 0..65535,
 * which is all a command may ask for. */
#define SBX_AGENT_UID 65536u

struct sbx_wire_config {
    uint32_t flags;
    uint32_t sandbox_uid, sandbox_gid;
    char *hostname;
    char *root;      /* workspace mount point, e.g. /workspace */
    char *user_name; /* name of sandbox_uid in the generated /etc/passwd */
    uint32_t n_mounts; /* mounts[0] is the workspace, at `root` */
    struct sbx_wire_mount *mounts;
    uint32_t nproc;        /* RLIMIT_NPROC for commands */
    uint64_t tmpfs_bytes;  /* size= of /tmp, /dev/shm, an ephemeral workspace; 0: default */
    unsigned char *filter; /* seccomp BPF program (struct sock_filter[]) for commands */
    uint32_t filter_len;   /* bytes; 0: none */
};

enum sbx_wire_exec_flags {
    SBX_EXECF_STDIN = 1u << 0, /* fds[0] is stdin; otherwise stdin is /dev/null */
};

struct sbx_wire_exec {
    uint32_t flags;
    uint32_t uid, gid;
    char *cwd;
    char **argv;
    char **env;
};

int sbx__wire_config_encode(const struct sbx_wire_config *c, struct sbx_wbuf *b);
int sbx__wire_config_decode(const unsigned char *p, size_t len, struct sbx_wire_config *c);
void sbx__wire_config_clear(struct sbx_wire_config *c);

int sbx__wire_exec_encode(const struct sbx_wire_exec *x, struct sbx_wbuf *b);
int sbx__wire_exec_decode(const unsigned char *p, size_t len, struct sbx_wire_exec *x);
void sbx__wire_exec_clear(struct sbx_wire_exec *x);

#endif
