/*
 * dkim_keys.h - the DKIM signing keys of this server checked against DNS: does the record at
 * selector._domainkey.domain exist, is it not revoked, does it match the private key?
 *
 * The keys come from dkim_keys (selector:domain:/path/key.pem) and from the KeyTable of
 * OpenDKIM's configuration. The test itself is libopendkim's dkim_test_key(), whose DNS hooks
 * answer from a TXT result our DNS engine already holds: the caller fetches first (the daemon
 * asynchronously, the doctor by waiting), then tests; nothing here does network I/O, keeps
 * state or logs. The daemon's periodic check of the keys is the dkim check's (checks/dkim.c).
 */
/* SPDX-License-Identifier: MIT */
#ifndef POLICYD_DKIM_KEYS_H
#define POLICYD_DKIM_KEYS_H

#include <stddef.h>

struct dns_result;

/* One signing key. pem is the private key as read when the list was loaded (NULL: unreadable,
 * read_error says why); it is wiped when the list is freed. */
struct dkim_key {
    char *selector, *domain, *path;
    char *origin; /* where it was configured: "dkim_keys", "/etc/opendkim/KeyTable:3" */
    char *pem;
    size_t pemlen;
    char *read_error; /* "Permission denied", ... (NULL when pem is set) */
    int read_errno;
};

/* The configured keys, and what was wrong with the configuration itself. */
struct dkim_keys_list {
    struct dkim_key *keys;
    size_t nkeys;
    char **errors; /* "/etc/opendkim.conf: cannot read: ...": one sentence each */
    size_t nerrors;
};

enum dkim_keys_outcome {
    DKIM_KEYS_MATCH,       /* the record holds this key's public half */
    DKIM_KEYS_NO_RECORD,   /* NXDOMAIN or no TXT at the name */
    DKIM_KEYS_REVOKED,     /* p= is empty */
    DKIM_KEYS_MISMATCH,    /* a key, but another one */
    DKIM_KEYS_BAD_RECORD,  /* a TXT that is no usable DKIM key (syntax, several records) */
    DKIM_KEYS_DNS_TROUBLE, /* timeout, SERVFAIL: could not tell */
    DKIM_KEYS_UNREADABLE   /* the private key file cannot be read or is no private key */
};

struct dkim_keys_result {
    enum dkim_keys_outcome outcome;
    int bits;          /* length of the private key (0: unknown) */
    char detail[256];  /* what was seen: "NXDOMAIN", libopendkim's or OpenSSL's words */
    char record[2048]; /* the record as found (may be empty or shortened) */
};

/* dkim_keys_list_load - the keys of dkim_keys and of opendkim_config's KeyTable (either may
 * be NULL or ""), with each private key read now. Never NULL; dkim_keys_list_free() it. */
struct dkim_keys_list *dkim_keys_list_load(const char *dkim_keys, const char *opendkim_config);

/* dkim_keys_list_free - wipe the key texts and free. NULL ok. */
void dkim_keys_list_free(struct dkim_keys_list *list);

/* dkim_keys_name - "selector._domainkey.domain" into out. Returns out. */
char *dkim_keys_name(const struct dkim_key *key, char *out, size_t outlen);

/* dkim_keys_test - test key against txt, the answer to (TXT, its name) from dns_lookup() or
 * dns_peek() (NULL: no answer). Synchronous, no I/O. */
void dkim_keys_test(const struct dkim_key *key, const struct dns_result *txt,
                    struct dkim_keys_result *out);

/* dkim_keys_outcome_text - a short description of r for log lines and reports:
 * "DNS record does not match the private key". Static storage for the outcome words. */
const char *dkim_keys_outcome_text(enum dkim_keys_outcome outcome);

/* dkim_keys_fix - what the postmaster should do about r for key, into out. Returns out. */
char *dkim_keys_fix(const struct dkim_key *key, const struct dkim_keys_result *r, char *out,
                    size_t outlen);

#endif
