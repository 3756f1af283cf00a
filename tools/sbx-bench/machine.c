/* machine.c — what the numbers were measured on: CPUs online, kernel release, CPU model. */
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "bench.h"

/* The first "model name" of /proc/cpuinfo (x86; most arm64 kernels print none). */
static void read_cpu_model(char *out, size_t out_len)
{
    out[0] = '\0';
    FILE *f = fopen("/proc/cpuinfo", "re");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "model name", 10) != 0)
            continue;
        const char *v = strchr(line, ':');
        if (!v)
            continue;
        v += strspn(v + 1, " \t") + 1;
        snprintf(out, out_len, "%.*s", (int)strcspn(v, "\n"), v);
        break;
    }
    fclose(f);
}

void bench_machine_read(struct bench_machine *m)
{
    struct utsname u;
    m->nproc = sysconf(_SC_NPROCESSORS_ONLN);
    if (uname(&u) == 0)
        snprintf(m->kernel, sizeof(m->kernel), "%s", u.release);
    else
        m->kernel[0] = '\0';
    read_cpu_model(m->cpu_model, sizeof(m->cpu_model));
}
