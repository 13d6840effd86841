/*
 * test_maildirsize.c - the Maildir++ quota file parser: quota forms, negative lines, partial
 * last line, garbled input, the recalculation rules, and the over-quota decision; the bounded
 * read of a mailbox's file (a mailbox without one has no quota and is no error).
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/mail/maildirsize.h"
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* test_read - maildirsize_read on a mailbox made in a temporary directory. */
static void test_read(void)
{
    char dir[] = "/tmp/test_maildirsize.XXXXXX", path[128], err[256];
    struct maildirsize m;
    if (!mkdtemp(dir)) {
        CHECK(!"mkdtemp");
        return;
    }
    time_t now = time(NULL);
    /* No maildirsize (Postfix's virtual(8) writes none), no mailbox at all: silent, no quota. */
    err[0] = 0;
    CHECK(maildirsize_read(dir, now, &m, err, sizeof(err)) == 0 && !err[0]);
    CHECK(!maildirsize_over(&m, 1 << 30));
    snprintf(path, sizeof(path), "%s/nosuch/", dir);
    CHECK(maildirsize_read(path, now, &m, err, sizeof(err)) == 0);
    /* A file: read and parsed (a trailing slash on the mailbox is fine). */
    snprintf(path, sizeof(path), "%s/maildirsize", dir);
    FILE *fp = fopen(path, "w");
    fputs("1000S,10C\n600 2\n500 1\n", fp);
    fclose(fp);
    snprintf(path, sizeof(path), "%s/", dir);
    CHECK(maildirsize_read(path, now, &m, err, sizeof(err)) == 1);
    CHECK(m.quota_bytes == 1000 && m.used_bytes == 1100 && !m.stale && maildirsize_over(&m, 0));
    /* Garbled: an error naming the file. */
    snprintf(path, sizeof(path), "%s/maildirsize", dir);
    fp = fopen(path, "w");
    fputs("lots\n", fp);
    fclose(fp);
    CHECK(maildirsize_read(dir, now, &m, err, sizeof(err)) == -1 && strstr(err, path));
    /* Longer than the read bound: due for recalculation, never a decision. */
    fp = fopen(path, "w");
    fputs("1000S\n", fp);
    for (int i = 0; i < 2000; i++)
        fputs("10 1\n", fp);
    fclose(fp);
    CHECK(maildirsize_read(dir, now, &m, err, sizeof(err)) == 1 && m.stale);
    /* A FIFO in its place is refused at once, not waited on. */
    unlink(path);
    CHECK(mkfifo(path, 0600) == 0);
    CHECK(maildirsize_read(dir, now, &m, err, sizeof(err)) == -1 &&
          strstr(err, "not a regular file"));
    unlink(path);
    rmdir(dir);
}

static int parse(const char *text, long age, struct maildirsize *m)
{
    char err[128];
    return maildirsize_parse(text, strlen(text), age, m, err, sizeof(err));
}

int main(void)
{
    struct maildirsize m;
    CHECK(parse("1000000S,1000C\n1200 2\n-200 -1\n5000 3\n", 0, &m) == 0);
    CHECK(m.quota_bytes == 1000000 && m.quota_messages == 1000);
    CHECK(m.used_bytes == 6000 && m.used_messages == 4 && !m.stale);
    CHECK(!maildirsize_over(&m, 10000));
    CHECK(maildirsize_over(&m, 999000));

    CHECK(parse("5000S\n4000 1\n", 0, &m) == 0 && m.quota_messages == 0);
    CHECK(!maildirsize_over(&m, 1000) && maildirsize_over(&m, 1001));
    CHECK(parse("10C\n100 10\n", 0, &m) == 0 && m.quota_bytes == 0);
    CHECK(maildirsize_over(&m, 0)); /* message count full */
    CHECK(parse("0S,0C\n100 10\n", 0, &m) == 0 && !maildirsize_over(&m, 1 << 30)); /* no limit */
    CHECK(parse("1000S\n", 0, &m) == 0 && m.used_bytes == 0);

    /* A last line still being written is ignored. */
    CHECK(parse("1000S\n100 1\n9999", 0, &m) == 0 && m.used_bytes == 100);

    /* Garbled. */
    CHECK(parse("", 0, &m) == -1);
    CHECK(parse("1000S", 0, &m) == -1);
    CHECK(parse("lots\n1 1\n", 0, &m) == -1);
    CHECK(parse("1000X\n", 0, &m) == -1);
    CHECK(parse("1000S,\n", 0, &m) == 0);
    CHECK(parse("1000S\n12 abc\n", 0, &m) == -1);
    CHECK(parse("1000S\n12\n", 0, &m) == -1);
    CHECK(parse("1000S\n12 1 junk\n", 0, &m) == -1);

    /* Hostile sizes saturate instead of overflowing (found by fuzz_maildirsize under UBSan). */
    CHECK(parse("1000S\n9000000000000000000 1\n9000000000000000000 1\n", 0, &m) == 0);
    CHECK(m.used_bytes > 0 && maildirsize_over(&m, 9000000000000000000LL));
    CHECK(parse("1000S\n-9000000000000000000 1\n-9000000000000000000 1\n", 0, &m) == 0);
    CHECK(m.used_bytes < 0 && !maildirsize_over(&m, 9000000000000000000LL));

    /* Recalculation due: over 5120 bytes, or over quota and older than 15 minutes. */
    char big[6000] = "1000000S\n";
    while (strlen(big) < 5200)
        strcat(big, "10 1\n");
    CHECK(parse(big, 0, &m) == 0 && m.stale);
    CHECK(parse("100S\n200 1\n", 60, &m) == 0 && !m.stale && maildirsize_over(&m, 0));
    CHECK(parse("100S\n200 1\n", 16 * 60, &m) == 0 && m.stale);
    CHECK(parse("1000S\n200 1\n", 16 * 60, &m) == 0 && !m.stale);
    test_read();
    return UNIT_END();
}
