/* cli.h — shared pieces of the sbx command-line tool. */
#ifndef SBX_CLI_H
#define SBX_CLI_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <sbx/sbx.h>

/* Exit statuses of `sbx run` besides the command's own (timeout(1)/env(1) conventions). */
#define SBX_EXIT_TIMEOUT        124
#define SBX_EXIT_SBX_FAILED     125
#define SBX_EXIT_NOT_EXECUTABLE 126
#define SBX_EXIT_NOT_FOUND      127

int sbx_cmd_run(int argc, char **argv);

/* cli_tty.c: a command's output stream on its way to a terminal, control characters shown
 * instead of obeyed. begin returns the fd to give the library: fd itself when it is no
 * terminal or raw is set, else a pipe a relay thread reads; end (after the exec returned)
 * lets the relay finish. escape is the filter itself (exposed for tests). */
struct sbx_cli_tty {
    int fd, pipe_rd, pipe_wr, active;
    pthread_t thread;
};
int sbx_cli_tty_begin(struct sbx_cli_tty *t, int fd, int raw);
void sbx_cli_tty_end(struct sbx_cli_tty *t);
size_t sbx_cli_tty_escape(const unsigned char *in, size_t n, int at_eof, char *out,
                          size_t *used);
#define SBX_CLI_RAW_OUTPUT_HELP                                                                \
    "      --raw-output       pass control characters to a terminal as they are (by\n"      \
    "                         default, when stdout/stderr is a terminal, ESC and other\n"    \
    "                         control characters are shown as ^[ etc., not obeyed)\n"
int sbx_cmd_seccomp(int argc, char **argv);

/* cmd_session.c: sessions that outlive one command (state kept by session_store.c). */
int sbx_cmd_create(int argc, char **argv);
int sbx_cmd_exec(int argc, char **argv);
int sbx_cmd_ps(int argc, char **argv);
int sbx_cmd_stop(int argc, char **argv);
int sbx_cmd_start(int argc, char **argv);
int sbx_cmd_rm(int argc, char **argv);
int sbx_cmd_gc(int argc, char **argv);
/* cmd_shell.c: `sbx shell`, and the terminal pump behind it and `sbx exec --tty`: runs o on
 * a new PTY in s with this process's terminal attached (raw, restored on every way out).
 * Returns the exit status to exit with. */
int sbx_cmd_shell(int argc, char **argv);
int sbx_cmd_events(int argc, char **argv);
int sbx_cmd_doctor(int argc, char **argv); /* cmd_doctor.c: checks the host */
/* cmd_port.c: sbx port, and the forwarder of a session's exposed ports (started when the
 * session has some and none runs; 0 or -1 with a message). */
int sbx_cmd_port(int argc, char **argv);
struct sbx_store_rec;
int sbx_cli_ports_start(const struct sbx_store_rec *r);
/* Ends the session's forwarder, if one runs (its listeners close). */
void sbx_cli_ports_stop(const struct sbx_store_rec *r);

/* cmd_events.c: the instrumentation behind --events FILE / --events-stderr (NULL when neither
 * is given); prints the error and returns -1 when the file cannot be opened. */
int sbx_cli_events_make(const char *path, int to_stderr, sbx_events **out);
int sbx_cli_pty_run(sbx_session *s, const sbx_pty_opts *o);
/* cmd_files.c: files and archives of a session's workspace. */
int sbx_cmd_ls(int argc, char **argv);
int sbx_cmd_cp(int argc, char **argv);
int sbx_cmd_extract(int argc, char **argv);
int sbx_cmd_snapshot(int argc, char **argv);
int sbx_cmd_restore(int argc, char **argv);

/* Exit status of a usage error (bad or missing arguments), as getopt-style tools use. */
#define SBX_EXIT_USAGE 2
/* Prints "sbx: <message> (see sbx <cmd> --help)" and returns SBX_EXIT_USAGE. */
__attribute__((format(printf, 2, 3))) int sbx_cli_usage_error(const char *cmd,
                                                               const char *fmt, ...);

/* cli_opts.c */
/* Parses a byte size with an optional K, M or G suffix (powers of 1024); -1 if malformed or
 * zero. */
int sbx_cli_parse_size(const char *s, uint64_t *out);
/* Parses a non-negative number of seconds ("1.5"); -1 if malformed. */
double sbx_cli_parse_seconds(const char *s);
/* --net MODE: "none", "proxy" or "veth" (sbx/net.h); -1 for anything else. */
int sbx_cli_parse_net(const char *arg, int *mode);
const char *sbx_cli_net_name(int mode);
/* cli_sandbox_opts.c: the sandbox options sbx run and sbx create share. Each is checked and
 * recorded in `opts`, the JSON a session record keeps ("opts" of session.json), which
 * sbx_store_opts_apply() turns into sbx_session_opts. */
enum {
    SBX_CLI_O_HOSTNAME = 0x1000, SBX_CLI_O_SECCOMP, SBX_CLI_O_PTRACE, SBX_CLI_O_BEST_EFFORT,
    SBX_CLI_O_NPROC, SBX_CLI_O_PIDS, SBX_CLI_O_NOFILE, SBX_CLI_O_IO_WEIGHT, SBX_CLI_O_TMPFS,
    SBX_CLI_O_MEMORY, SBX_CLI_O_FSIZE, SBX_CLI_O_IO_READ, SBX_CLI_O_IO_WRITE, SBX_CLI_O_DISK,
    SBX_CLI_O_CPUS, SBX_CLI_O_CPUSET, SBX_CLI_O_CG_PARENT, SBX_CLI_O_NET, SBX_CLI_O_NET_RANGE,
    SBX_CLI_O_ALLOW, SBX_CLI_O_ADD_HOST
};
/* Their getopt_long entries, to put in a command's table. */
#define SBX_CLI_SANDBOX_LONGOPTS                                                               \
    {"hostname", required_argument, NULL, SBX_CLI_O_HOSTNAME},                                 \
        {"seccomp", required_argument, NULL, SBX_CLI_O_SECCOMP},                               \
        {"allow-ptrace", no_argument, NULL, SBX_CLI_O_PTRACE},                                 \
        {"limits-best-effort", no_argument, NULL, SBX_CLI_O_BEST_EFFORT},                      \
        {"nproc", required_argument, NULL, SBX_CLI_O_NPROC},                                   \
        {"pids", required_argument, NULL, SBX_CLI_O_PIDS},                                     \
        {"nofile", required_argument, NULL, SBX_CLI_O_NOFILE},                                 \
        {"io-weight", required_argument, NULL, SBX_CLI_O_IO_WEIGHT},                           \
        {"tmpfs-size", required_argument, NULL, SBX_CLI_O_TMPFS},                              \
        {"memory", required_argument, NULL, SBX_CLI_O_MEMORY},                                 \
        {"fsize", required_argument, NULL, SBX_CLI_O_FSIZE},                                   \
        {"io-read-bps", required_argument, NULL, SBX_CLI_O_IO_READ},                           \
        {"io-write-bps", required_argument, NULL, SBX_CLI_O_IO_WRITE},                         \
        {"disk", required_argument, NULL, SBX_CLI_O_DISK},                                     \
        {"cpus", required_argument, NULL, SBX_CLI_O_CPUS},                                     \
        {"cpuset", required_argument, NULL, SBX_CLI_O_CPUSET},                                 \
        {"cgroup-parent", required_argument, NULL, SBX_CLI_O_CG_PARENT},                       \
        {"net", required_argument, NULL, SBX_CLI_O_NET},                                       \
        {"net-range", required_argument, NULL, SBX_CLI_O_NET_RANGE},                           \
        {"allow", required_argument, NULL, SBX_CLI_O_ALLOW},                                   \
        {"add-host", required_argument, NULL, SBX_CLI_O_ADD_HOST}
/* Their help lines. */
#define SBX_CLI_SANDBOX_HELP                                                                   \
    "      --hostname NAME    hostname inside (default sbx)\n"                                 \
    "      --seccomp FILE     seccomp policy for commands (default: the built-in one, see\n"   \
    "                         sbx seccomp dump)\n"                                             \
    "      --allow-ptrace     let commands trace each other (debuggers)\n"                     \
    "      --nproc N          at most N processes of the sandbox user (default 4096)\n"        \
    "      --nofile N         open files per command (default 4096)\n"                         \
    "      --fsize SIZE       largest file a command may write, e.g. 1G\n"                     \
    "      --tmpfs-size SIZE  size of /tmp, /dev/shm and a tmpfs workspace, e.g. 512M\n"       \
    "      --memory SIZE      memory of the whole sandbox (cgroup), e.g. 512M\n"               \
    "      --pids N           processes and threads of the whole sandbox (cgroup)\n"           \
    "      --cpus N           CPU time, in CPUs, e.g. 1.5 (cgroup)\n"                          \
    "      --cpuset LIST      the CPUs the sandbox may run on, e.g. 0-1,3 (cgroup)\n"          \
    "      --io-weight N      relative block I/O weight, 1 to 10000 (others: 100; cgroup)\n"   \
    "      --io-read-bps R, --io-write-bps W  bytes per second to and from the\n"              \
    "                         workspace's disk, e.g. 10M (cgroup; a tmpfs workspace has no\n"  \
    "                         disk)\n"                                                         \
    "      --cgroup-parent P  make the sandbox's cgroups below P (a delegated cgroup, as a\n"  \
    "                         path from the hierarchy's root) instead of below sbx's own\n"    \
    "      --limits-best-effort  skip a limit this machine cannot enforce instead of\n"        \
    "                         failing\n"                                                       \
    "      --disk SIZE        (root) the workspace sbx makes holds at most SIZE, e.g. 1G:\n"   \
    "                         an ext4 image beside it (not with -w)\n"                         \
    "      --net MODE         none (default: only loopback), proxy (an HTTP/HTTPS proxy at\n"  \
    "                         127.0.0.1:3128 inside, HTTP_PROXY set, reaching only the\n"      \
    "                         --allow destinations) or veth (root: eth0 with a private\n"      \
    "                         address and a route via the host; see docs/network.md)\n"        \
    "      --net-range CIDR   with --net veth: the private range sessions take a /30 of\n"     \
    "      --allow HOST       with --net proxy: a destination the proxy lets through:\n"       \
    "                         example.com, *.example.com or an IP address (repeatable)\n"      \
    "      --add-host NAME=IP with --net proxy: resolve NAME to IP (repeatable)\n"
struct json_object;
/* 1 when c is one of them (recorded), 0 when it is not, -1 for a bad value (msg says why). */
int sbx_cli_sandbox_option(int c, const char *arg, struct json_object *opts, char *msg,
                           size_t cap);
/* The rules between them (--allow needs --net proxy, ...): 0, or -1 with msg. */
int sbx_cli_sandbox_check(struct json_object *opts, char *msg, size_t cap);
/* Splits "SRC[:DST]" into a bind; DST defaults to SRC. Returns 0 or -1 with a message. */
int sbx_cli_parse_bind(const char *arg, int readonly, sbx_bind *out, char *msg, size_t msg_len);
/* Reads a whole (small, <= 1 MiB) text file; NULL with a message on failure. */
char *sbx_cli_read_file(const char *path, char *msg, size_t msg_len);
/* Prints "sbx: <message>" for an error, with its code name. */
void sbx_cli_print_error(const char *what, const sbx_error *e);
/* Maps an exec error to the exit status `sbx run` returns. */
int sbx_cli_exit_for_error(const sbx_error *e);

/* cli_json.c: prints the result of `sbx run --json`. */
int sbx_cli_print_json(const sbx_exec_result *r, int timed_out, double duration_ms,
                       const sbx_error *e);

#endif
