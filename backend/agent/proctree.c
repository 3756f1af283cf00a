/* proctree.c — killing everything one command started.
 *
 * The worker serving an exec is a child subreaper (PR_SET_CHILD_SUBREAPER), so every process
 * the command forks, even one that double-forks and calls setsid() to look like a daemon,
 * stays a descendant of the worker. Killing the tree is then: scan /proc for the worker's
 * live descendants, SIGKILL them all, reap, and repeat until none is left (a process caught
 * mid-fork leaves a child that the next round finds).
 */
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"

struct proc_ent {
    pid_t pid, ppid;
    char state;
};

static int read_stat(pid_t pid, struct proc_ent *e)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    /* "pid (comm) S ppid ...": comm may hold spaces and ')', so parse from the last ')'. */
    char *rp = strrchr(buf, ')');
    if (!rp || rp[1] != ' ')
        return -1;
    int ppid;
    char st;
    if (sscanf(rp + 2, "%c %d", &st, &ppid) != 2)
        return -1;
    e->pid = pid;
    e->ppid = ppid;
    e->state = st;
    return 0;
}

/* Fills *out with every process in the pid namespace; returns the count or -1. */
static ssize_t snapshot(struct proc_ent **out)
{
    DIR *d = opendir("/proc");
    if (!d)
        return -1;
    size_t n = 0, cap = 256;
    struct proc_ent *v = malloc(cap * sizeof(*v));
    struct dirent *de;
    while (v && (de = readdir(d))) {
        if (!isdigit((unsigned char)de->d_name[0]))
            continue;
        if (n == cap) {
            struct proc_ent *nv = realloc(v, cap * 2 * sizeof(*v));
            if (!nv) {
                free(v);
                v = NULL;
                break;
            }
            v = nv;
            cap *= 2;
        }
        if (read_stat((pid_t)atoi(de->d_name), &v[n]) == 0)
            n++;
    }
    closedir(d);
    *out = v;
    return v ? (ssize_t)n : -1;
}

/* Kills every live descendant of `self`; returns how many were signalled. */
static size_t kill_round(pid_t self)
{
    struct proc_ent *v = NULL;
    ssize_t n = snapshot(&v);
    if (n <= 0) {
        free(v);
        return 0;
    }
    char *mark = calloc((size_t)n, 1);
    if (!mark) {
        free(v);
        return 0;
    }
    /* Mark descendants: repeat until no new process joins the set (depth passes). */
    int changed = 1;
    while (changed) {
        changed = 0;
        for (ssize_t i = 0; i < n; i++) {
            if (mark[i])
                continue;
            int parent_in = (v[i].ppid == self);
            for (ssize_t j = 0; !parent_in && j < n; j++)
                parent_in = mark[j] && v[j].pid == v[i].ppid;
            if (parent_in) {
                mark[i] = 1;
                changed = 1;
            }
        }
    }
    size_t killed = 0;
    for (ssize_t i = 0; i < n; i++) {
        if (mark[i] && v[i].state != 'Z' && kill(v[i].pid, SIGKILL) == 0)
            killed++;
    }
    free(mark);
    free(v);
    return killed;
}

static void reap(pid_t main_pid, int *main_status, int *main_reaped)
{
    int st;
    pid_t p;
    while ((p = waitpid(-1, &st, WNOHANG | __WALL)) > 0) {
        if (p == main_pid) {
            *main_status = st;
            *main_reaped = 1;
        }
    }
}

void sbx_agent_kill_tree(pid_t main_pid, int *main_status, int *main_reaped)
{
    pid_t self = getpid();
    struct timespec pause = {0, 1000000}; /* 1 ms between rounds */
    for (int round = 0; round < 5000; round++) {
        size_t k = kill_round(self);
        reap(main_pid, main_status, main_reaped);
        if (k == 0)
            break;
        nanosleep(&pause, NULL);
    }
    reap(main_pid, main_status, main_reaped);
}
