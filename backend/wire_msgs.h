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
    SBX_CFG_ZYGOTE = 1u << 2,    /* the filter is a built-in policy: commands may come from a
                                    zygote that loaded it once (agent/zygote.c) */
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
    char **accounts;       /* extra users "name:uid:gid" (NULL-terminated, may be empty) */
    char **groups;         /* extra groups "name:gid:member,member" */
    uint32_t listen_fd_index; /* fds[i]: a listening socket for more control connections
                                 (sessions other processes attach to); UINT32_MAX: none */
    uint32_t nofile;       /* RLIMIT_NOFILE for commands; 0: the agent's own */
    uint64_t fsize;        /* RLIMIT_FSIZE for commands, bytes; 0: unlimited */
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

/* File operations run in a worker that has taken the requesting user's identity; paths are
 * relative to `root` (the workspace mount point), "" naming the root itself. */
enum sbx_wire_file_op {
    SBX_FOP_LS = 1,
    SBX_FOP_RM = 2,
    SBX_FOP_MKDIR = 3,
    SBX_FOP_READ = 4,  /* file bytes -> data socket */
    SBX_FOP_WRITE = 5, /* data socket -> file, until the host shuts its end */
    SBX_FOP_WALK = 6,  /* the tree under path -> data socket as bulk records (wire_bulk.h) */
    SBX_FOP_PUT = 7,   /* bulk records from the data socket -> the tree under path */
    SBX_FOP_CHMOD = 8, /* mode of path (followed beneath the root) */
};

enum sbx_wire_file_flags {
    SBX_FOPF_RECURSIVE = 1u << 0, /* rm */
    SBX_FOPF_PARENTS = 1u << 1,   /* mkdir */
    SBX_FOPF_STAGE = 1u << 2,     /* put: unpack into a staging directory, then replace the
                                     tree's contents with it (skip paths kept) */
    SBX_FOPF_MODES = 1u << 3,     /* put: apply archived modes (already sanitised) and mtimes */
};

/* Which step a FILE_DONE error comes from, so the host can tell "not found" from "escapes the
 * root" from "the disk is full". */
enum sbx_wire_file_step {
    SBX_FSTEP_NONE = 0,
    SBX_FSTEP_RESOLVE = 1, /* resolving the path (EXDEV: it leads outside the root) */
    SBX_FSTEP_OPEN = 2,
    SBX_FSTEP_IO = 3,
    SBX_FSTEP_IDENTITY = 4,
    SBX_FSTEP_SYMLINK_PARENT = 5, /* put: a parent of the member is a symlink (detail) */
    SBX_FSTEP_STREAM = 6,  /* the data stream broke or was malformed */
};

struct sbx_wire_file {
    uint32_t op;
    uint32_t flags;
    uint32_t uid, gid;
    uint32_t mode; /* chmod */
    char *root;
    char *path;
    char **skip; /* walk / staged put: relative paths left alone */
};

struct sbx_wire_file_entry {
    char *name;
    uint32_t kind; /* enum sbx_wire_kind */
    uint32_t mode;
    uint64_t size;
    int64_t mtime;
    uint32_t uid, gid;
};

enum sbx_wire_kind { SBX_KIND_FILE = 0, SBX_KIND_DIR = 1, SBX_KIND_SYMLINK = 2, SBX_KIND_OTHER = 3 };

int sbx__wire_file_encode(const struct sbx_wire_file *f, struct sbx_wbuf *b);
int sbx__wire_file_decode(const unsigned char *p, size_t len, struct sbx_wire_file *f);
void sbx__wire_file_clear(struct sbx_wire_file *f);

int sbx__wire_config_encode(const struct sbx_wire_config *c, struct sbx_wbuf *b);
int sbx__wire_config_decode(const unsigned char *p, size_t len, struct sbx_wire_config *c);
void sbx__wire_config_clear(struct sbx_wire_config *c);

int sbx__wire_exec_encode(const struct sbx_wire_exec *x, struct sbx_wbuf *b);
int sbx__wire_exec_decode(const unsigned char *p, size_t len, struct sbx_wire_exec *x);
void sbx__wire_exec_clear(struct sbx_wire_exec *x);

#endif
