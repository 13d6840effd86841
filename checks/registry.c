/*
 * registry.c - the list of checks compiled into policyd. A new check adds one line here.
 */
#include "checks/registry.h"

#include "checks/check.h"

#include <string.h>

extern const struct check_def relay_check;
extern const struct check_def rdns_check;
extern const struct check_def dnsbl_check;
extern const struct check_def recipient_check;
extern const struct check_def spf_check;
extern const struct check_def dkim_check; /* checks/dkim.c */

static const struct check_def *const registry_checks[] = {
    &relay_check, &rdns_check, &dnsbl_check, &recipient_check, &spf_check, &dkim_check,
};

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
