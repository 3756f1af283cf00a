/* paths.c — lexical path rules of the session layer (spec SESSION.md §6, §9, MANIFEST.md §2).
 *
 * Everything here is string work: no syscall, no symlink resolution. The kernel-side checks
 * (openat2 RESOLVE_BENEATH, the parent-chain realpath) come after these and rely on them
 * having already refused what is wrong on its face, so each function is strict about its own
 * rule and never "repairs" an input into something the caller did not write.
 *
 * A "\" is a separator everywhere: a client on Windows sends "pkg\file.py" and means
 * "pkg/file.py". The same client can send "C:\tmp\x", which names a host path and is
 * therefore always "absolute", even though POSIX would read it as a relative name.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error_internal.h"
#include "paths.h"

static int is_sep(char c)
{
    return c == '/' || c == '\\';
}

/* A drive-absolute Windows path: a letter, ':', then a separator or the end ("C:" alone names
 * the drive's current directory, which is just as much outside the workspace). "C:foo" is a
 * legal POSIX name and is left alone. */
static int is_drive_path(const char *s)
{
    char c = s[0];
    int letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    return letter && s[1] == ':' && (s[2] == '\0' || is_sep(s[2]));
}

/* Copy of s with every "\" turned into "/": the form errors show as `rel`. */
static char *forward_slashes(const char *s)
{
    char *r = strdup(s);
    if (!r)
        return NULL;
    for (char *p = r; *p; p++) {
        if (*p == '\\')
            *p = '/';
    }
    return r;
}

static int is_dotdot(const char *c, size_t n)
{
    return n == 2 && c[0] == '.' && c[1] == '.';
}

static int is_skipped(const char *c, size_t n)
{
    return n == 0 || (n == 1 && c[0] == '.');
}

static int path_err(sbx_error **err, const char *rel, int absolute)
{
    int rc;
    if (absolute)
        rc = sbx_err(err, SBX_EINVALID_PATH, 0, "materialize",
                     "manifest path must be relative: %s", rel);
    else
        rc = sbx_err(err, SBX_EINVALID_PATH, 0, "materialize",
                     "manifest path must not escape root: %s", rel);
    sbx_err_ctx(err, "rel", "%s", rel);
    sbx_err_ctx(err, "reason", "%s", absolute ? "absolute" : "escape_root");
    return rc;
}

static int oom(sbx_error **err)
{
    return sbx_err(err, SBX_ENOMEM, 0, "materialize", "out of memory normalising a path");
}

char *sbx__path_clean_abs(const char *abs)
{
    size_t n = strlen(abs);
    char *r = malloc(n + 2);
    if (!r)
        return NULL;
    /* r holds "/a/b" with no trailing "/"; len == 0 stands for "/". A ".." drops the last
     * component, and at the top there is nothing to drop: "/.." is "/", as the kernel says. */
    size_t len = 0;
    const char *p = abs;
    while (*p) {
        while (is_sep(*p))
            p++;
        const char *c = p;
        while (*p && !is_sep(*p))
            p++;
        size_t cn = (size_t)(p - c);
        if (is_skipped(c, cn))
            continue;
        if (is_dotdot(c, cn)) {
            while (len > 0 && r[len - 1] != '/')
                len--;
            if (len > 0)
                len--;
            continue;
        }
        r[len++] = '/';
        memcpy(r + len, c, cn);
        len += cn;
    }
    if (len == 0)
        r[len++] = '/';
    r[len] = '\0';
    return r;
}

const char *sbx__path_below(const char *root, const char *abs)
{
    size_t rn = strlen(root);
    while (rn > 1 && root[rn - 1] == '/')
        rn--;
    if (rn == 1 && root[0] == '/')
        return abs[0] == '/' ? abs + 1 : NULL;
    if (strncmp(abs, root, rn) != 0)
        return NULL;
    if (abs[rn] == '\0')
        return abs + rn;
    if (abs[rn] == '/')
        return abs + rn + 1;
    /* "/workspace2" shares the prefix of "/workspace" but is a sibling. */
    return NULL;
}

int sbx__path_normalize(const char *root, const char *path, char **out, sbx_error **err)
{
    if (!root || !path || !out)
        return sbx_err(err, SBX_EINVAL, 0, "materialize",
                       "path normalisation needs root, path and out");
    *out = NULL;
    if (root[0] != '/')
        return sbx_err(err, SBX_EINVAL, 0, "materialize",
                       "sandbox workspace root must be absolute");
    char *given = forward_slashes(path);
    char *root_c = sbx__path_clean_abs(root);
    char *joined = NULL;
    char *cand = NULL;
    int rc = 0;
    if (!given || !root_c) {
        rc = oom(err);
        goto out;
    }
    int absolute = given[0] == '/';
    if (is_drive_path(given)) {
        rc = path_err(err, given, 1);
        goto out;
    }
    if (absolute) {
        cand = sbx__path_clean_abs(given);
    } else {
        if (asprintf(&joined, "%s/%s", root_c, given) < 0)
            joined = NULL;
        if (joined)
            cand = sbx__path_clean_abs(joined);
    }
    if (!cand) {
        rc = oom(err);
        goto out;
    }
    /* Only after cleaning: "pkg/../secret.txt" is inside, "/workspace/../etc" is not. */
    if (!sbx__path_below(root_c, cand)) {
        rc = path_err(err, given, absolute);
        goto out;
    }
    *out = cand;
    cand = NULL;
out:
    free(given);
    free(root_c);
    free(joined);
    free(cand);
    return rc;
}

int sbx__path_rel_strict(const char *rel, char **out, sbx_error **err)
{
    if (!rel || !out)
        return sbx_err(err, SBX_EINVAL, 0, "materialize", "relative path check needs rel and out");
    *out = NULL;
    char *given = forward_slashes(rel);
    if (!given)
        return oom(err);
    int rc = 0;
    if (is_drive_path(given) || given[0] == '/') {
        rc = path_err(err, given, 1);
        goto out;
    }
    /* Every ".." is refused, even "a/../b" which stays inside: a manifest key names where an
     * entry lives, and two spellings of one place would make keys ambiguous. */
    char *r = malloc(strlen(given) + 1);
    if (!r) {
        rc = oom(err);
        goto out;
    }
    size_t len = 0;
    const char *p = given;
    while (*p) {
        while (*p == '/')
            p++;
        const char *c = p;
        while (*p && *p != '/')
            p++;
        size_t cn = (size_t)(p - c);
        if (is_dotdot(c, cn)) {
            free(r);
            rc = path_err(err, given, 0);
            goto out;
        }
        if (is_skipped(c, cn))
            continue;
        if (len > 0)
            r[len++] = '/';
        memcpy(r + len, c, cn);
        len += cn;
    }
    r[len] = '\0';
    *out = r;
out:
    free(given);
    return rc;
}

int sbx__path_skip_check(const char *rel, char **out, sbx_error **err)
{
    if (!out)
        return sbx_err(err, SBX_EINVAL, 0, "materialize", "skip path check needs out");
    *out = NULL;
    char *r = NULL;
    int rc = sbx__path_rel_strict(rel, &r, err);
    if (rc < 0)
        return rc;
    /* The root itself as a skip path would leave persist nothing to archive. */
    if (!r || r[0] == '\0') {
        free(r);
        return sbx_err(err, SBX_EINVAL, 0, "persist_workspace",
                       "Persist workspace skip paths must target a concrete relative path.");
    }
    *out = r;
    return 0;
}

int sbx__path_within(const char *path, const char *prefix)
{
    size_t n = strlen(prefix);
    if (n == 0)
        return 1;
    return strncmp(path, prefix, n) == 0 && (path[n] == '\0' || path[n] == '/');
}
