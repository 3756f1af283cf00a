/* net_veth.h — the "veth" network mode (root only): a veth pair between the host and a
 * sandbox's network namespace, made with libnl (net_veth.c). See docs/network-veth.md.
 *
 * Layout for one session, with the default range 10.231.0.0/16 and the /30 10.231.a.b/30:
 *
 *   host:    sbx<8 hex of the session id>h   10.231.a.(b+1)/32, and the route
 *            10.231.a.b/30 dev sbx...h scope link src 10.231.a.(b+1)
 *   sandbox: eth0                            10.231.a.(b+2)/30, up,
 *            default via 10.231.a.(b+1) dev eth0
 *
 * The host end's address is a /32 plus an explicit /30 route added with NLM_F_EXCL rather
 * than a /30 address (whose kernel-made prefix route would be appended silently): the route
 * is the session's claim on its /30, so two sessions that pick the same /30 at the same time
 * (another thread or another process) cannot both get it — the loser sees EEXIST, removes its
 * address and tries the next /30. The first /30 tried is derived from the session id, then
 * the next ones in order, skipping any that overlap an IPv4 address or a route (other than a
 * default route) already on the host.
 *
 * sbx adds no NAT, forwarding or firewall rule: the sandbox reaches the host end's address and
 * the host reaches the inside address; anything further is the administrator's choice.
 *
 * Threads: setup and teardown may run on any thread, concurrently with each other. Setup
 * makes one short-lived thread (all signals blocked) that joins the sandbox's network
 * namespace to open a netlink socket there; the calling thread's namespaces never change.
 * Setup leaves no fd open. */
#ifndef SBX_BACKEND_NET_VETH_H
#define SBX_BACKEND_NET_VETH_H

#include <sys/types.h>

#include <sbx/error.h>

#define SBX_VETH_DEFAULT_RANGE "10.231.0.0/16"
#define SBX_VETH_INSIDE_IF     "eth0"

struct sbx_veth {
    char host_if[16];     /* host end: "sbx" + the first 8 hex digits of the session id + "h"
                             (12 chars); the inside end is SBX_VETH_INSIDE_IF */
    char host_addr[16];   /* dotted IPv4: the /30's first host address (the sandbox's
                             gateway) */
    char inside_addr[16]; /* dotted IPv4: the /30's second host address (eth0's) */
    char subnet[16];      /* dotted IPv4: the /30's network address */
    unsigned prefix;      /* 30 */
    int host_ifindex;     /* in the host's network namespace */
};

/* Checks a range string without touching the kernel: an IPv4 CIDR "a.b.c.d/n" with no host
 * bits set, n in 8..30, inside 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16 or 100.64.0.0/10.
 * NULL is the default range (valid). Errors: SBX_EINVAL with a message naming the problem
 * and a valid example. For validating a session option early (sbx_session_new). */
int sbx__veth_check_range(const char *range, sbx_error **err);

/* Creates the pair in the host's network namespace with the inside end directly in the
 * network namespace of process `pid` (opened through a pidfd and /proc/<pid>/ns/net, then
 * checked to be still that process's) and named eth0; picks a free /30 in `range` (NULL:
 * SBX_VETH_DEFAULT_RANGE) as described above; gives both ends their addresses, brings both up
 * and adds the default route inside via the host end. Waits (at most 2 s) for both ends to
 * report operstate up, so traffic flows on return. `session_id` names the host interface
 * (needs 8 hex digits among its first characters, as a UUID has).
 *
 * On success *out is filled; the caller calls sbx__veth_teardown(out) when the session ends
 * (the kernel also removes the pair when the sandbox's namespace goes away). On failure
 * nothing is left on the host (the pair, if made, is deleted) and *out is zeroed.
 *
 * Errors (op "start", context "stage" = "veth_<step>", and "interface" once named):
 *   SBX_EINVAL   bad argument or range (sbx__veth_check_range), or `pid` is in the host's
 *                own network namespace
 *   SBX_EPERM    not root: "veth networking needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN)"
 *   SBX_ESTATE   process `pid` is gone
 *   SBX_ENOSYS   the kernel has no veth support (CONFIG_VETH; modprobe veth)
 *   SBX_ECONFIG  no free /30 left in the range (message says to pass a larger or another
 *                range), or the host interface name is already taken (a leaked pair: the
 *                message gives the `ip link del` that removes it)
 *   SBX_EBACKEND any other netlink failure, naming the step
 * Thread safety: any thread. */
int sbx__veth_setup(pid_t pid, const char *session_id, const char *range, struct sbx_veth *out,
                    sbx_error **err);

/* Deletes the host end (the kernel then removes the pair, and with it the addresses and
 * routes). Idempotent: a missing interface (already deleted, or gone with the sandbox's
 * namespace) is fine; an all-zero struct, or a name not starting with "sbx", is a no-op.
 * Never fails visibly. Thread safety: any thread. */
void sbx__veth_teardown(const struct sbx_veth *v);

#endif
