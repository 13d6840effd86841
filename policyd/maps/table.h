/*
 * table.h - Postfix lookup tables as admins already keep them, read so that one file serves
 * Postfix and policyd: texthash:, hash:, btree:, lmdb:, cidr:, inline:{...}, static:.
 *
 * Keys are folded to lower case as Postfix does for these maps; the trailing NUL postmap stores
 * in hash/btree/lmdb files is dropped. Tables are read whole into memory and hashed when opened
 * (once per configuration load, or off the loop when table_refresh sees the file change).
 */
/* SPDX-License-Identifier: MIT */
#ifndef POLICYD_TABLE_H
#define POLICYD_TABLE_H

#include <stddef.h>

struct table;

/* table_open - open "type:name". NULL with a reason ("texthash:/x: No such file or directory",
 * "unsupported table type 'mysql' (...)") in err. */
struct table *table_open(const char *spec, char *err, size_t errlen);

/* table_lookup - 1 found (*value valid until the next lookup on this table), 0 not found,
 * -1 the table could not be read. cidr: tables take an IP address as key. */
int table_lookup(struct table *t, const char *key, const char **value);

/*
 * table_refresh - call from the loop before lookups: at most every interval_s seconds the
 * table's file is compared (inode, mtime, size) with what was loaded; a change starts a reload
 * in a worker thread, and a finished reload is swapped in here (lookups never see a half-built
 * table and never wait for one). Returns 1 when a new copy was swapped in, -1 when a reload
 * failed (the last good copy stays), 0 otherwise; msg says what happened.
 */
int table_refresh(struct table *t, long interval_s, char *msg, size_t msglen);

/* table_size - entries of an in-memory table (0 for on-disk databases). */
size_t table_size(const struct table *t);

/* table_spec - "type:name" as configured. */
const char *table_spec(const struct table *t);

/* table_free - accepts NULL. */
void table_free(struct table *t);

#endif
