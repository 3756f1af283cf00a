/* archive_no_xar.c — linked into the programs that take libarchive statically.
 *
 * libarchive's table of writers (archive_write_set_format.o, pulled in by the pax writer sbx
 * uses) names every writer, and the xar one needs libxml2, whose static form would drag ICU
 * and libstdc++ into every `sbx run`. sbx never writes xar: this definition satisfies the
 * table so the linker leaves the xar writer, and libxml2, out.
 */
#include <archive.h>

int archive_write_set_format_xar(struct archive *a)
{
    archive_set_error(a, -1, "the xar format is not built into this program");
    return ARCHIVE_FATAL;
}
