/*
 * table.h - Postfix lookup tables as admins already keep them, read so that one file serves
 * Postfix and policyd: texthash:, hash:, btree:, lmdb:, cidr:, inline:{...}, static:.
 *
 * Keys are folded to lower case as Postfix does for these maps; hash/btree/lmdb files built by
 * postmap are looked up with and without the trailing NUL Postfix may store. A table is opened
 * once per configuration load (at start and on reload, never per request).
 */
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

/* table_spec - "type:name" as configured. */
const char *table_spec(const struct table *t);

/* table_free - accepts NULL. */
void table_free(struct table *t);

#endif
