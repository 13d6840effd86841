/*
 * dkim_keys.c - DKIM signing keys against DNS: the key list, the test, what to say about it.
 *
 * The test is libopendkim's dkim_test_key(). Its DNS hooks never touch the network: query
 * start copies the raw answer our engine already holds for (TXT, selector._domainkey.domain)
 * into libopendkim's buffer, and "wait for the reply" returns at once. So the daemon looks the
 * name up with dns_lookup() and tests in the callback, and the doctor tests after waiting;
 * both see the same DNS, through the same cache. The PEM text of each key is read when the
 * list is loaded (before privileges are dropped: signing keys are often root-only) and wiped
 * when it is freed. No state, no event loop here: the daemon's periodic key check is the dkim
 * check's (checks/dkim.c), the doctor's is its DKIM section.
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/mail/dkim_keys.h"

#include "policyd/dns/dns.h"
#include "policyd/lib/file.h"
#include "policyd/lib/xalloc.h"

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <opendkim/dkim.h>

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define KEYS_MAX_PEM 65536
#define KEYS_MAX_LINE 4096
#define KEYS_MAX_LINES 100000 /* a KeyTable or opendkim.conf longer than this is not one */

/* keys_error - add one sentence to the list's configuration errors. */
__attribute__((format(printf, 2, 3))) static void keys_error(struct dkim_keys_list *l,
                                                             const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    l->errors = xreallocarray(l->errors, l->nerrors + 1, sizeof(*l->errors));
    l->errors[l->nerrors++] = xstrdup(text);
}

/* keys_read_pem - read key->path into key->pem, or set read_error. */
static void keys_read_pem(struct dkim_key *key)
{
    FILE *fp = fopen(key->path, "r");
    if (!fp) {
        key->read_errno = errno;
        key->read_error = xstrdup(strerror(errno));
        return;
    }
    char *buf = xmalloc(KEYS_MAX_PEM + 1);
    size_t n = fread(buf, 1, KEYS_MAX_PEM + 1, fp);
    int bad = ferror(fp);
    int saved = errno;
    fclose(fp);
    if (bad || n > KEYS_MAX_PEM) {
        OPENSSL_cleanse(buf, n);
        free(buf);
        key->read_errno = bad ? saved : EFBIG;
        key->read_error = xstrdup(bad ? strerror(saved) : "larger than 64 KB: not a key");
        return;
    }
    buf[n] = '\0';
    key->pem = buf;
    key->pemlen = n;
}

/* keys_add - one key; domain lower-cased, a trailing dot dropped. */
static void keys_add(struct dkim_keys_list *l, const char *sel, size_t sellen, const char *dom,
                     size_t domlen, const char *path, const char *origin)
{
    if (domlen && dom[domlen - 1] == '.')
        domlen--;
    l->keys = xreallocarray(l->keys, l->nkeys + 1, sizeof(*l->keys));
    struct dkim_key *k = &l->keys[l->nkeys++];
    memset(k, 0, sizeof(*k));
    k->selector = xstrndup(sel, sellen);
    k->domain = xstrndup(dom, domlen);
    for (char *p = k->domain; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    k->path = xstrdup(path ? path : "");
    k->origin = xstrdup(origin ? origin : "");
    keys_read_pem(k);
}

/* keys_valid_name - a selector or domain we can ask about: letters, digits, '-', '_', '.'. */
static int keys_valid_name(const char *s, size_t len)
{
    if (!len || len > 200)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
            return 0;
    return 1;
}

/* keys_parse_setting - dkim_keys: "selector:domain:/path, ...". */
static void keys_parse_setting(struct dkim_keys_list *l, const char *value)
{
    const char *p = value ? value : "";
    while (*p) {
        while (*p == ',' || isspace((unsigned char)*p))
            p++;
        const char *w = p;
        while (*p && *p != ',' && !isspace((unsigned char)*p))
            p++;
        if (p == w)
            continue;
        char item[1024];
        snprintf(item, sizeof(item), "%.*s", (int)(p - w), w);
        char *c1 = strchr(item, ':');
        char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2 || !keys_valid_name(item, (size_t)(c1 - item)) ||
            !keys_valid_name(c1 + 1, (size_t)(c2 - c1 - 1)) || !c2[1]) {
            keys_error(l, "dkim_keys: '%s' is not selector:domain:/path/to/key.pem", item);
            continue;
        }
        keys_add(l, item, (size_t)(c1 - item), c1 + 1, (size_t)(c2 - c1 - 1), c2 + 1, "dkim_keys");
    }
}

/* keys_trim - s without leading and trailing white space (in place). */
static char *keys_trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* keys_reason - file_open_regular's "PATH: reason" without the path. */
static const char *keys_reason(const char *why, const char *path)
{
    size_t n = strlen(path);
    return strncmp(why, path, n) == 0 && strncmp(why + n, ": ", 2) == 0 ? why + n + 2 : why;
}

/* keys_line_fn - one line of a file keys_read() reads: its first word and the rest. */
typedef void keys_line_fn(struct dkim_keys_list *l, const char *path, unsigned lineno, char *word,
                          char *rest, void *arg);

/* keys_read - hand each line of path that is not blank or a comment to fn, split at the first
 * whitespace. what names the file in errors ("KeyTable"), kind says what it should be ("a
 * KeyTable"). 0, or -1 when it cannot be read. */
static int keys_read(struct dkim_keys_list *l, const char *what, const char *kind, const char *path,
                     keys_line_fn *fn, void *arg)
{
    char why[512];
    FILE *fp = file_open_regular(path, why, sizeof(why));
    if (!fp) {
        keys_error(l, "%s %s: cannot read: %s", what, path, keys_reason(why, path));
        return -1;
    }
    char line[KEYS_MAX_LINE];
    unsigned lineno = 0;
    while (fgets(line, sizeof(line), fp)) {
        if (++lineno > KEYS_MAX_LINES) {
            keys_error(l, "%s %s: more than %d lines: not %s", what, path, KEYS_MAX_LINES, kind);
            break;
        }
        char *s = keys_trim(line);
        if (!*s || *s == '#')
            continue;
        char *v = s;
        while (*v && !isspace((unsigned char)*v))
            v++;
        if (*v)
            *v++ = '\0';
        fn(l, path, lineno, s, keys_trim(v), arg);
    }
    fclose(fp);
    return 0;
}

/* keytable_line - "keyname domain:selector:/path/to/key". */
static void keytable_line(struct dkim_keys_list *l, const char *path, unsigned lineno, char *word,
                          char *v, void *arg)
{
    (void)word;
    (void)arg;
    char *c1 = strchr(v, ':');
    char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    char origin[1200];
    snprintf(origin, sizeof(origin), "%s:%u", path, lineno);
    if (!c2 || !c2[1]) {
        keys_error(l, "%s: expected 'keyname domain:selector:/path/to/key'", origin);
        return;
    }
    size_t domlen = (size_t)(c1 - v), sellen = (size_t)(c2 - c1 - 1);
    if (memchr(v, '%', domlen) || memchr(c1 + 1, '%', sellen) || strchr(c2 + 1, '%')) {
        keys_error(l,
                   "%s: '%%' stands for each signing domain: list those keys in dkim_keys "
                   "to have them checked",
                   origin);
        return;
    }
    if (!keys_valid_name(v, domlen) || !keys_valid_name(c1 + 1, sellen)) {
        keys_error(l, "%s: '%.*s' is not domain:selector", origin, (int)(c2 - v), v);
        return;
    }
    if (c2[1] != '/' && c2[1] != '.') {
        keys_error(l, "%s: the key is given inline, not as a file: not checked", origin);
        return;
    }
    keys_add(l, c1 + 1, sellen, v, domlen, c2 + 1, origin);
}

/* The settings of opendkim.conf that name the keys. */
struct opendkim_conf {
    char keytable[1024], domain[1024], selector[256], keyfile[1024];
};

static void opendkim_line(struct dkim_keys_list *l, const char *path, unsigned lineno, char *word,
                          char *v, void *arg)
{
    struct opendkim_conf *c = arg;
    (void)l;
    (void)path;
    (void)lineno;
    if (strcasecmp(word, "KeyTable") == 0)
        snprintf(c->keytable, sizeof(c->keytable), "%s", v);
    else if (strcasecmp(word, "Domain") == 0)
        snprintf(c->domain, sizeof(c->domain), "%s", v);
    else if (strcasecmp(word, "Selector") == 0)
        snprintf(c->selector, sizeof(c->selector), "%s", v);
    else if (strcasecmp(word, "KeyFile") == 0)
        snprintf(c->keyfile, sizeof(c->keyfile), "%s", v);
}

/* keys_parse_opendkim - opendkim.conf: its KeyTable, or its single Domain/Selector/KeyFile. */
static void keys_parse_opendkim(struct dkim_keys_list *l, const char *conf)
{
    struct opendkim_conf c = {"", "", "", ""};
    if (keys_read(l, "opendkim_config", "an opendkim.conf", conf, opendkim_line, &c) != 0)
        return;
    if (*c.keytable) {
        const char *path = c.keytable;
        if (strncmp(path, "file:", 5) == 0)
            path += 5;
        else if (strncmp(path, "refile:", 7) == 0)
            path += 7; /* patterns on the left; the right-hand side is the same */
        else if (*path != '/' && strchr(path, ':')) {
            keys_error(l,
                       "%s: KeyTable %s: only flat files (file:, refile: or a path) are read; "
                       "list the keys in dkim_keys to have them checked",
                       conf, c.keytable);
            return;
        }
        keys_read(l, "KeyTable", "a KeyTable", path, keytable_line, NULL);
        return;
    }
    if (*c.domain && *c.selector && *c.keyfile) {
        /* Domain may be a list or a file of domains; only a written list is read here. */
        if (*c.domain == '/' || strchr(c.domain, ':')) {
            keys_error(l,
                       "%s: Domain %s is a data set: list the keys in dkim_keys to have them "
                       "checked",
                       conf, c.domain);
            return;
        }
        char origin[1200];
        snprintf(origin, sizeof(origin), "%s (Domain, Selector, KeyFile)", conf);
        char *save = NULL; /* strtok_r: this runs in the reload thread too */
        for (char *d = strtok_r(c.domain, ", \t", &save); d; d = strtok_r(NULL, ", \t", &save))
            if (keys_valid_name(d, strlen(d)))
                keys_add(l, c.selector, strlen(c.selector), d, strlen(d), c.keyfile, origin);
    }
}

struct dkim_keys_list *dkim_keys_list_load(const char *dkim_keys, const char *opendkim_config)
{
    struct dkim_keys_list *l = xcalloc(1, sizeof(*l));
    keys_parse_setting(l, dkim_keys);
    if (opendkim_config && *opendkim_config)
        keys_parse_opendkim(l, opendkim_config);
    return l;
}

void dkim_keys_list_free(struct dkim_keys_list *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->nkeys; i++) {
        struct dkim_key *k = &l->keys[i];
        if (k->pem)
            OPENSSL_cleanse(k->pem, k->pemlen);
        free(k->pem);
        free(k->selector);
        free(k->domain);
        free(k->path);
        free(k->origin);
        free(k->read_error);
    }
    for (size_t i = 0; i < l->nerrors; i++)
        free(l->errors[i]);
    free(l->keys);
    free(l->errors);
    free(l);
}

char *dkim_keys_name(const struct dkim_key *key, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s._domainkey.%s", key->selector, key->domain);
    return out;
}

/* --- the test: libopendkim with DNS hooks answering from what we hold --- */

/* What the hooks answer from: one TXT result for one name. */
struct keys_dns {
    const struct dns_result *txt;
    const char *name;
    size_t len;   /* bytes copied into libopendkim's buffer */
    int answered; /* query_start was called and answered */
};

/* keys_dns_start - libopendkim asks (type, query): copy our raw answer. 0 / DKIM_DNS_ERROR. */
static int keys_dns_start(void *srv, int type, unsigned char *query, unsigned char *buf,
                          size_t buflen, void **qh)
{
    struct keys_dns *kd = srv;
    size_t qlen = strlen((const char *)query);
    if (qlen && query[qlen - 1] == '.')
        qlen--;
    if (type != DNS_TXT || !kd->txt || !kd->txt->raw || kd->txt->rawlen > buflen ||
        strlen(kd->name) != qlen || strncasecmp((const char *)query, kd->name, qlen) != 0)
        return DKIM_DNS_ERROR; /* never a question we did not prepare for */
    memcpy(buf, kd->txt->raw, kd->txt->rawlen);
    kd->len = kd->txt->rawlen;
    kd->answered = 1;
    *qh = kd;
    return 0;
}

/* keys_dns_wait - the reply is always there already. */
static int keys_dns_wait(void *srv, void *qh, struct timeval *timeout, size_t *bytes, int *error,
                         int *dnssec)
{
    struct keys_dns *kd = srv;
    (void)qh;
    (void)timeout;
    *bytes = kd->len;
    if (error)
        *error = 0;
    if (dnssec)
        *dnssec = DKIM_DNSSEC_UNKNOWN;
    return DKIM_DNS_SUCCESS;
}

static int keys_dns_cancel(void *srv, void *qh)
{
    (void)srv;
    (void)qh;
    return 0;
}

static void keys_dns_close(void *srv)
{
    (void)srv; /* ours, not libopendkim's resolver: nothing to shut down */
}

static int keys_no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return 0; /* never prompt: an encrypted key is reported, not unlocked */
}

/* keys_contains - s contains word, ignoring case. */
static int keys_contains(const char *s, const char *word)
{
    return strcasestr(s, word) != NULL;
}

/* keys_record_text - the first TXT record of r, shortened to fit. */
static void keys_record_text(const struct dns_result *r, char *out, size_t outlen)
{
    out[0] = '\0';
    if (r && r->status == DNS_OK && r->count)
        snprintf(out, outlen, "%s%s", r->items[0], r->count > 1 ? " (and more records)" : "");
}

void dkim_keys_test(const struct dkim_key *key, const struct dns_result *txt,
                    struct dkim_keys_result *out)
{
    memset(out, 0, sizeof(*out));
    keys_record_text(txt, out->record, sizeof(out->record));

    /* The private key first: its length matters whatever DNS says. */
    int key_ok = 0;
    if (key->pem) {
        BIO *bio = BIO_new_mem_buf(key->pem, (int)key->pemlen);
        EVP_PKEY *pk = bio ? PEM_read_bio_PrivateKey(bio, NULL, keys_no_passphrase, NULL) : NULL;
        if (!pk) {
            snprintf(out->detail, sizeof(out->detail), "%s is not an unencrypted PEM private key",
                     key->path);
        } else if (EVP_PKEY_get_base_id(pk) != EVP_PKEY_RSA) {
            out->bits = EVP_PKEY_get_bits(pk);
            snprintf(out->detail, sizeof(out->detail),
                     "%s is a %s key: libopendkim's key test handles RSA keys only", key->path,
                     OBJ_nid2sn(EVP_PKEY_get_base_id(pk)));
        } else {
            out->bits = EVP_PKEY_get_bits(pk);
            key_ok = 1;
        }
        EVP_PKEY_free(pk);
        BIO_free(bio);
        ERR_clear_error();
    } else {
        snprintf(out->detail, sizeof(out->detail), "%s: %s", key->path,
                 key->read_error ? key->read_error : "not read");
    }

    if (!txt) {
        out->outcome = DKIM_KEYS_DNS_TROUBLE;
        snprintf(out->detail, sizeof(out->detail), "no answer");
        return;
    }
    char name[300];
    dkim_keys_name(key, name, sizeof(name));
    if (!txt->name || strcasecmp(txt->name, name) != 0) {
        out->outcome = DKIM_KEYS_DNS_TROUBLE; /* a caller's mistake: never test another name */
        snprintf(out->detail, sizeof(out->detail), "the answer is for %s, not %s",
                 txt->name ? txt->name : "(none)", name);
        return;
    }
    switch (txt->status) {
    case DNS_NXDOMAIN:
        out->outcome = DKIM_KEYS_NO_RECORD;
        snprintf(out->detail, sizeof(out->detail), "NXDOMAIN");
        return;
    case DNS_NODATA:
        out->outcome = DKIM_KEYS_NO_RECORD;
        snprintf(out->detail, sizeof(out->detail), "NODATA: the name exists, without TXT");
        return;
    case DNS_TEMPFAIL:
    case DNS_BADRESP:
        out->outcome = DKIM_KEYS_DNS_TROUBLE;
        snprintf(out->detail, sizeof(out->detail), "%s", txt->detail ? txt->detail : "error");
        return;
    case DNS_OK:
        break;
    }
    if (!key_ok) {
        out->outcome = DKIM_KEYS_UNREADABLE;
        return;
    }

    DKIM_LIB *lib = dkim_init(NULL, NULL);
    if (!lib) {
        out->outcome = DKIM_KEYS_DNS_TROUBLE;
        snprintf(out->detail, sizeof(out->detail), "libopendkim could not start (no memory?)");
        return;
    }
    struct keys_dns kd = {txt, name, 0, 0};
    dkim_dns_set_query_service(lib, &kd);
    dkim_dns_set_query_start(lib, keys_dns_start);
    dkim_dns_set_query_waitreply(lib, keys_dns_wait);
    dkim_dns_set_query_cancel(lib, keys_dns_cancel);
    dkim_dns_set_close(lib, keys_dns_close);

    char err[256] = "";
    int rc = dkim_test_key(lib, key->selector, key->domain, key->pem, key->pemlen, NULL, err,
                           sizeof(err));
    dkim_dns_set_query_service(lib, NULL);
    dkim_close(lib);
    ERR_clear_error();

    if (rc == 0) {
        out->outcome = DKIM_KEYS_MATCH;
        out->detail[0] = '\0';
    } else if (rc == 1) {
        out->outcome = DKIM_KEYS_MISMATCH;
        snprintf(out->detail, sizeof(out->detail), "%s", err[0] ? err : "keys do not match");
    } else if (keys_contains(err, "revoked")) {
        out->outcome = DKIM_KEYS_REVOKED;
        snprintf(out->detail, sizeof(out->detail), "%s", err);
    } else if (!kd.answered || keys_contains(err, "query failed") ||
               keys_contains(err, "timed out")) {
        out->outcome = DKIM_KEYS_DNS_TROUBLE;
        snprintf(out->detail, sizeof(out->detail), "libopendkim: %s", err[0] ? err : "error");
    } else {
        out->outcome = DKIM_KEYS_BAD_RECORD;
        snprintf(out->detail, sizeof(out->detail), "libopendkim: %s", err[0] ? err : "error");
    }
}

const char *dkim_keys_outcome_text(enum dkim_keys_outcome outcome)
{
    switch (outcome) {
    case DKIM_KEYS_MATCH:
        return "DNS record matches the private key";
    case DKIM_KEYS_NO_RECORD:
        return "no DNS record";
    case DKIM_KEYS_REVOKED:
        return "DNS record is revoked (empty p=)";
    case DKIM_KEYS_MISMATCH:
        return "DNS record does not match the private key";
    case DKIM_KEYS_BAD_RECORD:
        return "DNS record is not a usable DKIM key";
    case DKIM_KEYS_DNS_TROUBLE:
        return "DNS lookup failed";
    case DKIM_KEYS_UNREADABLE:
        return "private key cannot be used";
    }
    return "unknown";
}

char *dkim_keys_fix(const struct dkim_key *key, const struct dkim_keys_result *r, char *out,
                    size_t outlen)
{
    char name[300];
    dkim_keys_name(key, name, sizeof(name));
    switch (r->outcome) {
    case DKIM_KEYS_MATCH:
        if (r->bits && r->bits < 2048)
            snprintf(out, outlen,
                     "make a 2048-bit key (opendkim-genkey -b 2048 -d %s -s NEWSELECTOR), publish "
                     "its .txt record at NEWSELECTOR._domainkey.%s, then switch the signer to it",
                     key->domain, key->domain);
        else
            snprintf(out, outlen, "%s", "");
        break;
    case DKIM_KEYS_NO_RECORD:
        snprintf(out, outlen,
                 "publish the public key as a TXT record at %s: the record opendkim-genkey wrote "
                 "beside the key (%s.txt), or 'v=DKIM1; k=rsa; p=' followed by the base64 of "
                 "'openssl pkey -in %s -pubout -outform DER'",
                 name, key->selector, key->path);
        break;
    case DKIM_KEYS_REVOKED:
        snprintf(out, outlen,
                 "the record at %s withdraws the key (p= is empty) but the signer still uses "
                 "%s: publish that key's public half there (the .txt file from opendkim-genkey), "
                 "or switch the signer to a selector whose record holds its key",
                 name, key->path);
        break;
    case DKIM_KEYS_MISMATCH:
        snprintf(out, outlen,
                 "publish the public key from `opendkim-genkey`/the .txt file written with %s at "
                 "%s, or point the signer at the private key that belongs to the published "
                 "record; a changed record takes effect when the old one's TTL has passed",
                 key->path, name);
        break;
    case DKIM_KEYS_BAD_RECORD:
        snprintf(out, outlen,
                 "publish exactly one TXT record at %s of the form 'v=DKIM1; k=rsa; p=BASE64' "
                 "(the .txt file opendkim-genkey wrote with the key)",
                 name);
        break;
    case DKIM_KEYS_DNS_TROUBLE:
        snprintf(out, outlen,
                 "make sure the name servers of %s answer TXT queries for %s (dig TXT %s); "
                 "checked again later",
                 key->domain, name, name);
        break;
    case DKIM_KEYS_UNREADABLE:
        if (key->read_errno == EACCES)
            snprintf(out, outlen,
                     "let policyd read %s (for example group opendkim, mode 0640), or run the "
                     "doctor as root",
                     key->path);
        else if (key->read_errno == ENOENT)
            snprintf(out, outlen, "correct the path in %s: %s does not exist", key->origin,
                     key->path);
        else
            snprintf(out, outlen,
                     "%s must be an unencrypted PEM RSA private key, as opendkim-genkey writes",
                     key->path);
        break;
    }
    return out;
}
