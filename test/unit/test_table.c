/*
 * test_table.c - Postfix lookup tables built by the real postmap(1) (texthash source, hash,
 * lmdb), and cidr, inline and static tables, read with Postfix's key conventions.
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/maps/table.h"
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[] = "/tmp/test_table.XXXXXX";

/* lookup - the value for key in table spec, or "(none)" / "(error)". */
static const char *lookup(struct table *t, const char *key)
{
    const char *v;
    int rc = table_lookup(t, key, &v);
    return rc == 1 ? v : rc == 0 ? "(none)" : "(error)";
}

static void check_source_table(const char *type)
{
    char spec[512], err[512];
    snprintf(spec, sizeof(spec), "%s:%s/vmailbox", type, dir);
    struct table *t = table_open(spec, err, sizeof(err));
    CHECK(t != NULL);
    if (!t) {
        fprintf(stderr, "%s: %s\n", spec, err);
        return;
    }
    CHECK_STR(lookup(t, "alice@example.com"), "example.com/alice/");
    CHECK_STR(lookup(t, "Alice@Example.COM"), "example.com/alice/"); /* folded */
    CHECK_STR(lookup(t, "bob@example.com"), "example.com/bob/ with space");
    CHECK_STR(lookup(t, "carol@example.com"), "continued   value here"); /* as postmap */
    CHECK_STR(lookup(t, "@example.net"), "catchall/");
    CHECK_STR(lookup(t, "nobody@example.com"), "(none)");
    CHECK_STR(lookup(t, "alice@example.co"), "(none)");
    table_free(t);
}

int main(void)
{
    char cmd[1024], path[512], err[512];
    if (!mkdtemp(dir))
        return 1;
    /* postmap needs a Postfix configuration directory; a minimal one of our own. */
    snprintf(path, sizeof(path), "%s/main.cf", dir);
    FILE *fp = fopen(path, "w");
    fprintf(fp, "compatibility_level = 3.6\n");
    fclose(fp);
    snprintf(path, sizeof(path), "%s/vmailbox", dir);
    fp = fopen(path, "w");
    fprintf(fp, "# virtual mailboxes\nalice@example.com example.com/alice/\n"
                "Bob@Example.com   example.com/bob/ with space\n\n"
                "carol@example.com continued\n   value here\n"
                "@example.net catchall/\nalice@example.com duplicate-ignored\n");
    fclose(fp);
    check_source_table("texthash");
    snprintf(cmd, sizeof(cmd),
             "postmap -c %s hash:%s/vmailbox 2>&1 && postmap -c %s lmdb:%s/vmailbox 2>&1", dir, dir,
             dir, dir);
    int rc = system(cmd);
    CHECK(rc == 0);
    if (rc == 0) {
        check_source_table("hash");
        check_source_table("lmdb");
    }

    snprintf(path, sizeof(path), "%s/clients.cidr", dir);
    fp = fopen(path, "w");
    fprintf(fp, "# cidr\n192.0.2.0/24 first\n192.0.2.7 never-reached\n[2001:db8::]/32 six\n");
    fclose(fp);
    snprintf(path, sizeof(path), "cidr:%s/clients.cidr", dir);
    struct table *t = table_open(path, err, sizeof(err));
    CHECK(t != NULL);
    if (t) {
        CHECK_STR(lookup(t, "192.0.2.7"), "first");
        CHECK_STR(lookup(t, "::ffff:192.0.2.9"), "first");
        CHECK_STR(lookup(t, "2001:db8::25"), "six");
        CHECK_STR(lookup(t, "198.51.100.1"), "(none)");
        table_free(t);
    }
    t = table_open("inline:{ a@example.com=one, { b@example.com = two words } }", err, sizeof(err));
    CHECK(t && strcmp(lookup(t, "A@example.com"), "one") == 0 &&
          strcmp(lookup(t, "b@example.com"), "two words") == 0 &&
          strcmp(lookup(t, "c@example.com"), "(none)") == 0);
    table_free(t);
    t = table_open("static:OK", err, sizeof(err));
    CHECK(t && strcmp(lookup(t, "anything"), "OK") == 0);
    table_free(t);

    CHECK(table_open("texthash:/nonexistent/vmailbox", err, sizeof(err)) == NULL);
    CHECK(strstr(err, "/nonexistent/vmailbox") && strstr(err, "No such file"));
    CHECK(table_open("lmdb:/nonexistent/vmailbox", err, sizeof(err)) == NULL);
    CHECK(strstr(err, "postmap lmdb:/nonexistent/vmailbox") != NULL);
    CHECK(table_open("mysql:/etc/x.cf", err, sizeof(err)) == NULL);
    CHECK(strstr(err, "unsupported table type 'mysql'") != NULL);
    CHECK(table_open("inline:{ novalue }", err, sizeof(err)) == NULL);
    snprintf(path, sizeof(path), "%s/bad", dir);
    fp = fopen(path, "w");
    fprintf(fp, "  leading continuation\n");
    fclose(fp);
    snprintf(path, sizeof(path), "texthash:%s/bad", dir);
    CHECK(table_open(path, err, sizeof(err)) == NULL);
    CHECK(strstr(err, "line 1: continuation line without a key") != NULL);

    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        return 1;
    return UNIT_END();
}
