/* netns_peer.h — a network peer for tests, in its own network namespace (root only).
 *
 * sbx_netns_peer_start() forks a child that unshares a new network namespace, links it to
 * the test's namespace with a veth pair (host side "sbxt<n>a" = 10.213.X.1/30, peer side
 * "sbxt<n>b" = 10.213.X.2/30, X picked among the 10.213.0.0/16 subnets no local interface
 * uses) and serves, on the peer address:
 *
 *   http_port  HTTP/1.x: "GET /body" answers the body given to start; any other path answers
 *              the request head it received (so tests can check what a proxy forwarded);
 *              one request per connection, then close.
 *   echo_port  TCP echo: every byte back, EOF answered by EOF.
 *
 * The child dies with the test process (PR_SET_PDEATHSIG), so a crashed test does not leave
 * it behind; sbx_netns_peer_stop() deletes the veth and kills and reaps the child. Both are
 * safe to call on a peer that failed to start or was already stopped. */
#ifndef SBX_TEST_NETNS_PEER_H
#define SBX_TEST_NETNS_PEER_H

#include <stddef.h>
#include <sys/types.h>

struct sbx_netns_peer {
    pid_t pid; /* the child holding the namespace; 0 when none */
    char host_if[16], peer_if[16];
    char host_ip[16], peer_ip[16];
    unsigned short http_port, echo_port;
};

/* 0, or -1 with the reason in why (not root, no `ip`, ...). */
int sbx_netns_peer_start(struct sbx_netns_peer *p, const char *body, char *why, size_t cap);
void sbx_netns_peer_stop(struct sbx_netns_peer *p);

/* Absolute path of iproute2's `ip`, or NULL. */
const char *sbx_netns_peer_ip_bin(void);

#endif
