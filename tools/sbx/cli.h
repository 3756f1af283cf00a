/* cli.h — shared pieces of the sbx command-line tool. */
#ifndef SBX_CLI_H
#define SBX_CLI_H

#include <stddef.h>
#include <stdint.h>

#include <sbx/sbx.h>

/* Exit statuses of `sbx run` besides the command's own (timeout(1)/env(1) conventions). */
#define SBX_EXIT_TIMEOUT        124
#define SBX_EXIT_SBX_FAILED     125
#define SBX_EXIT_NOT_EXECUTABLE 126
#define SBX_EXIT_NOT_FOUND      127

int sbx_cmd_run(int argc, char **argv);
int sbx_cmd_seccomp(int argc, char **argv);

/* cli_opts.c */
/* Parses a byte size with an optional K, M or G suffix (powers of 1024); -1 if malformed or
 * zero. */
int sbx_cli_parse_size(const char *s, uint64_t *out);
/* Parses a non-negative number of seconds ("1.5"); -1 if malformed. */
double sbx_cli_parse_seconds(const char *s);
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
