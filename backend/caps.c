/* caps.c — the kernel's highest capability number. Shared by the host backend and the agent
 * (libc only). */
#include <fcntl.h>
#include <linux/capability.h>
#include <stdlib.h>
#include <unistd.h>

#include "wire.h"

int sbx__cap_last(void)
{
    char buf[16] = {0};
    int fd = open("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC);
    int cap = CAP_LAST_CAP; /* this build's headers: right unless the kernel is newer */
    if (fd >= 0) {
        if (read(fd, buf, sizeof(buf) - 1) > 0)
            cap = atoi(buf);
        close(fd);
    }
    return cap;
}
