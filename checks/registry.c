/*
 * registry.c - the checks compiled into policyd: the only list of them. A new check adds one
 * X(NAME) line to REGISTRY_CHECKS (see checks/check.h); its check_def is NAME_check.
 */
/* SPDX-License-Identifier: MIT */
#include "checks/registry.h"

#include "checks/check.h"

#include <string.h>

/* One line per check, in the order error messages list them ("known: relay, ..."). */
#define REGISTRY_CHECKS(X)                                                                         \
    X(relay)                                                                                       \
    X(rdns)                                                                                        \
    X(dnsbl)                                                                                       \
    X(recipient)                                                                                   \
    X(spf)                                                                                         \
    X(dkim)                                                                                        \
    X(ratelimit)                                                                                   \
    X(greylist)

#define REGISTRY_DECLARE(name) extern const struct check_def name##_check;
REGISTRY_CHECKS(REGISTRY_DECLARE)
#undef REGISTRY_DECLARE

#define REGISTRY_ENTRY(name) &name##_check,
static const struct check_def *const registry_checks[] = {REGISTRY_CHECKS(REGISTRY_ENTRY)};
#undef REGISTRY_ENTRY

#define REGISTRY_COUNT (sizeof(registry_checks) / sizeof(registry_checks[0]))

const struct check_def *registry_find(const char *name)
{
    for (size_t i = 0; i < REGISTRY_COUNT; i++)
        if (strcmp(registry_checks[i]->name, name) == 0)
            return registry_checks[i];
    return NULL;
}

const char *registry_names(void)
{
    static char names[256];
    if (!names[0]) {
        for (size_t i = 0; i < REGISTRY_COUNT; i++) {
            if (i)
                strncat(names, ", ", sizeof(names) - strlen(names) - 1);
            strncat(names, registry_checks[i]->name, sizeof(names) - strlen(names) - 1);
        }
    }
    return names;
}
