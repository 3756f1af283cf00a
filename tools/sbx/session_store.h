/* session_store.h — where the session CLI keeps sessions that outlive one command.
 *
 * The state directory ($SBX_STATE_DIR, else /run/sbx as root, else $XDG_RUNTIME_DIR/sbx; 0700)
 * holds one 0700 directory per session, named by its id:
 *
 *   session.json  the record: id, name, agent pid (and its start time, so a reused pid is not
 *                 taken for the agent), control socket, created time, status, snapshot dir,
 *                 workspace and whether sbx owns it, and the create options a later start
 *                 or attach needs again
 *   state.json    sbx_session_state_json() of the session, for resuming and attaching
 *   ctl.sock      the control socket (sbx_session_opts.control_socket)
 *   lock          flock()ed: exclusive by state-changing commands (stop, start, rm, gc),
 *                 shared by the others while they look the session up and attach, so a
 *                 session is never removed under a command that is setting up
 *
 * Files are replaced atomically (temporary file + rename), so a reader sees the old record or
 * the new one, never half of one. Every function here that fails prints one line
 * "sbx: <message>" on stderr itself and returns -1; callers exit with 125.
 */
#ifndef SBX_CLI_SESSION_STORE_H
#define SBX_CLI_SESSION_STORE_H

#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include <json-c/json.h>
#include <sbx/sbx.h>

/* A control socket path is <statedir>/<36-char id>/ctl.sock and must fit sockaddr_un's
 * 108-byte sun_path (NUL included). */
#define SBX_STORE_MAX_DIR_LEN (108 - 1 - (1 + 36 + 9))

enum sbx_store_status {
    SBX_STORE_RUNNING, /* the agent is alive and its control socket answers */
    SBX_STORE_STOPPED, /* stopped with sbx stop */
    SBX_STORE_GONE,    /* recorded running, but the sandbox is gone */
};

struct sbx_store_rec {
    char id[37];
    char *name;          /* NULL: none */
    pid_t agent_pid;     /* 0 when stopped */
    unsigned long long agent_start; /* /proc/<pid>/stat starttime of the agent */
    int64_t created;     /* seconds since the epoch */
    int stopped;         /* recorded status: 1 "stopped", 0 "running" */
    char *snapshot_dir;  /* NULL: none */
    char *workspace;     /* host path */
    int workspace_owned; /* sbx created it and removes it at rm */
    json_object *opts;   /* create options: hostname, binds, env, nproc, tmpfs_bytes,
                            seccomp_policy, allow_ptrace, limits, net, net_allow, net_hosts
                            (owned) */
    char *dir;           /* <statedir>/<id> */
    char *ctl;           /* <dir>/ctl.sock */
};

/* Prints "sbx: <fmt...>" and returns -1. */
__attribute__((format(printf, 1, 2))) int sbx_store_fail(const char *fmt, ...);

/* The state directory (malloc'd). create != 0 makes it (0700) when missing; otherwise a
 * missing one gives *out = NULL and 0 (no sessions). */
int sbx_store_dir(int create, char **out);

/* Checks a session name: [A-Za-z0-9][A-Za-z0-9_.-]{0,63}. */
int sbx_store_name_ok(const char *name);

/* Allocates a record for id under statedir (dir and ctl set); NULL if out of memory or the
 * paths do not fit (message printed). */
struct sbx_store_rec *sbx_store_rec_new(const char *statedir, const char *id);
void sbx_store_rec_free(struct sbx_store_rec *r);

/* Every session in statedir, sorted by creation time. Unreadable records are skipped. */
int sbx_store_list(const char *statedir, struct sbx_store_rec ***out, size_t *n);
void sbx_store_list_free(struct sbx_store_rec **v, size_t n);

/* Finds a session by full id, name, or a unique id prefix of at least 4 characters, and
 * locks it (shared or exclusive); the record is read again under the lock, so a session
 * removed meanwhile is reported missing. *lock_fd is released with sbx_store_unlock(). */
int sbx_store_open(const char *key, int exclusive, struct sbx_store_rec **out, int *lock_fd);
void sbx_store_unlock(int lock_fd);

/* Locks a session directory; -1 with a message when it is gone or stays busy. */
int sbx_store_lock(const struct sbx_store_rec *r, int exclusive);
/* Makes a new session's directory (0700) and lock file; returns the lock, held
 * exclusively. */
int sbx_store_make_dir(const struct sbx_store_rec *r);

/* The record as it is on disk now (NULL when removed meanwhile). */
struct sbx_store_rec *sbx_store_reload(const struct sbx_store_rec *r);

/* Writes session.json / state.json atomically. */
int sbx_store_save(const struct sbx_store_rec *r);
int sbx_store_save_state(const struct sbx_store_rec *r, const char *state_json);
/* state.json's text (malloc'd). */
char *sbx_store_load_state(const struct sbx_store_rec *r);

/* Live status (checks the agent and its socket). */
enum sbx_store_status sbx_store_status(const struct sbx_store_rec *r);
const char *sbx_store_status_name(enum sbx_store_status st);
/* The start time of a live process (0 when gone or a zombie). */
unsigned long long sbx_store_proc_start(pid_t pid);
/* The recorded agent is alive (same pid and start time: a reused pid is not it). Says
 * nothing about a stopped record, whose agent_pid is 0. */
int sbx_store_agent_alive(const struct sbx_store_rec *r);

/* The options to create, resume or attach the session with: `so` borrows from r and from
 * the arrays in `o`, freed with sbx_store_opts_free(). state_json and control_socket are
 * the caller's to set. */
struct sbx_store_opts {
    sbx_session_opts so;
    sbx_bind *binds;
    const char **env;
    const char **allow, **hosts; /* net_allow, net_hosts */
};
int sbx_store_opts_from_rec(const struct sbx_store_rec *r, struct sbx_store_opts *o);
/* Sets the fields of o->so that a record's opts hold (cli_sandbox_opts.c writes them), and
 * the binds and environment when opts lists them, leaving the others as they are. o's own
 * arrays start NULL; free with sbx_store_opts_free(). -1 with a message naming `label`. */
int sbx_store_opts_apply(json_object *opts, const char *label, struct sbx_store_opts *o);
void sbx_store_opts_free(struct sbx_store_opts *o);

/* Connects to the running sandbox of r: *out is then an attached session that
 * sbx_session_free() disconnects from, leaving the sandbox running. quiet: print nothing
 * on failure. */
int sbx_store_attach(const struct sbx_store_rec *r, int quiet, sbx_session **out);

/* Removes the workspace when sbx owns it (its sbx-ws-XXXXXX parent directory). Never a
 * directory the user gave with -w. */
int sbx_store_remove_owned_workspace(const char *workspace, int owned);
/* Removes the session's state directory. */
int sbx_store_remove(const struct sbx_store_rec *r);

/* Whole-directory lock of the state directory (create holds it while checking that the name
 * is free and until the record exists). */
int sbx_store_lock_dir(const char *statedir);

/* Short human age: "42s", "5m", "3h", "2d". */
void sbx_store_age(int64_t created, char *buf, size_t len);

#endif
