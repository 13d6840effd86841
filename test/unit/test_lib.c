/*
 * test_lib.c - lib/log.c and lib/file.c: log lines keep UTF-8 and escape what is not (control
 * characters '?', other bytes \xNN), a log file created as root goes to the daemon's user, the
 * paths a load opened are recorded per thread, and whether another user may read a file is
 * answered as that user (root only: skipped otherwise).
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/lib/file.h"
#include "policyd/lib/log.h"
#include "unit.h"

#include <errno.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[] = "/tmp/test_lib.XXXXXX";

/* last_line - the text of the last line of the log file (after "name[pid]: "). */
static const char *last_line(const char *path)
{
    static char line[8192];
    char buf[8192];
    FILE *fp = fopen(path, "r");
    line[0] = 0;
    if (!fp)
        return line;
    while (fgets(buf, sizeof(buf), fp)) {
        const char *p = strstr(buf, "]: ");
        snprintf(line, sizeof(line), "%s", p ? p + 3 : buf);
    }
    fclose(fp);
    line[strcspn(line, "\n")] = 0;
    return line;
}

static void test_log_text(void)
{
    char path[128], err[256];
    snprintf(path, sizeof(path), "%s/text.log", dir);
    CHECK(log_open("policyd", "mail", path, 0, err, sizeof(err)) == 0);
    log_info("utf-8 kept: caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\xa7");
    CHECK_STR(last_line(path), "utf-8 kept: caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\xa7");
    log_info("latin-1 byte: ex\xe9mple; lone continuation \x80; cut \xe2\x82");
    CHECK_STR(last_line(path),
              "latin-1 byte: ex\\xe9mple; lone continuation \\x80; cut \\xe2\\x82");
    log_info("overlong \xc0\xaf, surrogate \xed\xa0\x80, past U+10FFFF \xf4\x90\x80\x80");
    CHECK_STR(last_line(path), "overlong \\xc0\\xaf, surrogate \\xed\\xa0\\x80, past U+10FFFF "
                               "\\xf4\\x90\\x80\\x80");
    log_info("controls: esc \033[31m tab\t cr\r del\x7f c1 \xc2\x85 end");
    CHECK_STR(last_line(path), "controls: esc ?[31m tab? cr? del? c1 ? end");
    log_warn("%s", "warning: prefix kept");
    CHECK_STR(last_line(path), "warning: warning: prefix kept");
}

static void test_log_owner(void)
{
    struct passwd *pw = getpwnam("policyd");
    if (!pw)
        pw = getpwnam("nobody");
    if (geteuid() != 0 || !pw) {
        printf("# log file ownership: skipped (needs root and a user policyd or nobody)\n");
        return;
    }
    char path[128], err[256];
    struct stat st;
    log_set_owner((long)pw->pw_uid, (long)pw->pw_gid);
    /* Created by us: given to the user, mode 0640. */
    snprintf(path, sizeof(path), "%s/owned.log", dir);
    CHECK(log_open("policyd", "mail", path, 0, err, sizeof(err)) == 0);
    CHECK(stat(path, &st) == 0 && st.st_uid == pw->pw_uid && st.st_gid == pw->pw_gid);
    CHECK((st.st_mode & 0777) == 0640);
    /* An existing one of root's (an older version made it): given too. */
    snprintf(path, sizeof(path), "%s/root.log", dir);
    fclose(fopen(path, "w"));
    CHECK(log_open("policyd", "mail", path, 0, err, sizeof(err)) == 0);
    CHECK(stat(path, &st) == 0 && st.st_uid == pw->pw_uid);
    /* Someone else's (syslog's, say): left alone. */
    snprintf(path, sizeof(path), "%s/other.log", dir);
    fclose(fopen(path, "w"));
    CHECK(chown(path, 4242, 4242) == 0);
    CHECK(log_open("policyd", "mail", path, 0, err, sizeof(err)) == 0);
    CHECK(stat(path, &st) == 0 && st.st_uid == 4242);
    /* Renamed away (logrotate): the next open creates the path again, lines go there. */
    char rotated[160];
    snprintf(rotated, sizeof(rotated), "%s.1", path);
    CHECK(rename(path, rotated) == 0);
    CHECK(log_open("policyd", "mail", path, 0, err, sizeof(err)) == 0);
    log_info("after rotation");
    CHECK_STR(last_line(path), "after rotation");
    CHECK(strcmp(last_line(rotated), "after rotation") != 0);
    log_set_owner(-1, -1);
}

static void *other_thread(void *arg)
{
    char err[256];
    FILE *fp = file_open_regular(arg, err, sizeof(err)); /* not recording on this thread */
    if (fp)
        fclose(fp);
    return NULL;
}

static void test_record(void)
{
    char a[128], b[128], err[256];
    snprintf(a, sizeof(a), "%s/a", dir);
    snprintf(b, sizeof(b), "%s/b.lmdb", dir);
    fclose(fopen(a, "w"));
    file_note_opened("/not/recorded"); /* not recording yet */
    file_record_begin();
    FILE *fp = file_open_regular(a, err, sizeof(err));
    CHECK(fp != NULL);
    fclose(fp);
    fp = file_open_regular(a, err, sizeof(err)); /* twice: recorded once */
    fclose(fp);
    CHECK(file_open_regular("/nonexistent/x", err, sizeof(err)) == NULL); /* failed: not */
    file_note_opened(b);
    pthread_t t;
    char other[128];
    snprintf(other, sizeof(other), "%s/other", dir);
    fclose(fopen(other, "w"));
    pthread_create(&t, NULL, other_thread, other);
    pthread_join(t, NULL);
    size_t n;
    char **v = file_record_end(&n);
    CHECK(n == 2 && v[0] && strcmp(v[0], a) == 0 && v[1] && strcmp(v[1], b) == 0 && !v[2]);
    file_record_free(v);
    v = file_record_end(&n); /* not recording: empty */
    CHECK(n == 0 && v && !v[0]);
    file_record_free(v);
}

static void test_readable_as(void)
{
    const char *user = getpwnam("policyd") ? "policyd" : getpwnam("nobody") ? "nobody" : NULL;
    if (geteuid() != 0 || !user) {
        printf("# readable_as: skipped (needs root and a user policyd or nobody)\n");
        return;
    }
    char open_dir[128], closed_dir[128], secret[160], shared[160], hidden[160], err[256];
    snprintf(open_dir, sizeof(open_dir), "%s/open", dir);
    snprintf(closed_dir, sizeof(closed_dir), "%s/closed", dir);
    mkdir(open_dir, 0755);
    mkdir(closed_dir, 0700);
    chmod(dir, 0755);
    snprintf(secret, sizeof(secret), "%s/secret", open_dir);
    snprintf(shared, sizeof(shared), "%s/shared", open_dir);
    snprintf(hidden, sizeof(hidden), "%s/hidden", closed_dir);
    fclose(fopen(secret, "w"));
    fclose(fopen(shared, "w"));
    fclose(fopen(hidden, "w"));
    chmod(secret, 0600);
    chmod(shared, 0644);
    chmod(hidden, 0644);
    const char *paths[] = {secret, shared, hidden, "/nonexistent/file"};
    int errnos[4] = {-1, -1, -1, -1};
    CHECK(file_readable_as(user, paths, 4, errnos, err, sizeof(err)) == 0);
    CHECK(errnos[0] == EACCES); /* root's 0600 */
    CHECK(errnos[1] == 0);
    CHECK(errnos[2] == EACCES); /* readable, in a directory the user cannot enter */
    CHECK(errnos[3] == ENOENT);
    CHECK(file_readable_as("no-such-user-here", paths, 1, errnos, err, sizeof(err)) == -1 &&
          strstr(err, "no such user"));
    chmod(dir, 0700);
}

int main(void)
{
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_log_text();
    test_log_owner();
    test_record();
    test_readable_as();
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
    return UNIT_END();
}
