/*
 * doctor_dkim.c - the doctor's DKIM section: each signing key (dkim_keys, OpenDKIM's KeyTable)
 * against its record at selector._domainkey.domain, with libopendkim's key test.
 *
 * The record is fetched with doctor_resolve() (the doctor may wait), then tested by
 * dkim_keys_test(), whose libopendkim DNS hooks answer from that same result: the doctor and
 * the daemon see the same DNS. One finding per key, plus one per configuration problem.
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/doctor/doctor_section.h"

#include "policyd/config.h"
#include "policyd/mail/dkim_keys.h"
#include "policyd/dns/dns.h"

#include <errno.h>
#include <stdio.h>

/* doctor_dkim_report - the finding for one tested key. */
static void doctor_dkim_report(struct doctor *d, const struct dkim_key *key,
                               const struct dkim_keys_result *r)
{
    char name[300], observed[1024], why[1024], fix[1024];
    enum doctor_status status = DOCTOR_FAIL;
    dkim_keys_name(key, name, sizeof(name));
    dkim_keys_fix(key, r, fix, sizeof(fix));
    why[0] = '\0';
    switch (r->outcome) {
    case DKIM_KEYS_MATCH:
        snprintf(observed, sizeof(observed), "record matches the %d-bit key %s%s", r->bits,
                 key->path, r->bits < 2048 ? " (2048 bits recommended)" : "");
        if (r->bits < 1024) {
            status = DOCTOR_WARN;
            snprintf(why, sizeof(why),
                     "receivers must not accept signatures made with RSA keys under 1024 bits "
                     "(RFC 8301): mail signed with it fails DKIM at most of them");
        } else if (r->bits < 2048) {
            status = DOCTOR_OK;
            snprintf(why, sizeof(why),
                     "%d bits still pass, but 2048 bits is the recommended length (RFC 8301)",
                     r->bits);
        } else {
            status = DOCTOR_OK;
        }
        break;
    case DKIM_KEYS_NO_RECORD:
        snprintf(observed, sizeof(observed), "no record (%s)", r->detail);
        snprintf(why, sizeof(why),
                 "receivers find no public key for s=%s d=%s: every message signed with %s fails "
                 "DKIM, and DMARC fails too unless SPF aligns",
                 key->selector, key->domain, key->path);
        break;
    case DKIM_KEYS_REVOKED:
        snprintf(observed, sizeof(observed), "revoked (empty p=)");
        snprintf(why, sizeof(why),
                 "an empty p= tells receivers the key was withdrawn: signatures made with %s "
                 "fail DKIM",
                 key->path);
        break;
    case DKIM_KEYS_MISMATCH:
        snprintf(observed, sizeof(observed), "record does not match the private key %s", key->path);
        snprintf(why, sizeof(why),
                 "the published key is another key's: receivers cannot verify signatures made "
                 "with %s, so signed mail fails DKIM",
                 key->path);
        break;
    case DKIM_KEYS_BAD_RECORD:
        snprintf(observed, sizeof(observed), "record is not a usable DKIM key (%s)", r->detail);
        snprintf(why, sizeof(why),
                 "receivers cannot read a public key from it: signed mail fails DKIM");
        break;
    case DKIM_KEYS_DNS_TROUBLE:
        status = DOCTOR_ERROR;
        snprintf(observed, sizeof(observed), "DNS lookup failed (%s)", r->detail);
        snprintf(why, sizeof(why),
                 "the record could not be checked; receivers that meet the same failure treat "
                 "signatures as temporarily unverifiable");
        break;
    case DKIM_KEYS_UNREADABLE:
        status = key->read_errno == EACCES ? DOCTOR_ERROR : DOCTOR_FAIL;
        snprintf(observed, sizeof(observed), "private key cannot be used (%s)", r->detail);
        snprintf(why, sizeof(why), "%s",
                 key->read_errno == EACCES
                     ? "the key could not be compared with its record"
                     : "the signer cannot sign with it either, or signs with something else");
        break;
    }
    doctor_report_add(d->report, status, "dkim", name, observed, why, fix);
}

void doctor_dkim(struct doctor *d)
{
    struct dkim_keys_list *list = dkim_keys_list_load(d->cfg->dkim_keys, d->cfg->opendkim_config);
    for (size_t i = 0; i < list->nerrors; i++)
        doctor_report_add(
            d->report, DOCTOR_ERROR, "dkim", "(configuration)", list->errors[i],
            "these keys could not be checked",
            "correct the entry, or list the keys in dkim_keys = selector:domain:/path");
    if (!list->nkeys && !list->nerrors)
        doctor_report_add(d->report, DOCTOR_WARN, "dkim", "(none)",
                          "no DKIM signing key configured",
                          "unsigned mail passes DMARC only through SPF, which forwarding breaks; "
                          "large receivers require DKIM from bulk senders",
                          "set dkim_keys = selector:domain:/path/to/key.pem, or opendkim_config = "
                          "/etc/opendkim.conf to check OpenDKIM's KeyTable");
    for (size_t i = 0; i < list->nkeys; i++) {
        char name[300];
        struct dkim_keys_result r;
        const struct dns_result *txt =
            doctor_resolve(d, DNS_TXT, dkim_keys_name(&list->keys[i], name, sizeof(name)));
        dkim_keys_test(&list->keys[i], txt, &r);
        dns_result_unref(txt);
        doctor_dkim_report(d, &list->keys[i], &r);
    }
    dkim_keys_list_free(list);
}
