/*
 * table.c - read Postfix lookup tables: texthash (postmap source format), hash/btree (Berkeley
 * DB, as postmap writes them, read with libdb's cursor), lmdb (read with liblmdb's cursor),
 * cidr (first matching network wins), inline:{k=v, ...} and static:value.
 *
 * Key design: every key/value table is read whole into memory at open (and at reload, in a
 * worker thread) and indexed by an open-addressing hash table, so a lookup costs one or two
 * probes whatever the table's size - a B-tree descent through a 100 MB map per recipient was
 * the cost that mattered. Postfix conventions kept: keys folded to lower case; the trailing NUL
 * postmap stores with keys and values dropped; texthash lines are "key whitespace value",
 * '#' comment lines, indented continuation lines; the first of duplicate keys wins.
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/maps/table.h"
#include "policyd/lib/hash.h"

#include "policyd/lib/addr.h"
#include "policyd/lib/plist.h"
#include "policyd/lib/file.h"
#include "policyd/lib/xalloc.h"

#include <ctype.h>
#include <db.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>
#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum table_type { TT_MEMORY, TT_CIDR, TT_STATIC };

struct entry {
    char *key;
    char *value;
    size_t order; /* position in the source: the first of duplicate keys wins */
};

struct cidr_rule {
    struct cidr net;
    char *value;
};

struct table {
    char *spec;
    enum table_type type;
    struct entry *v; /* TT_MEMORY: sorted by key, then source order */
    size_t n, cap;
    struct cidr_rule *rules; /* TT_CIDR */
    size_t nrules;
    uint64_t *index; /* open addressing: hash << 32 | entry number; UINT64_MAX = empty */
    size_t index_mask;
    char *result; /* static: the value */
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
    t->v = xgrow(t->v, &t->cap, t->n + 1, sizeof(*t->v));
    char *k = xstrndup(key, klen);
    for (char *p = k; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    t->v[t->n].key = k;
    t->v[t->n].value = xstrdup(value);
    t->v[t->n].order = t->n;
    t->n++;
}

static int entry_cmp_order(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : (x->order > y->order) - (x->order < y->order);
}

static uint32_t table_hash(const char *key)
{
    return (uint32_t)hash_str(key);
}

/* table_finish_memory - sort (first of duplicate keys wins) and build the hash index, so a
 * lookup costs one or two probes whatever the size. */
static void table_finish_memory(struct table *t)
{
    if (t->n > 0)
        qsort(t->v, t->n, sizeof(*t->v), entry_cmp_order);
    size_t size = 16;
    while (size < 2 * t->n)
        size <<= 1;
    t->index = xreallocarray(NULL, size, sizeof(*t->index));
    memset(t->index, 0xff, size * sizeof(*t->index));
    t->index_mask = size - 1;
    for (size_t i = 0; i < t->n; i++) {
        if (i > 0 && strcmp(t->v[i].key, t->v[i - 1].key) == 0)
            continue; /* a later duplicate: postmap keeps the first */
        uint32_t h = table_hash(t->v[i].key);
        size_t slot = h & t->index_mask;
        while (t->index[slot] != UINT64_MAX)
            slot = (slot + 1) & t->index_mask;
        t->index[slot] = (uint64_t)h << 32 | (uint32_t)i;
    }
}

/* table_load_record - one database record; Postfix stores keys and values with a trailing
 * NUL, which is dropped. */
static void table_load_record(struct table *t, const char *key, size_t klen, const char *val,
                              size_t vlen)
{
    if (klen > 0 && key[klen - 1] == 0)
        klen--;
    if (vlen > 0 && val[vlen - 1] == 0)
        vlen--;
    char *v = xstrndup(val, vlen);
    table_add(t, key, klen, v);
    free(v);
}

/* table_load_lmdb - every record of a "postmap lmdb:" file, read with liblmdb's cursor. */
static int table_load_lmdb(struct table *t, const char *path, char *err, size_t errlen)
{
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_dbi dbi;
    MDB_val k, v;
    int e = mdb_env_create(&env);
    if (e == 0)
        e = mdb_env_open(env, path, MDB_RDONLY | MDB_NOSUBDIR | MDB_NOLOCK | MDB_NOTLS, 0644);
    if (e == 0)
        e = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
    if (e == 0)
        e = mdb_dbi_open(txn, NULL, 0, &dbi);
    if (e == 0)
        e = mdb_cursor_open(txn, dbi, &cur);
    for (int op = MDB_FIRST; e == 0; op = MDB_NEXT) {
        e = mdb_cursor_get(cur, &k, &v, (MDB_cursor_op)op);
        if (e == 0)
            table_load_record(t, k.mv_data, k.mv_size, v.mv_data, v.mv_size);
    }
    if (cur)
        mdb_cursor_close(cur);
    if (txn)
        mdb_txn_abort(txn);
    if (env)
        mdb_env_close(env);
    if (e != MDB_NOTFOUND) {
        snprintf(err, errlen, "%s: %s (build it with: postmap %s)", path, mdb_strerror(e), t->spec);
        return -1;
    }
    return 0;
}

/* table_load_bdb - every record of a "postmap hash:" or "btree:" file (Berkeley DB cursor). */
static int table_load_bdb(struct table *t, const char *path, DBTYPE type, char *err, size_t errlen)
{
    DB *db = NULL;
    DBC *cur = NULL;
    DBT k, v;
    int e = db_create(&db, NULL, 0);
    if (e == 0)
        e = db->open(db, NULL, path, NULL, type, DB_RDONLY, 0);
    if (e == 0)
        e = db->cursor(db, NULL, &cur, 0);
    memset(&k, 0, sizeof(k));
    memset(&v, 0, sizeof(v));
    while (e == 0 && (e = cur->get(cur, &k, &v, DB_NEXT)) == 0)
        table_load_record(t, k.data, k.size, v.data, v.size);
    if (cur)
        cur->close(cur);
    if (db)
        db->close(db, 0);
    if (e != DB_NOTFOUND) {
        snprintf(err, errlen, "%s: %s (build it with: postmap %s)", path,
                 e > 0 ? strerror(e) : db_strerror(e), t->spec);
        return -1;
    }
    return 0;
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
            logical = xrealloc(logical, ll + add + 1);
            memcpy(logical + ll, line, add + 1);
            continue;
        }
        if (logical)
            rc = table_flush(t, path, start, logical, err, errlen);
        free(logical);
        logical = xstrdup(p);
        start = lineno;
    }
    if (logical && rc == 0)
        rc = table_flush(t, path, start, logical, err, errlen);
    free(logical);
    table_finish_memory(t);
    return rc;
}

/* table_read_file - whole file into memory (NUL-terminated). */
static char *table_read_file(const char *path, char *err, size_t errlen)
{
    FILE *fp = file_open_regular(path, err, errlen);
    if (!fp)
        return NULL;
    size_t cap = 65536, n = 0, got;
    char *buf = xmalloc(cap);
    while ((got = fread(buf + n, 1, cap - n - 1, fp)) > 0) {
        n += got;
        if (n + 1 == cap)
            buf = xrealloc(buf, cap *= 2);
    }
    fclose(fp);
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
    char *inner = xstrndup(body + 1, len - 2);
    char **v = plist_split(inner);
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
            plist_free(v);
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
    plist_free(v);
    table_finish_memory(t);
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
        char why[128];
        struct cidr net;
        int prc = cidr_parse(line, &net, why, sizeof(why));
        if (prc != 0 || !*val) {
            if (prc == -1)
                snprintf(why, sizeof(why), "not an address or network/prefix");
            snprintf(err, errlen, "%s: line %d: '%s' %s", t->spec, lineno, line,
                     prc == 0 ? "has no result" : why);
            rc = -1;
            break;
        }
        t->rules = xreallocarray(t->rules, t->nrules + 1, sizeof(*t->rules));
        t->rules[t->nrules].net = net;
        t->rules[t->nrules].value = xstrdup(val);
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
    struct table *t = xcalloc(1, sizeof(*t));
    t->spec = xstrdup(spec);
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
        t->result = xstrdup(name);
    } else if (TYPE_IS("cidr")) {
        t->type = TT_CIDR;
        rc = table_open_cidr(t, name, err, errlen);
    } else if (TYPE_IS("hash") || TYPE_IS("btree")) {
        /* Read whole into memory: one probe per lookup, whatever the size. */
        t->type = TT_MEMORY;
        snprintf(path, sizeof(path), "%s.db", name);
        rc = table_load_bdb(t, path, TYPE_IS("hash") ? DB_HASH : DB_BTREE, err, errlen);
        if (rc == 0)
            table_finish_memory(t);
    } else if (TYPE_IS("lmdb")) {
        t->type = TT_MEMORY;
        snprintf(path, sizeof(path), "%s.lmdb", name);
        rc = table_load_lmdb(t, path, err, errlen);
        if (rc == 0)
            table_finish_memory(t);
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
    if (strncmp(spec, "lmdb:", 5) == 0 || strncmp(spec, "hash:", 5) == 0 ||
        strncmp(spec, "btree:", 6) == 0)
        t->file = xstrdup(path);
    else if (t->type == TT_MEMORY && name[0] == '/')
        t->file = xstrdup(name);
    else if (t->type == TT_CIDR)
        t->file = xstrdup(name);
    if (t->file) {
        stat(t->file, &t->seen);
        file_note_opened(t->file); /* lmdb and Berkeley DB open theirs themselves */
    }
    return t;
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
        /* The stored hash spares a visit to the key of every other entry on the way. */
        uint32_t h = table_hash(folded);
        for (size_t slot = h & t->index_mask; t->index[slot] != UINT64_MAX;
             slot = (slot + 1) & t->index_mask) {
            if ((uint32_t)(t->index[slot] >> 32) != h)
                continue;
            const struct entry *e = &t->v[(uint32_t)t->index[slot]];
            if (strcmp(e->key, folded) == 0) {
                *value = e->value;
                return 1;
            }
        }
        return 0;
    }
    case TT_CIDR: {
        int family;
        unsigned char a[16];
        if (addr_parse(key, &family, a) != 0)
            return 0;
        for (size_t i = 0; i < t->nrules; i++) {
            if (cidr_match(&t->rules[i].net, family, a)) {
                *value = t->rules[i].value;
                return 1;
            }
        }
        return 0;
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
    t->index = fresh->index;
    t->index_mask = fresh->index_mask;
    t->result = fresh->result;
    if (fresh->file)
        stat(fresh->file, &t->seen);
    fresh->v = old.v;
    fresh->n = old.n;
    fresh->rules = old.rules;
    fresh->nrules = old.nrules;
    fresh->index = old.index;
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
        free(t->rules[i].value);
    }
    free(t->rules);
    free(t->index);
    free(t->result);
    free(t->spec);
    free(t);
}
