/*
 * version.h - the version of policyd, for `policyd -V`, the start-up log line and the metrics'
 * policyd_build_info. The build may define POLICYD_VERSION itself (the Debian package does, from
 * its changelog); this is the fallback.
 */
/* SPDX-License-Identifier: MIT */
#ifndef POLICYD_VERSION_H
#define POLICYD_VERSION_H

#ifndef POLICYD_VERSION
#define POLICYD_VERSION "unknown" /* the Makefile passes the version of debian/changelog */
#endif

#endif
