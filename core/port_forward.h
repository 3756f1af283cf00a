/* port_forward.h — the host side of a session's exposed ports: listeners on 127.0.0.1 and a
 * thread that carries each accepted connection into the sandbox (through the backend's
 * connect) and moves the bytes both ways with splice(). */
#ifndef SBX_CORE_PORT_FORWARD_H
#define SBX_CORE_PORT_FORWARD_H

#include <stdint.h>

#include <sbx/error.h>

#include "backend_ops.h"

struct sbx_pfwd;

/* A forwarder for one running sandbox. ops and sb are borrowed: sb must outlive the forwarder
 * (free it before destroying or detaching the sandbox). */
int sbx__pfwd_new(const struct sbx_backend_ops *ops, struct sbx_sandbox *sb,
                  struct sbx_pfwd **out, sbx_error **err);
/* The host port of the listener for `port` inside, made on the first call. Thread-safe. */
int sbx__pfwd_listen(struct sbx_pfwd *f, unsigned port, unsigned *host_port, sbx_error **err);
/* Closes the listeners and every connection, stops the thread, frees. NULL is a no-op. */
void sbx__pfwd_free(struct sbx_pfwd *f);

#endif
