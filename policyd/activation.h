/*
 * activation.h - sockets passed by systemd (socket activation: LISTEN_FDS, sd_listen_fds(3)).
 *
 * The sockets are taken once, at start, before anything is bound. Each is matched by its
 * address to a configured endpoint (an entry of `listen`, or metrics_listen) and then used for
 * it instead of a socket of our own; a passed socket that matches no endpoint is served as a
 * policy socket all the same (the socket unit is the administrator's word). A passed socket is
 * never bound, given permissions or unlinked by us: systemd owns it and keeps it listening
 * while the daemon restarts, so no connection attempt is refused meanwhile.
 */
/* SPDX-License-Identifier: MIT */
#ifndef POLICYD_ACTIVATION_H
#define POLICYD_ACTIVATION_H

#include <stddef.h>

/* activation_take - take the sockets systemd passed to this process (none without LISTEN_FDS,
 * or when LISTEN_PID names another process) and clear LISTEN_* from the environment. Returns
 * how many, or -1 with a reason in err (a passed descriptor that is no listening stream
 * socket). Call once, before binding anything. */
int activation_take(char *err, size_t errlen);

/* activation_count - how many sockets were passed (claimed or not). */
size_t activation_count(void);

/* activation_claim - the passed socket listening on endpoint spec ("unix:/path",
 * "inet:ADDR:PORT"), now claimed (the caller owns the descriptor), or -1 when none is. */
int activation_claim(const char *spec);

/* activation_next - the next passed socket nobody claimed, now claimed, with its address as an
 * endpoint in name; -1 when none is left. */
int activation_next(char *name, size_t namelen);

#endif
