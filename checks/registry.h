/*
 * registry.h - the checks this build knows, by the name used in `checks = ...`.
 */
/* SPDX-License-Identifier: MIT */
#ifndef CHECKS_REGISTRY_H
#define CHECKS_REGISTRY_H

struct check_def;

/* registry_find - the check called name, or NULL. */
const struct check_def *registry_find(const char *name);

/* registry_names - "relay, ..." for error messages. Static storage. */
const char *registry_names(void);

#endif
