/*
 * table.c - read Postfix lookup tables: texthash (postmap source format, loaded into a sorted
 * array), hash/btree (Berkeley DB, as postmap writes them), lmdb (liblmdb, from the mmap),
 * cidr (first matching network wins), inline:{k=v, ...} and static:value.
 *
 * Postfix conventions kept: lookup keys folded to lower case; database keys tried with and
 * without the trailing NUL (Postfix's DICT_FLAG_TRY1NULL / TRY0NULL); texthash lines are
 * "key whitespace value", '#' comment lines, and indented continuation lines.
 */
#include "policyd/table.h"

#include "policyd/config.h"
#include "policyd/netlist.h"

#include <ctype.h>
#include <db.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <time.h>
#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum table_type { TT_MEMORY, TT_DB, TT_LMDB, TT_CIDR, TT_STATIC };

struct entry {
    char *key;
    char *value;
    size_t order; /* position in the source: the first of duplicate keys wins */
};

struct cidr_rule {
    struct netlist *net;
    char *value;
};

struct table {
    char *spec;
    enum table_type type;
    struct entry *v; /* TT_MEMORY: sorted by key */
    size_t n, cap;
    struct cidr_rule *rules; /* TT_CIDR */
    size_t nrules;
    DB *db;
    MDB_env *env;
    MDB_dbi dbi;
    MDB_txn *txn;           /* one read transaction for the table's life: a snapshot of the file */
    char *valbuf;           /* a value without its NUL, copied here */
    const char *lmdb_value; /* the last lmdb value found */
    size_t valcap;
    char *result; /* last value from a database */
    /* Change detection (table_refresh): the file watched, what it looked like, the reload. */
    char *file;
    struct stat seen;
    time_t next_check;
    pthread_t worker;
    int worker_running;
    _Atomic int worker_done; /* set by the worker thread when fresh/reload_err are ready */
    struct table *fresh;
    char reload_err[512];
};

static void table_add(struct table *t, const char *key, size_t klen, const char *value)
{
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 64;
        t->v = realloc(t->v, t->cap * sizeof(*t->v));
        if (!t->v)
            abort();
    }
    char *k = strndup(key, klen);
    if (!k)
        abort();
    for (char *p = k; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    t->v[t->n].key = k;
    t->v[t->n].value = strdup(value);
    t->v[t->n].order = t->n;
    t->n++;
}

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const struct entry *)a)->key, ((const struct entry *)b)->key);
}

static int entry_cmp_order(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : (x->order > y->order) - (x->order < y->order);
}

/* table_flush - one logical "key value" line into the table. 0 / -1. */
static int table_flush(struct table *t, const char *path, int lineno, char *logical, char *err,
                       size_t errlen)
{
    char *ke = logical;
    while (*ke && !isspace((unsigned char)*ke))
        ke++;
    char *v = ke;
    while (isspace((unsigned char)*v))
        v++;
    size_t vl = strlen(v);
    while (vl > 0 && isspace((unsigned char)v[vl - 1]))
        v[--vl] = 0;
    if (!*v) {
        snprintf(err, errlen, "%s, line %d: expected 'key whitespace value'", path, lineno);
        return -1;
    }
    table_add(t, logical, (size_t)(ke - logical), v);
    return 0;
}

/* table_parse_text - postmap source lines from memory (modified in place). 0 / -1. */
static int table_parse_text(struct table *t, const char *path, char *text, char *err, size_t errlen)
{
    char *logical = NULL;
    int lineno = 0, start = 0, rc = 0;

    for (char *line = text, *next; line && rc == 0; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        lineno++;
        const char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == 0 || *p == '#')
            continue;
        if (p != line) { /* continuation */
            if (!logical) {
                snprintf(err, errlen, "%s, line %d: continuation line without a key", path, lineno);
                rc = -1;
                break;
            }
            /* As Postfix's readllines: the newline goes, the indentation stays. */
            size_t ll = strlen(logical), add = strlen(line);
            logical = realloc(logical, ll + add + 1);
            if (!logical)
                abort();
            memcpy(logical + ll, line, add + 1);
            continue;
        }
        if (logical)
            rc = table_flush(t, path, start, logical, err, errlen);
        free(logical);
        logical = strdup(p);
        start = lineno;
    }
    if (logical && rc == 0)
        rc = table_flush(t, path, start, logical, err, errlen);
    free(logical);
    if (t->n > 0)
        qsort(t->v, t->n, sizeof(*t->v), entry_cmp_order);
    return rc;
}

/* table_read_file - whole file into memory (NUL-terminated). */
static char *table_read_file(const char *path, char *err, size_t errlen)
{
    FILE *fp = fopen(path, "r");
    if (!fp) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 65536, n = 0, got;
    char *buf = malloc(cap);
    while (buf && (got = fread(buf + n, 1, cap - n - 1, fp)) > 0) {
        n += got;
        if (n + 1 == cap)
            buf = realloc(buf, cap *= 2);
    }
    fclose(fp);
    if (!buf)
        abort();
    buf[n] = 0;
    if (memchr(buf, 0, n)) {
        snprintf(err, errlen, "%s: NUL byte in a text table", path);
        free(buf);
        return NULL;
    }
    return buf;
}

/* table_open_inline - inline:{ k=v, { k = v } }. */
static int table_open_inline(struct table *t, const char *body, char *err, size_t errlen)
{
    size_t len = strlen(body);
    if (len < 2 || body[0] != '{' || body[len - 1] != '}') {
        snprintf(err, errlen, "%s: expected inline:{ key=value, ... }", t->spec);
        return -1;
    }
    char *inner = strndup(body + 1, len - 2);
    char **v = config_list_split(inner);
    free(inner);
    for (size_t i = 0; v[i]; i++) {
        char *item = v[i];
        size_t il = strlen(item);
        if (item[0] == '{' && il >= 2 && item[il - 1] == '}') {
            item[il - 1] = 0;
            item++;
        }
        char *eq = strchr(item, '=');
        if (!eq) {
            snprintf(err, errlen, "%s: '%s' is not key=value", t->spec, v[i]);
            config_list_free(v);
            return -1;
        }
        char *k = item, *ke = eq, *val = eq + 1;
        while (isspace((unsigned char)*k))
            k++;
        while (ke > k && isspace((unsigned char)ke[-1]))
            ke--;
        while (isspace((unsigned char)*val))
            val++;
        size_t vl = strlen(val);
        while (vl > 0 && isspace((unsigned char)val[vl - 1]))
            val[--vl] = 0;
        table_add(t, k, (size_t)(ke - k), val);
    }
    config_list_free(v);
    if (t->n > 0)
        qsort(t->v, t->n, sizeof(*t->v), entry_cmp_order);
    return 0;
}

/* table_open_cidr - cidr_table(5): "pattern result" lines, first match wins. */
static int table_open_cidr(struct table *t, const char *path, char *err, size_t errlen)
{
    char *text = table_read_file(path, err, errlen);
    if (!text)
        return -1;
    int lineno = 0, rc = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line && rc == 0;
         line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        while (isspace((unsigned char)*line))
            line++;
        if (!*line || *line == '#')
            continue;
        char *pe = line;
        while (*pe && !isspace((unsigned char)*pe))
            pe++;
        char *val = pe;
        while (isspace((unsigned char)*val))
            val++;
        *pe = 0;
        char nerr[512];
        struct netlist *nl = netlist_new(path, line, nerr, sizeof(nerr));
        if (!nl || !*val) {
            snprintf(err, errlen, "%s: %s", t->spec, nl ? "pattern without a result" : nerr);
            netlist_free(nl);
            rc = -1;
            break;
        }
        t->rules = realloc(t->rules, (t->nrules + 1) * sizeof(*t->rules));
        if (!t->rules)
            abort();
        t->rules[t->nrules].net = nl;
        t->rules[t->nrules].value = strdup(val);
        t->nrules++;
    }
    free(text);
    return rc;
}

struct table *table_open(const char *spec, char *err, size_t errlen)
{
    const char *colon = strchr(spec, ':');
    if (!colon) {
        snprintf(err, errlen, "'%s' is not type:name", spec);
        return NULL;
    }
    struct table *t = calloc(1, sizeof(*t));
    if (!t)
        abort();
    t->spec = strdup(spec);
    const char *name = colon + 1;
    size_t tlen = (size_t)(colon - spec);
    int rc = 0;
    char path[4096];

#define TYPE_IS(s) (tlen == strlen(s) && strncmp(spec, s, tlen) == 0)
    if (TYPE_IS("texthash")) {
        t->type = TT_MEMORY;
        char *text = table_read_file(name, err, errlen);
        rc = text ? table_parse_text(t, spec, text, err, errlen) : -1;
        free(text);
    } else if (TYPE_IS("inline")) {
        t->type = TT_MEMORY;
        rc = table_open_inline(t, name, err, errlen);
    } else if (TYPE_IS("static")) {
        t->type = TT_STATIC;
        t->result = strdup(name);
    } else if (TYPE_IS("cidr")) {
        t->type = TT_CIDR;
        rc = table_open_cidr(t, name, err, errlen);
    } else if (TYPE_IS("hash") || TYPE_IS("btree")) {
        t->type = TT_DB;
        snprintf(path, sizeof(path), "%s.db", name);
        int e = db_create(&t->db, NULL, 0);
        if (e == 0)
            e = t->db->open(t->db, NULL, path, NULL, TYPE_IS("hash") ? DB_HASH : DB_BTREE,
                            DB_RDONLY, 0);
        if (e != 0) {
            snprintf(err, errlen, "%s: %s (build it with: postmap %s)", path,
                     e > 0 ? strerror(e) : db_strerror(e), spec);
            rc = -1;
        }
    } else if (TYPE_IS("lmdb")) {
        t->type = TT_LMDB;
        snprintf(path, sizeof(path), "%s.lmdb", name);
        MDB_txn *txn = NULL;
        int e = mdb_env_create(&t->env);
        if (e == 0)
            e = mdb_env_open(t->env, path, MDB_RDONLY | MDB_NOSUBDIR | MDB_NOLOCK | MDB_NOTLS,
                             0644);
        if (e == 0)
            e = mdb_txn_begin(t->env, NULL, MDB_RDONLY, &txn);
        if (e == 0)
            e = mdb_dbi_open(txn, NULL, 0, &t->dbi);
        if (e == 0)
            t->txn = txn; /* kept: postmap replaces the file, so this snapshot stays valid */
        else if (txn)
            mdb_txn_abort(txn);
        if (e != 0) {
            snprintf(err, errlen, "%s: %s (build it with: postmap %s)", path, mdb_strerror(e),
                     spec);
            rc = -1;
        }
    } else {
        snprintf(err, errlen,
                 "%s: unsupported table type '%.*s' (supported: texthash, hash, btree, lmdb, "
                 "cidr, inline, static)",
                 spec, (int)tlen, spec);
        rc = -1;
    }
#undef TYPE_IS
    if (rc != 0) {
        table_free(t);
        return NULL;
    }
    if (t->type == TT_DB || t->type == TT_LMDB)
        t->file = strdup(path);
    else if (t->type == TT_MEMORY && name[0] == '/')
        t->file = strdup(name);
    else if (t->type == TT_CIDR)
        t->file = strdup(name);
    if (t->file)
        stat(t->file, &t->seen);
    return t;
}

/* table_db_get - one database lookup of exactly klen bytes. 1 / 0 / -1. */
static int table_db_get(struct table *t, const char *key, size_t klen)
{
    if (t->type == TT_DB) {
        free(t->result);
        t->result = NULL;
        DBT k, v;
        memset(&k, 0, sizeof(k));
        memset(&v, 0, sizeof(v));
        k.data = (void *)key;
        k.size = (u_int32_t)klen;
        int e = t->db->get(t->db, NULL, &k, &v, 0);
        if (e == DB_NOTFOUND)
            return 0;
        if (e != 0)
            return -1;
        t->result = strndup(v.data, v.size);
        return 1;
    }
    MDB_val k = {klen, (void *)key}, v;
    int e = mdb_get(t->txn, t->dbi, &k, &v);
    if (e != 0)
        return e == MDB_NOTFOUND ? 0 : -1;
    /* postmap stores the value with its NUL: point into the map; else copy. */
    if (v.mv_size > 0 && ((const char *)v.mv_data)[v.mv_size - 1] == 0) {
        t->lmdb_value = v.mv_data;
        return 1;
    }
    if (v.mv_size + 1 > t->valcap) {
        t->valcap = v.mv_size + 64;
        t->valbuf = realloc(t->valbuf, t->valcap);
        if (!t->valbuf)
            abort();
    }
    memcpy(t->valbuf, v.mv_data, v.mv_size);
    t->valbuf[v.mv_size] = 0;
    t->lmdb_value = t->valbuf;
    return 1;
}

int table_lookup(struct table *t, const char *key, const char **value)
{
    char folded[1024];
    size_t len = strlen(key);
    if (len >= sizeof(folded))
        return 0;
    for (size_t i = 0; i <= len; i++)
        folded[i] = (char)tolower((unsigned char)key[i]);

    switch (t->type) {
    case TT_STATIC:
        *value = t->result;
        return 1;
    case TT_MEMORY: {
        struct entry probe = {folded, NULL, 0};
        struct entry *e = bsearch(&probe, t->v, t->n, sizeof(*t->v), entry_cmp);
        if (!e)
            return 0;
        while (e > t->v && strcmp(e[-1].key, folded) == 0)
            e--; /* the first of duplicates */
        *value = e->value;
        return 1;
    }
    case TT_CIDR:
        for (size_t i = 0; i < t->nrules; i++) {
            if (netlist_match(t->rules[i].net, key, NULL) == 1) {
                *value = t->rules[i].value;
                return 1;
            }
        }
        return 0;
    case TT_DB:
    case TT_LMDB: {
        int rc = table_db_get(t, folded, len + 1); /* with the NUL postmap usually stores */
        if (rc == 0)
            rc = table_db_get(t, folded, len);
        if (rc == 1)
            *value = t->type == TT_LMDB ? t->lmdb_value : t->result;
        return rc;
    }
    }
    return -1;
}

const char *table_spec(const struct table *t)
{
    return t->spec;
}

/* table_swap_in - take over the contents of fresh (same spec), free the old contents. */
static void table_swap_in(struct table *t, struct table *fresh)
{
    struct table old = *t;
    /* keep the watcher state of t, the data of fresh */
    t->type = fresh->type;
    t->v = fresh->v;
    t->n = fresh->n;
    t->cap = fresh->cap;
    t->rules = fresh->rules;
    t->nrules = fresh->nrules;
    t->db = fresh->db;
    t->env = fresh->env;
    t->dbi = fresh->dbi;
    t->txn = fresh->txn;
    t->result = fresh->result;
    if (fresh->file)
        stat(fresh->file, &t->seen);
    fresh->v = old.v;
    fresh->n = old.n;
    fresh->rules = old.rules;
    fresh->nrules = old.nrules;
    fresh->db = old.db;
    fresh->env = old.env;
    fresh->txn = old.txn;
    fresh->result = old.result;
    table_free(fresh);
}

static void *table_worker(void *arg)
{
    struct table *t = arg;
    t->fresh = table_open(t->spec, t->reload_err, sizeof(t->reload_err));
    atomic_store(&t->worker_done, 1);
    return NULL;
}

int table_refresh(struct table *t, long interval_s, char *msg, size_t msglen)
{
    time_t now = time(NULL);
    if (t->worker_running && atomic_load(&t->worker_done)) {
        pthread_join(t->worker, NULL);
        t->worker_running = 0;
        atomic_store(&t->worker_done, 0);
        if (t->fresh) {
            table_swap_in(t, t->fresh);
            t->fresh = NULL;
            snprintf(msg, msglen, "%s: reloaded (%zu entries)", t->spec, t->n);
            return 1;
        }
        snprintf(msg, msglen, "%s: cannot be reloaded (%s); the last good copy stays in use",
                 t->spec, t->reload_err);
        return -1;
    }
    if (!t->file || t->worker_running || now < t->next_check)
        return 0;
    t->next_check = now + interval_s;
    struct stat st;
    if (stat(t->file, &st) != 0)
        return 0; /* being replaced, or gone: keep the last good copy, look again later */
    if (st.st_ino == t->seen.st_ino && st.st_mtime == t->seen.st_mtime &&
        st.st_size == t->seen.st_size)
        return 0;
    t->seen = st;
    /* Build the new copy off the loop; lookups use the old one until it is ready. */
    if (pthread_create(&t->worker, NULL, table_worker, t) == 0)
        t->worker_running = 1;
    return 0;
}

size_t table_size(const struct table *t)
{
    return t->type == TT_MEMORY ? t->n : t->type == TT_CIDR ? t->nrules : 0;
}

void table_free(struct table *t)
{
    if (!t)
        return;
    if (t->worker_running) {
        pthread_join(t->worker, NULL);
        table_free(t->fresh);
    }
    free(t->file);
    for (size_t i = 0; i < t->n; i++) {
        free(t->v[i].key);
        free(t->v[i].value);
    }
    free(t->v);
    for (size_t i = 0; i < t->nrules; i++) {
        netlist_free(t->rules[i].net);
        free(t->rules[i].value);
    }
    free(t->rules);
    if (t->db)
        t->db->close(t->db, 0);
    if (t->txn)
        mdb_txn_abort(t->txn);
    if (t->env)
        mdb_env_close(t->env);
    free(t->valbuf);
    free(t->result);
    free(t->spec);
    free(t);
}
