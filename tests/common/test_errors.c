/* Every error code has a stable name, a message, and an entry in docs/errors.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error_internal.h"
#include "harness.h"

static const int codes[] = {
#define C(e, v, n, m) e,
    SBX_ERROR_MAP(C)
#undef C
};

static char *read_docs(void)
{
    FILE *f = fopen(SBX_SOURCE_DIR "/docs/errors.md", "r");
    cr_assert_not_null(f, "docs/errors.md is missing");
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

Test(common_errors, every_code_has_a_name_message_and_doc_entry)
{
    const char *docs = read_docs();
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        const char *name = sbx_code_name(codes[i]);
        cr_expect_str_neq(name, "unknown", "code %d has no name", codes[i]);
        cr_expect_str_neq(sbx_strerror(codes[i]), "unknown error code");
        char needle[128];
        snprintf(needle, sizeof(needle), "`%s`", name);
        cr_expect(strstr(docs, needle) != NULL, "docs/errors.md has no entry for %s", name);
        snprintf(needle, sizeof(needle), "| %d |", codes[i]);
        cr_expect(strstr(docs, needle) != NULL, "docs/errors.md does not give %s's value %d",
                  name, codes[i]);
        for (size_t j = 0; j < i; j++)
            cr_expect_neq(codes[i], codes[j], "value %d used twice", codes[i]);
    }
    cr_expect_str_eq(sbx_code_name(12345), "unknown");
}

Test(common_errors, error_object_carries_code_errno_message_and_context)
{
    sbx_error *e = NULL;
    cr_expect_eq(sbx_err(&e, SBX_EIO, 2, "read", "open '%s'", "/x"), SBX_EIO);
    cr_assert_not_null(e);
    sbx_err_ctx(&e, "path", "%s", "/x");
    sbx_err_ctx(&e, "reason", "%d", 7);
    sbx_err_wrap(&e, "while reading");
    cr_expect_eq(sbx_error_code(e), SBX_EIO);
    cr_expect_eq(sbx_error_errno(e), 2);
    cr_expect_str_eq(sbx_error_op(e), "read");
    cr_expect_str_eq(sbx_error_message(e), "while reading: open '/x': No such file or directory");
    cr_expect_eq(sbx_error_context_count(e), 2);
    cr_expect_str_eq(sbx_error_context_key(e, 1), "reason");
    cr_expect_str_eq(sbx_error_context_get(e, "reason"), "7");
    cr_expect_null(sbx_error_context_get(e, "nope"));
    sbx_error_free(e);
    /* err may be NULL: the code still comes back. */
    cr_expect_eq(sbx_err(NULL, SBX_EINVAL, 0, "x", "y"), SBX_EINVAL);
    sbx_error_free(NULL);
}
