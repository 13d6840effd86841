/*
 * test_dkim.c - policyd/mail/dkim_keys.c without a network: the key list (dkim_keys, opendkim.conf
 * and its KeyTable, mistakes in each), and dkim_keys_test() on hand-made DNS answers parsed by
 * the engine's own parser (dns_parse_answer keeps the raw message libopendkim's hooks are
 * fed from): matching key, another key's record, revoked, NXDOMAIN, NODATA, SERVFAIL, two
 * records, a record that is no key, an answer for another name, unreadable and encrypted keys,
 * key lengths. Keys are made here with OpenSSL in a temporary directory.
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/mail/dkim_keys.h"
#include "policyd/dns/dns.h"
#include "unit.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64];

/* make_key - an RSA key of bits written to dir/file (PEM; encrypted with pass when set); its
 * public half as a DKIM record into rec. */
static void make_key(int bits, const char *file, const char *pass, char *rec, size_t reclen)
{
    EVP_PKEY *pk = EVP_RSA_gen((unsigned)bits);
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    FILE *fp = fopen(path, "w");
    if (!pk || !fp)
        abort();
    if (pass)
        PEM_write_PrivateKey(fp, pk, EVP_aes_128_cbc(), (unsigned char *)pass, (int)strlen(pass),
                             NULL, NULL);
    else
        PEM_write_PrivateKey(fp, pk, NULL, NULL, 0, NULL, NULL);
    fclose(fp);
    unsigned char *der = NULL;
    int n = i2d_PUBKEY(pk, &der);
    unsigned char b64[4096];
    EVP_EncodeBlock(b64, der, n);
    snprintf(rec, reclen, "v=DKIM1; h=sha256; k=rsa; p=%s", b64);
    OPENSSL_free(der);
    EVP_PKEY_free(pk);
}

/* put_name - name as DNS labels at p; returns the length. */
static size_t put_name(unsigned char *p, const char *name)
{
    size_t n = 0;
    while (*name) {
        const char *dot = strchr(name, '.');
        size_t len = dot ? (size_t)(dot - name) : strlen(name);
        p[n++] = (unsigned char)len;
        memcpy(p + n, name, len);
        n += len;
        name += len + (dot ? 1 : 0);
    }
    p[n++] = 0;
    return n;
}

/* answer - a DNS answer to (TXT, name): rcode, then ntxt records (each split into strings of
 * at most 255 bytes), parsed by the engine. */
static const struct dns_result *answer(const char *name, int rcode, const char **txt, int ntxt)
{
    unsigned char m[8192];
    size_t n = 0;
    unsigned char hdr[12] = {
        0x12, 0x34, 0x81, (unsigned char)(0x80 | rcode), 0, 1, 0, (unsigned char)ntxt, 0, 0, 0, 0};
    memcpy(m, hdr, 12);
    n = 12;
    n += put_name(m + n, name);
    m[n++] = 0, m[n++] = 16, m[n++] = 0, m[n++] = 1;
    for (int i = 0; i < ntxt; i++) {
        m[n++] = 0xc0, m[n++] = 12; /* the question's name */
        m[n++] = 0, m[n++] = 16, m[n++] = 0, m[n++] = 1;
        m[n++] = 0, m[n++] = 0, m[n++] = 1, m[n++] = 44;
        size_t len = strlen(txt[i]), rdlen = len + (len + 254) / 255;
        m[n++] = (unsigned char)(rdlen >> 8), m[n++] = (unsigned char)rdlen;
        for (size_t off = 0; off < len; off += 255) {
            size_t chunk = len - off > 255 ? 255 : len - off;
            m[n++] = (unsigned char)chunk;
            memcpy(m + n, txt[i] + off, chunk);
            n += chunk;
        }
    }
    return dns_parse_answer(16, name, m, n);
}

/* outcome_of - test key against an answer, return the outcome (detail into *r). */
static enum dkim_keys_outcome outcome_of(const struct dkim_key *key, const struct dns_result *a,
                                         struct dkim_keys_result *r)
{
    dkim_keys_test(key, a, r);
    dns_result_unref(a);
    return r->outcome;
}

static void write_file(const char *file, const char *text)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    FILE *fp = fopen(path, "w");
    if (!fp)
        abort();
    fputs(text, fp);
    fclose(fp);
}

static void test_list(void)
{
    char setting[1024], conf[4096];
    snprintf(setting, sizeof(setting),
             "s1:Example.COM.:%s/a.pem, not-a-key-entry,\n s2:example.org:%s/missing.pem", dir,
             dir);
    struct dkim_keys_list *l = dkim_keys_list_load(setting, NULL);
    CHECK(l->nkeys == 2);
    CHECK(l->nerrors == 1);
    if (l->nkeys == 2) {
        CHECK_STR(l->keys[0].selector, "s1");
        CHECK_STR(l->keys[0].domain, "example.com"); /* lower case, no trailing dot */
        CHECK_STR(l->keys[0].origin, "dkim_keys");
        CHECK(l->keys[0].pem && strstr(l->keys[0].pem, "PRIVATE KEY"));
        CHECK(!l->keys[1].pem && l->keys[1].read_errno == ENOENT);
        char name[300];
        CHECK_STR(dkim_keys_name(&l->keys[0], name, sizeof(name)), "s1._domainkey.example.com");
    }
    if (l->nerrors == 1)
        CHECK(strstr(l->errors[0], "'not-a-key-entry' is not selector:domain:/path") != NULL);
    dkim_keys_list_free(l);

    /* OpenDKIM's KeyTable: domain:selector:path, with what cannot be checked reported. */
    snprintf(conf, sizeof(conf),
             "# KeyTable entries\n"
             "k1  example.net:sel1:%s/a.pem\n"
             "\n"
             "k2 %%:sel2:%s/%%.pem\n"
             "k3 inline.example:sel3:MIICdgIBADANBgkqhkiG9w0BAQEFAASC\n"
             "k4 broken-line\n"
             "k5\texample.org:sel5:%s/b.pem\n",
             dir, dir, dir);
    write_file("KeyTable", conf);
    snprintf(conf, sizeof(conf),
             "Syslog yes\n# KeyTable /nowhere\nKeyTable  file:%s/KeyTable\n"
             "SigningTable refile:/etc/opendkim/SigningTable\n",
             dir);
    write_file("opendkim.conf", conf);
    snprintf(conf, sizeof(conf), "%s/opendkim.conf", dir);
    l = dkim_keys_list_load("", conf);
    CHECK(l->nkeys == 2);
    CHECK(l->nerrors == 3);
    if (l->nkeys == 2) {
        CHECK_STR(l->keys[0].selector, "sel1");
        CHECK_STR(l->keys[0].domain, "example.net");
        CHECK(strstr(l->keys[0].origin, "/KeyTable:2") != NULL);
        CHECK_STR(l->keys[1].selector, "sel5");
        CHECK(l->keys[1].pem != NULL);
    }
    if (l->nerrors == 3) {
        CHECK(strstr(l->errors[0], ":4: '%' stands for each signing domain") != NULL);
        CHECK(strstr(l->errors[1], ":5: the key is given inline") != NULL);
        CHECK(strstr(l->errors[2], ":6: expected 'keyname domain:selector:/path/to/key'") != NULL);
    }
    dkim_keys_list_free(l);

    /* A plain path and refile: read the same; other data sets are named, not guessed. */
    snprintf(conf, sizeof(conf), "KeyTable refile:%s/KeyTable\n", dir);
    write_file("re.conf", conf);
    snprintf(conf, sizeof(conf), "%s/re.conf", dir);
    l = dkim_keys_list_load(NULL, conf);
    CHECK(l->nkeys == 2);
    dkim_keys_list_free(l);
    write_file("db.conf", "KeyTable dsn:mysql://opendkim@localhost/keys\n");
    snprintf(conf, sizeof(conf), "%s/db.conf", dir);
    l = dkim_keys_list_load(NULL, conf);
    CHECK(l->nkeys == 0 && l->nerrors == 1);
    if (l->nerrors)
        CHECK(strstr(l->errors[0], "only flat files") != NULL);
    dkim_keys_list_free(l);

    /* Without a KeyTable: Domain, Selector, KeyFile. */
    snprintf(conf, sizeof(conf),
             "Domain example.com, example.net\nSelector mail\nKeyFile %s/a.pem\n", dir);
    write_file("single.conf", conf);
    snprintf(conf, sizeof(conf), "%s/single.conf", dir);
    l = dkim_keys_list_load(NULL, conf);
    CHECK(l->nkeys == 2 && l->nerrors == 0);
    if (l->nkeys == 2)
        CHECK(strcmp(l->keys[1].domain, "example.net") == 0 &&
              strcmp(l->keys[1].selector, "mail") == 0);
    dkim_keys_list_free(l);

    l = dkim_keys_list_load(NULL, "/nonexistent/opendkim.conf");
    CHECK(l->nkeys == 0 && l->nerrors == 1);
    dkim_keys_list_free(l);

    /* A KeyTable that is a device by mistake: refused, not read forever. */
    write_file("zero.conf", "KeyTable /dev/zero\n");
    snprintf(conf, sizeof(conf), "%s/zero.conf", dir);
    l = dkim_keys_list_load(NULL, conf);
    CHECK(l->nkeys == 0 && l->nerrors == 1);
    if (l->nerrors)
        CHECK(strstr(l->errors[0], "KeyTable /dev/zero: cannot read: not a regular file") != NULL);
    dkim_keys_list_free(l);
    l = dkim_keys_list_load(NULL, NULL);
    CHECK(l->nkeys == 0 && l->nerrors == 0);
    dkim_keys_list_free(l);
}

static void test_outcomes(void)
{
    static char rec_a[2048], rec_b[2048], rec_small[2048], rec_enc[2048];
    make_key(2048, "a.pem", NULL, rec_a, sizeof(rec_a));
    make_key(2048, "b.pem", NULL, rec_b, sizeof(rec_b));
    make_key(768, "small.pem", NULL, rec_small, sizeof(rec_small));
    make_key(1024, "enc.pem", "secret", rec_enc, sizeof(rec_enc));
    write_file("junk.pem", "this is not a key\n");
    char setting[2048];
    snprintf(setting, sizeof(setting),
             "sel:example.com:%s/a.pem tiny:example.com:%s/small.pem enc:example.com:%s/enc.pem "
             "junk:example.com:%s/junk.pem gone:example.com:%s/gone.pem",
             dir, dir, dir, dir, dir);
    struct dkim_keys_list *l = dkim_keys_list_load(setting, NULL);
    CHECK(l->nkeys == 5);
    if (l->nkeys != 5) {
        dkim_keys_list_free(l);
        return;
    }
    const struct dkim_key *ka = &l->keys[0], *ksmall = &l->keys[1], *kenc = &l->keys[2],
                          *kjunk = &l->keys[3], *kgone = &l->keys[4];
    const char *name = "sel._domainkey.example.com";
    struct dkim_keys_result r;
    const char *one[1];

    one[0] = rec_a; /* about 400 bytes: two strings in one record */
    CHECK(outcome_of(ka, answer(name, 0, one, 1), &r) == DKIM_KEYS_MATCH);
    CHECK(r.bits == 2048);
    CHECK(strncmp(r.record, "v=DKIM1;", 8) == 0);

    one[0] = rec_b;
    CHECK(outcome_of(ka, answer(name, 0, one, 1), &r) == DKIM_KEYS_MISMATCH);
    CHECK(r.bits == 2048);

    one[0] = "v=DKIM1; k=rsa; p=";
    CHECK(outcome_of(ka, answer(name, 0, one, 1), &r) == DKIM_KEYS_REVOKED);

    CHECK(outcome_of(ka, answer(name, 3, NULL, 0), &r) == DKIM_KEYS_NO_RECORD);
    CHECK_STR(r.detail, "NXDOMAIN");
    CHECK(outcome_of(ka, answer(name, 0, NULL, 0), &r) == DKIM_KEYS_NO_RECORD);
    CHECK(strncmp(r.detail, "NODATA", 6) == 0);
    CHECK(outcome_of(ka, answer(name, 2, NULL, 0), &r) == DKIM_KEYS_DNS_TROUBLE);
    dkim_keys_test(ka, NULL, &r);
    CHECK(r.outcome == DKIM_KEYS_DNS_TROUBLE);

    const char *two[2] = {rec_a, rec_b};
    CHECK(outcome_of(ka, answer(name, 0, two, 2), &r) == DKIM_KEYS_BAD_RECORD);
    CHECK(strstr(r.detail, "multiple") != NULL);
    one[0] = "v=spf1 -all";
    CHECK(outcome_of(ka, answer(name, 0, one, 1), &r) == DKIM_KEYS_BAD_RECORD);

    /* The right record, asked under another name: never tested against it. */
    one[0] = rec_a;
    CHECK(outcome_of(ka, answer("other._domainkey.example.com", 0, one, 1), &r) ==
          DKIM_KEYS_DNS_TROUBLE);

    one[0] = rec_small;
    CHECK(outcome_of(ksmall, answer("tiny._domainkey.example.com", 0, one, 1), &r) ==
          DKIM_KEYS_MATCH);
    CHECK(r.bits == 768);
    char fix[1024];
    CHECK(strstr(dkim_keys_fix(ksmall, &r, fix, sizeof(fix)), "-b 2048") != NULL);

    /* Encrypted, junk and missing keys: reported, never a passphrase prompt. */
    one[0] = rec_enc;
    CHECK(outcome_of(kenc, answer("enc._domainkey.example.com", 0, one, 1), &r) ==
          DKIM_KEYS_UNREADABLE);
    CHECK(strstr(r.detail, "not an unencrypted PEM private key") != NULL);
    CHECK(outcome_of(kjunk, answer("junk._domainkey.example.com", 0, one, 1), &r) ==
          DKIM_KEYS_UNREADABLE);
    CHECK(outcome_of(kgone, answer("gone._domainkey.example.com", 0, one, 1), &r) ==
          DKIM_KEYS_UNREADABLE);
    CHECK(strstr(dkim_keys_fix(kgone, &r, fix, sizeof(fix)), "does not exist") != NULL);
    /* ... but a missing record is still the first thing said. */
    CHECK(outcome_of(kgone, answer("gone._domainkey.example.com", 3, NULL, 0), &r) ==
          DKIM_KEYS_NO_RECORD);

    CHECK_STR(dkim_keys_outcome_text(DKIM_KEYS_MISMATCH),
              "DNS record does not match the private key");
    dkim_keys_list_free(l);
}

int main(void)
{
    snprintf(dir, sizeof(dir), "/tmp/policyd-dkim.XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    char unused[2048];
    make_key(1024, "a.pem", NULL, unused, sizeof(unused)); /* test_outcomes makes its own */
    write_file("b.pem", "-----BEGIN PRIVATE KEY-----\n");
    test_list();
    test_outcomes();
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
    return UNIT_END();
}
