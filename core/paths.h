/* paths.h — lexical path rules of the session layer (pure: no I/O, no kernel).
 *
 * Three validators with deliberately different rules (spec MANIFEST.md §2, SESSION.md §6, §9):
 *   - sbx__path_normalize: runtime file-op paths; ".." allowed while the result stays under
 *     the root.
 *   - sbx__path_rel_strict: manifest entry keys and skip paths; any ".." component rejected.
 *   - sbx__path_skip_check: persist skip paths (strict rules + "" / "." rejected).
 * Every function turns "\" into "/" first, and rejects a Windows drive path ("C:/x", "C:\x")
 * with reason "absolute". Errors are SBX_EINVALID_PATH with context rel (as given, with "/"),
 * reason ("absolute" | "escape_root"), op "materialize".
 */
#ifndef SBX_CORE_PATHS_H
#define SBX_CORE_PATHS_H

#include <sbx/error.h>

/* Lexical normalisation of an absolute path: collapses ".", "..", repeated "/". The result
 * is malloc'd, absolute, without a trailing "/" (except "/" itself). ".." above "/" stays at
 * "/". Returns NULL on allocation failure. */
char *sbx__path_clean_abs(const char *abs);

/* Normalises a file-op path against the absolute root (SESSION.md §6.2; no grants yet):
 * relative input -> root/input cleaned, must be root or below (else escape_root);
 * absolute input -> cleaned, must be root or below (else absolute). *out is malloc'd and
 * absolute. */
int sbx__path_normalize(const char *root, const char *path, char **out, sbx_error **err);

/* The part of an absolute normalised path below root: "" for the root itself, else "a/b".
 * Returns a pointer into `abs` (no allocation), or NULL when abs is not under root. */
const char *sbx__path_below(const char *root, const char *abs);

/* Strict relative path (manifest keys, skip paths): "\" -> "/", drive -> absolute,
 * absolute -> absolute, any ".." component -> escape_root. Drops "." and empty components.
 * *out is malloc'd ("" when nothing remains). */
int sbx__path_rel_strict(const char *rel, char **out, sbx_error **err);

/* Persist skip path (SESSION.md §9 steps 1-3): sbx__path_rel_strict, then "" or "." (nothing
 * left after normalisation) -> SBX_EINVAL "Persist workspace skip paths must target a
 * concrete relative path." *out is malloc'd. The mount-overlap check is the caller's. */
int sbx__path_skip_check(const char *rel, char **out, sbx_error **err);

/* True when `path` equals `prefix` or lies below it (both relative and normalised; "" is the
 * root, which contains everything). */
int sbx__path_within(const char *path, const char *prefix);

#endif
