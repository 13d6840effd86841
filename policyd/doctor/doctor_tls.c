/*
 * doctor_tls.c - the doctor's TLS section: Postfix's SMTP server certificates, read with OpenSSL
 * the way Postfix reads them: smtpd_tls_chain_files (each private key followed by its chain,
 * across the files in order), else smtpd_tls_cert_file (leaf first, then intermediates) with
 * smtpd_tls_key_file. For each certificate: readable, inside its validity period, the key
 * matches, myhostname among its names, the chain verifies against the system's CAs (purpose
 * TLS server; SSL_CERT_FILE / SSL_CERT_DIR are honoured, as OpenSSL does everywhere).
 * Only files are read, no handshake is made. Limits: smtpd_tls_eccert_file and the other
 * legacy *_eccert/_dcert files are not imported, so not checked; nor is smtpd_tls_security_level.
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/doctor/doctor_section.h"

#include "policyd/config.h"
#include "policyd/lib/plist.h"
#include "policyd/lib/xalloc.h"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TLS_MAX_FILE (1024 * 1024) /* a PEM file larger than this is not a certificate file */
#define TLS_WARN_DAYS 14

/* One PEM object of a file: a certificate or a private key (or an unreadable key). */
struct tls_obj {
    const char *file; /* points into the configuration */
    X509 *cert;
    EVP_PKEY *key;
    int bad_key; /* a PRIVATE KEY block OpenSSL could not read (encrypted, damaged) */
};

struct tls_objs {
    struct tls_obj *v;
    size_t n, cap;
};

/* tls_append - snprintf onto the end of buf (truncating quietly). */
static void tls_append(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void tls_append(char *buf, size_t size, const char *fmt, ...)
{
    size_t len = strlen(buf);
    if (len + 1 >= size)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + len, size - len, fmt, ap);
    va_end(ap);
}

/* tls_no_passphrase - never prompt: Postfix cannot read encrypted keys either. */
static int tls_no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

static void tls_objs_add(struct tls_objs *o, const struct tls_obj *obj)
{
    o->v = xgrow(o->v, &o->cap, o->n + 1, sizeof(*o->v));
    o->v[o->n++] = *obj;
}

static void tls_objs_free(struct tls_objs *o)
{
    for (size_t i = 0; i < o->n; i++) {
        X509_free(o->v[i].cert);
        EVP_PKEY_free(o->v[i].key);
    }
    free(o->v);
}

/* tls_unreadable - report a file that cannot be read: a failure, unless it is a permission
 * problem of the doctor itself (not root) - then the check could not run. */
static void tls_unreadable(struct doctor *d, const char *path, int err)
{
    char obs[600];
    snprintf(obs, sizeof(obs), "cannot read %s: %s", path, strerror(err));
    if (err == EACCES && geteuid() != 0)
        doctor_report_add(d->report, DOCTOR_ERROR, "tls", path, obs,
                          "the doctor runs unprivileged; Postfix reads this file as root",
                          "run the doctor as root to check this file");
    else
        doctor_report_add(
            d->report, DOCTOR_FAIL, "tls", path, obs,
            "Postfix cannot read it either: STARTTLS is not offered (or smtpd fails to "
            "start a TLS session), and senders deliver in plain text or not at all",
            "fix the path in main.cf, or the file's permissions (readable by root)");
}

/* tls_load - append the certificates and private keys of path, in file order. Returns 0, or -1
 * after reporting why the file cannot be used. */
static int tls_load(struct doctor *d, const char *path, struct tls_objs *out)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        tls_unreadable(d, path, errno);
        return -1;
    }
    char *text = xmalloc(TLS_MAX_FILE + 1);
    size_t len = fread(text, 1, TLS_MAX_FILE + 1, f);
    int rerr = ferror(f) ? errno : 0;
    fclose(f);
    if (rerr) {
        free(text);
        tls_unreadable(d, path, rerr);
        return -1;
    }
    if (len > TLS_MAX_FILE) {
        free(text);
        doctor_report_add(d->report, DOCTOR_FAIL, "tls", path,
                          "larger than 1 MB: not a PEM certificate file",
                          "Postfix expects PEM certificates and keys here",
                          "point the setting at the PEM file (fullchain.pem, privkey.pem)");
        return -1;
    }
    text[len] = '\0';

    size_t found = 0;
    const char *p = text;
    while ((p = strstr(p, "-----BEGIN ")) != NULL) {
        const char *label = p + 11;
        const char *label_end = strstr(label, "-----");
        if (!label_end)
            break;
        char endmark[96];
        size_t llen = (size_t)(label_end - label);
        if (llen > 64) {
            p = label_end;
            continue;
        }
        snprintf(endmark, sizeof(endmark), "-----END %.*s-----", (int)llen, label);
        const char *end = strstr(label_end, endmark);
        if (!end)
            break;
        end += strlen(endmark);
        struct tls_obj obj = {path, NULL, NULL, 0};
        BIO *bio = BIO_new_mem_buf(p, (int)(end - p));
        if (!bio)
            xalloc_fail((size_t)(end - p));
        if ((llen == 11 && strncmp(label, "CERTIFICATE", 11) == 0) ||
            (llen == 19 && strncmp(label, "TRUSTED CERTIFICATE", 19) == 0)) {
            obj.cert = llen == 11 ? PEM_read_bio_X509(bio, NULL, tls_no_passphrase, NULL)
                                  : PEM_read_bio_X509_AUX(bio, NULL, tls_no_passphrase, NULL);
            if (obj.cert) {
                tls_objs_add(out, &obj);
                found++;
            }
        } else if (llen >= 11 && memcmp(label_end - 11, "PRIVATE KEY", 11) == 0) {
            obj.key = PEM_read_bio_PrivateKey(bio, NULL, tls_no_passphrase, NULL);
            obj.bad_key = obj.key == NULL;
            tls_objs_add(out, &obj);
            found++;
        }
        BIO_free(bio);
        p = end;
    }
    free(text);
    if (!found) {
        doctor_report_add(d->report, DOCTOR_FAIL, "tls", path,
                          "no PEM certificate or private key in the file",
                          "Postfix cannot start TLS with it: STARTTLS fails for every sender",
                          "point the setting at the PEM file (fullchain.pem, privkey.pem)");
        return -1;
    }
    return 0;
}

/* tls_names - "CN=..., names a, b, c" of a certificate into buf. */
static void tls_names(X509 *cert, char *buf, size_t size)
{
    buf[0] = '\0';
    X509_NAME *subj = X509_get_subject_name(cert);
    int idx = subj ? X509_NAME_get_index_by_NID(subj, NID_commonName, -1) : -1;
    if (idx >= 0) {
        ASN1_STRING *cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, idx));
        tls_append(buf, size, "CN=%.*s", ASN1_STRING_length(cn),
                   (const char *)ASN1_STRING_get0_data(cn));
    } else {
        tls_append(buf, size, "no CN");
    }
    GENERAL_NAMES *san = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    int n = san ? sk_GENERAL_NAME_num(san) : 0, shown = 0;
    for (int i = 0; i < n; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(san, i);
        if (g->type != GEN_DNS)
            continue;
        if (shown == 20) {
            tls_append(buf, size, ", ...");
            break;
        }
        tls_append(buf, size, "%s%.*s", shown ? ", " : ", names ", ASN1_STRING_length(g->d.dNSName),
                   (const char *)ASN1_STRING_get0_data(g->d.dNSName));
        shown++;
    }
    if (!shown)
        tls_append(buf, size, ", no DNS names (subjectAltName)");
    GENERAL_NAMES_free(san);
}

/* tls_date - a certificate time as YYYY-MM-DD. */
static void tls_date(const ASN1_TIME *t, char *buf, size_t size)
{
    struct tm tm;
    if (!t || !ASN1_TIME_to_tm(t, &tm) || !strftime(buf, size, "%Y-%m-%d", &tm))
        snprintf(buf, size, "(unreadable date)");
}

/* tls_check_validity - the dates of the leaf. */
static void tls_check_validity(struct doctor *d, const char *file, X509 *cert, const char *names)
{
    char obs[1400], date[32];
    const ASN1_TIME *nb = X509_get0_notBefore(cert), *na = X509_get0_notAfter(cert);
    int days = 0, secs = 0;
    if (X509_cmp_current_time(nb) > 0) {
        tls_date(nb, date, sizeof(date));
        snprintf(obs, sizeof(obs), "not valid before %s, %s", date, names);
        doctor_report_add(d->report, DOCTOR_FAIL, "tls", file, obs,
                          "a certificate that is not yet valid fails verification: senders that "
                          "verify (MTA-STS, DANE) refuse to deliver",
                          "check the system clock, or install a certificate valid today");
        return;
    }
    if (!ASN1_TIME_diff(&days, &secs, NULL, na)) {
        snprintf(obs, sizeof(obs), "unreadable expiry date, %s", names);
        doctor_report_add(d->report, DOCTOR_FAIL, "tls", file, obs,
                          "senders cannot verify the certificate", "install a new certificate");
        return;
    }
    tls_date(na, date, sizeof(date));
    if (days < 0 || (days == 0 && secs < 0)) {
        snprintf(obs, sizeof(obs), "expired on %s (%d days ago), %s", date, -days, names);
        doctor_report_add(d->report, DOCTOR_FAIL, "tls", file, obs,
                          "an expired certificate: senders that verify (MTA-STS, DANE) refuse to "
                          "deliver, others deliver with a warning or fall back to plain text",
                          "renew it (certbot renew; then postfix reload) and check the renewal job "
                          "(systemctl list-timers, cron)");
    } else if (days < TLS_WARN_DAYS) {
        snprintf(obs, sizeof(obs), "valid until %s (%d days), %s", date, days, names);
        doctor_report_add(
            d->report, DOCTOR_WARN, "tls", file, obs,
            "expires in less than two weeks; an automatic renewal should have replaced "
            "it by now (certbot renews 30 days ahead)",
            "renew it now (certbot renew; then postfix reload) and check why the "
            "renewal job did not");
    } else {
        snprintf(obs, sizeof(obs), "valid until %s (%d days), %s", date, days, names);
        doctor_report_add(d->report, DOCTOR_OK, "tls", file, obs, NULL, NULL);
    }
}

/* tls_check_key - the private key against the leaf. */
static void tls_check_key(struct doctor *d, const char *keyfile, const char *certfile, X509 *cert,
                          EVP_PKEY *key)
{
    char obs[1200];
    if (!X509_check_private_key(cert, key)) {
        snprintf(obs, sizeof(obs), "the private key does not match the certificate in %s",
                 certfile);
        doctor_report_add(d->report, DOCTOR_FAIL, "tls", keyfile, obs,
                          "Postfix refuses the pair: no STARTTLS, senders deliver in plain text or "
                          "not at all",
                          "use the key the certificate was issued for (certbot: privkey.pem beside "
                          "fullchain.pem of the same live/ directory)");
        return;
    }
    int bits = EVP_PKEY_bits(key);
    if (EVP_PKEY_base_id(key) == EVP_PKEY_RSA && bits < 2048) {
        snprintf(obs, sizeof(obs), "matches %s; RSA %d bits", certfile, bits);
        doctor_report_add(
            d->report, DOCTOR_WARN, "tls", keyfile, obs,
            "RSA keys under 2048 bits are refused by current TLS libraries",
            "issue a new certificate with a 2048-bit (or larger) RSA or an ECDSA key");
        return;
    }
    snprintf(obs, sizeof(obs), "matches %s (%s, %d bits)", certfile,
             EVP_PKEY_base_id(key) == EVP_PKEY_RSA  ? "RSA"
             : EVP_PKEY_base_id(key) == EVP_PKEY_EC ? "ECDSA"
                                                    : "key",
             bits);
    doctor_report_add(d->report, DOCTOR_OK, "tls", keyfile, obs, NULL, NULL);
}

/* tls_check_name - myhostname among the certificate's names. */
static void tls_check_name(struct doctor *d, const char *file, X509 *cert, const char *names)
{
    const char *host = d->cfg->myhostname ? d->cfg->myhostname : "";
    char obs[1400], fix[600];
    if (*host && X509_check_host(cert, host, 0, 0, NULL) == 1) {
        snprintf(obs, sizeof(obs), "myhostname %s is among its names", host);
        doctor_report_add(d->report, DOCTOR_OK, "tls", file, obs, NULL, NULL);
        return;
    }
    snprintf(obs, sizeof(obs), "myhostname %s is not among its names (%s)", host, names);
    snprintf(fix, sizeof(fix),
             "issue the certificate for %s and the names your MX records point to "
             "(certbot certonly -d %s), or set myhostname to a name it covers",
             host, host);
    doctor_report_add(d->report, DOCTOR_WARN, "tls", file, obs,
                      "senders that verify (MTA-STS in enforce mode) compare the MX host name with "
                      "the certificate's names and refuse to deliver on a mismatch; opportunistic "
                      "senders do not check",
                      fix);
}

/* tls_check_trust - the chain against the system's CAs, dates aside (reported above). */
static void tls_check_trust(struct doctor *d, const char *file, X509 *cert, STACK_OF(X509) * chain)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    if (!store || !ctx)
        xalloc_fail(sizeof(void *));
    X509_STORE_set_default_paths(store);
    char obs[600];
    if (!X509_STORE_CTX_init(ctx, store, cert, chain)) {
        doctor_report_add(d->report, DOCTOR_ERROR, "tls", file,
                          "OpenSSL could not set up the verification", NULL, NULL);
    } else {
        X509_VERIFY_PARAM_set_flags(X509_STORE_CTX_get0_param(ctx), X509_V_FLAG_NO_CHECK_TIME);
        X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER);
        int n = chain ? sk_X509_num(chain) : 0;
        if (X509_verify_cert(ctx) == 1) {
            snprintf(obs, sizeof(obs),
                     "the chain (%d intermediate%s) verifies against the system's CAs", n,
                     n == 1 ? "" : "s");
            doctor_report_add(d->report, DOCTOR_OK, "tls", file, obs, NULL, NULL);
        } else {
            int err = X509_STORE_CTX_get_error(ctx);
            const char *fix = "use a certificate from a public CA (Let's Encrypt: certbot)";
            if (err == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
                err == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT)
                fix = "append the intermediate certificates after the server certificate "
                      "(certbot: use fullchain.pem, not cert.pem)";
            snprintf(obs, sizeof(obs), "does not verify: %s (%d intermediate%s in the file)",
                     X509_verify_cert_error_string(err), n, n == 1 ? "" : "s");
            doctor_report_add(
                d->report, DOCTOR_WARN, "tls", file, obs,
                "opportunistic senders accept any certificate, but senders that verify "
                "(MTA-STS in enforce mode: Gmail, Microsoft) refuse to deliver",
                fix);
        }
    }
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
}

/* tls_check_pair - everything about one certificate and its key (key NULL: none found;
 * key_unread: the key file could not be read, already reported). */
static void tls_check_pair(struct doctor *d, const struct tls_obj *leaf, STACK_OF(X509) * chain,
                           const struct tls_obj *key, int key_unread)
{
    char names[1000];
    tls_names(leaf->cert, names, sizeof(names));
    tls_check_validity(d, leaf->file, leaf->cert, names);
    if (key_unread) {
        /* reported by tls_load */
    } else if (!key) {
        doctor_report_add(d->report, DOCTOR_FAIL, "tls", leaf->file,
                          "no private key for this certificate",
                          "Postfix cannot use a certificate without its key: no STARTTLS",
                          "set smtpd_tls_key_file, or list the key before the certificate in "
                          "smtpd_tls_chain_files");
    } else if (key->bad_key) {
        doctor_report_add(
            d->report, DOCTOR_FAIL, "tls", key->file,
            "the private key cannot be read (encrypted with a passphrase, or damaged)",
            "Postfix reads keys without a passphrase: no STARTTLS",
            "store the key unencrypted, readable by root only: openssl pkey -in KEY "
            "-out KEY.new");
    } else {
        tls_check_key(d, key->file, leaf->file, leaf->cert, key->key);
    }
    tls_check_name(d, leaf->file, leaf->cert, names);
    tls_check_trust(d, leaf->file, leaf->cert, chain);
}

/* tls_chain_files - smtpd_tls_chain_files: keys each followed by their chain, across files. */
static void tls_chain_files(struct doctor *d)
{
    char **files = plist_split(d->cfg->smtpd_tls_chain_files);
    struct tls_objs objs = {NULL, 0, 0};
    int ok = 1;
    for (size_t i = 0; files[i]; i++)
        if (tls_load(d, files[i], &objs) != 0)
            ok = 0;
    /* With a file missing the pairing of the rest is guesswork: report only what was read. */
    size_t i = 0;
    while (ok && i < objs.n) {
        const struct tls_obj *key = NULL;
        if (objs.v[i].key || objs.v[i].bad_key)
            key = &objs.v[i++];
        if (i == objs.n || !objs.v[i].cert) {
            doctor_report_add(d->report, DOCTOR_FAIL, "tls", key ? key->file : objs.v[i].file,
                              "a private key not followed by its certificate",
                              "Postfix expects each key directly followed by its certificate chain",
                              "list the key, then the certificate, then the intermediates");
            continue;
        }
        const struct tls_obj *leaf = &objs.v[i++];
        STACK_OF(X509) *chain = sk_X509_new_null();
        if (!chain)
            xalloc_fail(sizeof(void *));
        while (i < objs.n && objs.v[i].cert)
            sk_X509_push(chain, objs.v[i++].cert);
        tls_check_pair(d, leaf, chain, key, 0);
        sk_X509_free(chain);
    }
    tls_objs_free(&objs);
    plist_free(files);
}

/* tls_cert_file - smtpd_tls_cert_file (leaf, intermediates) with smtpd_tls_key_file. */
static void tls_cert_file(struct doctor *d)
{
    const char *certfile = d->cfg->smtpd_tls_cert_file;
    const char *keyfile = d->cfg->smtpd_tls_key_file;
    if (!keyfile || !*keyfile)
        keyfile = certfile;
    struct tls_objs certs = {NULL, 0, 0}, keys = {NULL, 0, 0};
    if (tls_load(d, certfile, &certs) == 0) {
        const struct tls_obj *leaf = NULL, *key = NULL;
        STACK_OF(X509) *chain = sk_X509_new_null();
        if (!chain)
            xalloc_fail(sizeof(void *));
        for (size_t i = 0; i < certs.n; i++) {
            if (!certs.v[i].cert)
                continue;
            if (!leaf)
                leaf = &certs.v[i];
            else
                sk_X509_push(chain, certs.v[i].cert);
        }
        int key_ok = strcmp(keyfile, certfile) == 0 ? 0 : tls_load(d, keyfile, &keys);
        const struct tls_objs *ks = strcmp(keyfile, certfile) == 0 ? &certs : &keys;
        for (size_t i = 0; i < ks->n && !key; i++)
            if (ks->v[i].key || ks->v[i].bad_key)
                key = &ks->v[i];
        if (!leaf)
            doctor_report_add(d->report, DOCTOR_FAIL, "tls", certfile, "no certificate in the file",
                              "Postfix cannot offer STARTTLS without one",
                              "point smtpd_tls_cert_file at the certificate chain (fullchain.pem)");
        else
            tls_check_pair(d, leaf, chain, key, key_ok != 0);
        sk_X509_free(chain);
    }
    tls_objs_free(&keys);
    tls_objs_free(&certs);
}

void doctor_tls(struct doctor *d)
{
    const struct config *cfg = d->cfg;
    int have_chain = cfg->smtpd_tls_chain_files && *cfg->smtpd_tls_chain_files;
    int have_cert = cfg->smtpd_tls_cert_file && *cfg->smtpd_tls_cert_file;
    if (have_chain) /* Postfix uses smtpd_tls_chain_files when set, the others are ignored */
        tls_chain_files(d);
    else if (have_cert)
        tls_cert_file(d);
    else
        doctor_report_add(
            d->report, DOCTOR_WARN, "tls", "(none)",
            "no server certificate (smtpd_tls_cert_file and smtpd_tls_chain_files are "
            "empty)",
            "no TLS: senders see plain SMTP; many mark such mail as unencrypted or "
            "refuse to deliver it (MTA-STS, policies requiring TLS)",
            "in main.cf: smtpd_tls_chain_files = /etc/letsencrypt/live/HOST/privkey.pem, "
            "/etc/letsencrypt/live/HOST/fullchain.pem and smtpd_tls_security_level = may");
}
