/*
 * report.c - the "report" command: options, which files, reading them line by line.
 *
 * Every input goes through zlib's gz* functions, which read gzip and plain files alike. Lines
 * are cut from a fixed buffer; a line longer than REPORT_LINE_MAX is counted and skipped, so
 * memory stays bounded whatever the input (the tally bounds the rest). --since is relative to
 * now (as journalctl's): files last written before it are not even opened. Syslog stamps have
 * no year: each file's modification time (now for standard input) decides it (logline.h).
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/report/report.h"

#include "policyd/lib/xalloc.h"
#include "policyd/report/logline.h"
#include "policyd/report/render.h"
#include "policyd/report/tally.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define REPORT_DEFAULT_LOG "/var/log/mail.log"
#define REPORT_BUFFER (1u << 20)
#define REPORT_LINE_MAX (64u << 10)

static void report_usage(FILE *f)
{
    fprintf(f,
            "usage: policyd report [--since DURATION|DATE] [--top N] [--json] [FILE...]\n"
            "  FILE: plain or gzip mail logs, '-' for standard input (default: %s\n"
            "        and its rotations); DURATION: 30m, 24h, 7d, 2w (before now); DATE:\n"
            "        YYYY-MM-DD[THH:MM[:SS]], today, yesterday\n",
            REPORT_DEFAULT_LOG);
}

/* report_parse_since - the time --since names, or -1. */
static time_t report_parse_since(const char *s, time_t now)
{
    struct tm tm;
    char *end;
    localtime_r(&now, &tm);
    if (strcmp(s, "today") == 0 || strcmp(s, "yesterday") == 0) {
        tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
        tm.tm_mday -= s[0] == 'y';
        tm.tm_isdst = -1;
        return mktime(&tm);
    }
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end != s && s[0] >= '0' && s[0] <= '9' && errno == 0 && end[0] && !end[1]) {
        long unit = end[0] == 's'   ? 1
                    : end[0] == 'm' ? 60
                    : end[0] == 'h' ? 3600
                    : end[0] == 'd' ? 86400
                    : end[0] == 'w' ? 7 * 86400
                                    : 0;
        if (unit && v <= (long)(now / unit))
            return now - v * unit;
        return -1;
    }
    int y, mo, d, h = 0, mi = 0, sec = 0, k = 0;
    if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &k) != 3 || k != 10)
        return -1;
    if (s[10]) {
        int k2 = 0;
        if ((s[10] != 'T' && s[10] != ' ') ||
            (sscanf(s + 11, "%2d:%2d:%2d%n", &h, &mi, &sec, &k2) != 3 &&
             (sec = 0, k2 = 0, sscanf(s + 11, "%2d:%2d%n", &h, &mi, &k2) != 2)) ||
            s[11 + k2])
            return -1;
    }
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return -1;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    tm.tm_isdst = -1;
    return mktime(&tm);
}

/* --- default files --- */

struct rotation {
    char *path;
    time_t mtime;
};

static int rotation_cmp(const void *a, const void *b)
{
    const struct rotation *x = a, *y = b;
    if (x->mtime != y->mtime)
        return x->mtime < y->mtime ? -1 : 1;
    return strcmp(y->path, x->path); /* same second: mail.log.1 before mail.log */
}

/* rotation_suffix - 1 if s is a rotation suffix we read: ".N", ".N.gz", "-DATE", "-DATE.gz"
 * (DATE: digits, as logrotate's dateext writes); 2 if a compression we cannot read. */
static int rotation_suffix(const char *s)
{
    if (s[0] != '.' && s[0] != '-')
        return 0;
    size_t i = 1;
    while (s[i] >= '0' && s[i] <= '9')
        i++;
    if (i == 1)
        return 0;
    if (!s[i] || strcmp(s + i, ".gz") == 0)
        return 1;
    if (strcmp(s + i, ".xz") == 0 || strcmp(s + i, ".bz2") == 0 || strcmp(s + i, ".zst") == 0)
        return 2;
    return 0;
}

char **report_rotations(const char *base, size_t *n)
{
    char *dcopy = xstrdup(base), *bcopy = xstrdup(base);
    const char *dir = dirname(dcopy), *name = basename(bcopy);
    size_t nlen = strlen(name), cap = 0, count = 0;
    struct rotation *r = NULL;
    struct stat st;

    if (stat(base, &st) == 0 && S_ISREG(st.st_mode)) {
        r = xgrow(r, &cap, count + 1, sizeof(*r));
        r[count].path = xstrdup(base);
        r[count++].mtime = st.st_mtime;
    }
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));) {
        if (strncmp(e->d_name, name, nlen) != 0)
            continue;
        int kind = rotation_suffix(e->d_name + nlen);
        char *path = xasprintf("%s/%s", dir, e->d_name);
        if (kind == 2)
            fprintf(stderr, "policyd report: skipping %s: only plain and gzip files are read\n",
                    path);
        if (kind != 1 || stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
            free(path);
            continue;
        }
        r = xgrow(r, &cap, count + 1, sizeof(*r));
        r[count].path = path;
        r[count++].mtime = st.st_mtime;
    }
    if (d)
        closedir(d);
    if (count)
        qsort(r, count, sizeof(*r), rotation_cmp);
    char **out = xcalloc(count + 1, sizeof(*out));
    for (size_t i = 0; i < count; i++)
        out[i] = r[i].path;
    free(r);
    free(dcopy);
    free(bcopy);
    *n = count;
    return out;
}

/* --- reading --- */

struct reader {
    struct tally *tally;
    struct logline_clock clock;
    char *buf;
};

static void report_line(struct reader *rd, const char *line, size_t len)
{
    struct logline l;
    if (len > REPORT_LINE_MAX) {
        tally_too_long(rd->tally);
        return;
    }
    logline_parse(line, len, &rd->clock, &l);
    tally_add(rd->tally, &l, len + 1);
}

/* report_read - every line of one input into the tally. Returns 0, or -1 after saying on
 * standard error what went wrong (the lines before the problem are counted). */
static int report_read(struct reader *rd, const char *name, time_t since)
{
    int fd;
    time_t ref = time(NULL);
    struct stat st;

    if (strcmp(name, "-") == 0) {
        fd = dup(STDIN_FILENO);
    } else {
        fd = open(name, O_RDONLY | O_CLOEXEC);
    }
    if (fd < 0 || fstat(fd, &st) < 0) {
        fprintf(stderr, "policyd report: cannot open %s: %s\n", name, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (S_ISDIR(st.st_mode)) {
        fprintf(stderr, "policyd report: %s is a directory\n", name);
        close(fd);
        return -1;
    }
    if (S_ISREG(st.st_mode) && strcmp(name, "-") != 0) {
        if (since && st.st_mtime < since) {
            /* written to last before --since: nothing in it is newer */
            close(fd);
            return 0;
        }
        if (st.st_mtime > 0)
            ref = st.st_mtime;
    }
    logline_clock_init(&rd->clock, ref);
    gzFile z = gzdopen(fd, "rb");
    if (!z) {
        fprintf(stderr, "policyd report: cannot read %s: out of memory\n", name);
        close(fd);
        return -1;
    }
    gzbuffer(z, 256u << 10);

    size_t have = 0;
    int skipping = 0, rc = 0;
    for (;;) {
        int got = gzread(z, rd->buf + have, (unsigned)(REPORT_BUFFER - have));
        if (got < 0) {
            int err;
            const char *msg = gzerror(z, &err);
            fprintf(stderr, "policyd report: %s: %s (the lines before it are counted)\n", name,
                    err == Z_ERRNO ? strerror(errno) : msg);
            rc = -1;
            got = 0;
        }
        if (got == 0) { /* the end: a last line without its newline still counts */
            if (have && !skipping)
                report_line(rd, rd->buf, have);
            break;
        }
        size_t end = have + (size_t)got, start = 0;
        for (;;) {
            char *nl = memchr(rd->buf + start, '\n', end - start);
            if (!nl)
                break;
            size_t len = (size_t)(nl - (rd->buf + start));
            if (skipping)
                skipping = 0; /* the rest of a line already counted as too long */
            else
                report_line(rd, rd->buf + start, len);
            start += len + 1;
        }
        have = end - start;
        if (have > REPORT_LINE_MAX) { /* no newline in sight: count it, drop until one */
            if (!skipping)
                tally_too_long(rd->tally);
            skipping = 1;
            have = 0;
        } else if (start) {
            memmove(rd->buf, rd->buf + start, have);
        }
    }
    if (gzclose(z) != Z_OK && rc == 0) {
        fprintf(stderr, "policyd report: %s: read error\n", name);
        rc = -1;
    }
    return rc;
}

int report_main(int argc, char **argv)
{
    int json = 0, status = 0;
    time_t now = time(NULL), since = 0;
    size_t top = 5, nfiles = 0;
    char **files = xcalloc((size_t)argc + 1, sizeof(*files));
    char **defaults = NULL;
    int options = 1;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *value = NULL;
        if (options && strcmp(a, "--") == 0) {
            options = 0;
        } else if (options && strcmp(a, "--json") == 0) {
            json = 1;
        } else if (options && (strcmp(a, "--since") == 0 || strncmp(a, "--since=", 8) == 0)) {
            value = a[7] == '=' ? a + 8 : i + 1 < argc ? argv[++i] : NULL;
            since = value ? report_parse_since(value, now) : -1;
            if (since < 0) {
                fprintf(stderr, "policyd report: --since %s: not a duration (24h, 7d) or date\n",
                        value ? value : "needs a value:");
                report_usage(stderr);
                free(files);
                return 2;
            }
        } else if (options && (strcmp(a, "--top") == 0 || strncmp(a, "--top=", 6) == 0)) {
            value = a[5] == '=' ? a + 6 : i + 1 < argc ? argv[++i] : NULL;
            char *end = NULL;
            long v = value ? strtol(value, &end, 10) : 0;
            if (!value || *end || v < 1 || v > TALLY_TOP / 2) {
                fprintf(stderr, "policyd report: --top takes a number from 1 to %d\n",
                        TALLY_TOP / 2);
                free(files);
                return 2;
            }
            top = (size_t)v;
        } else if (options && (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)) {
            report_usage(stdout);
            free(files);
            return 0;
        } else if (options && a[0] == '-' && a[1]) {
            fprintf(stderr, "policyd report: unknown option %s\n", a);
            report_usage(stderr);
            free(files);
            return 2;
        } else {
            files[nfiles++] = argv[i];
        }
    }
    if (!nfiles) {
        defaults = report_rotations(REPORT_DEFAULT_LOG, &nfiles);
        if (!nfiles) {
            fprintf(stderr,
                    "policyd report: %s does not exist; name the log files, or read the "
                    "journal: journalctl -o short-iso --facility=mail | policyd report -\n",
                    REPORT_DEFAULT_LOG);
            free(defaults);
            free(files);
            return 1;
        }
        for (size_t i = 0; i < nfiles; i++)
            files[i] = defaults[i];
    }

    struct reader rd;
    memset(&rd, 0, sizeof(rd));
    rd.tally = tally_new(since);
    rd.buf = xmalloc(REPORT_BUFFER);
    for (size_t i = 0; i < nfiles; i++) {
        if (report_read(&rd, files[i], since) < 0)
            status = 1;
    }
    tally_finish(rd.tally);
    struct render_options o = {(const char *const *)files, nfiles, since, top};
    if (json)
        render_json(stdout, rd.tally, &o);
    else
        render_text(stdout, rd.tally, &o);
    if (fflush(stdout) != 0)
        status = 1;
    tally_free(rd.tally);
    free(rd.buf);
    if (defaults) {
        for (size_t i = 0; defaults[i]; i++)
            free(defaults[i]);
        free(defaults);
    }
    free(files);
    return status;
}
