/* escape_py.h — the python helpers the escape tests' programs start with (run them with
 * sbx_test_py / sbx_test_expect_py, harness.h, passing one of these as the prelude).
 *
 * ESCAPE_PY_SYSCALLS: sc(nr, args...) makes a raw system call and returns (result, errno);
 * T(label, nr, args...) makes it and prints "label=ok" or "label=<errno name>". Integers go
 * as longs, so an argument keeps its high bits.
 *
 * ESCAPE_PY_ATTEMPT: attempt(label, fn, allowed) calls fn and prints "label=SUCCEEDED",
 * "label=refused" when it raised an OSError whose errno is in `allowed` (DENIED: the
 * errnos of a refusal), or "label=<errno name>" otherwise. */
#ifndef SBX_ESCAPE_PY_H
#define SBX_ESCAPE_PY_H

#define ESCAPE_PY_SYSCALLS                                                                     \
    "import ctypes as C, errno, os, struct, sys, traceback\n"                                  \
    "L = C.CDLL(None, use_errno=True)\n"                                                       \
    "L.syscall.restype = C.c_long\n"                                                           \
    "def sc(nr, *a):\n"                                                                        \
    "    C.set_errno(0)\n"                                                                     \
    "    r = L.syscall(C.c_long(nr), *[C.c_long(x) if isinstance(x, int) else x for x in a])\n" \
    "    return r, C.get_errno()\n"                                                            \
    "def en(r, e):\n"                                                                          \
    "    return 'ok' if r >= 0 else errno.errorcode.get(e, str(e))\n"                          \
    "def say(label, r, e):\n"                                                                  \
    "    print(label + '=' + en(r, e), flush=True)\n"                                          \
    "def T(label, nr, *a):\n"                                                                  \
    "    r, e = sc(nr, *a)\n"                                                                  \
    "    say(label, r, e)\n"                                                                   \
    "    return r\n"

#define ESCAPE_PY_ATTEMPT                                                                      \
    "import ctypes as C, errno, os, socket, struct, subprocess, sys, time\n"                   \
    "def en(e):\n"                                                                             \
    "    return errno.errorcode.get(e, str(e))\n"                                              \
    "def attempt(label, fn, allowed):\n"                                                       \
    "    try:\n"                                                                               \
    "        fn()\n"                                                                           \
    "        print(label + '=SUCCEEDED', flush=True)\n"                                        \
    "    except OSError as e:\n"                                                               \
    "        print(label + '=' + ('refused' if e.errno in allowed else en(e.errno)),\n"        \
    "              flush=True)\n"                                                              \
    "DENIED = (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOENT)\n"

#endif
