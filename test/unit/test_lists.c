/*
 * test_lists.c - network and domain lists: Postfix's matching rules, files, negation, errors;
 * client lists in postgrey's whitelist_clients format: Debian's own file loads and matches as
 * postgrey matches it (Perl's \d really a digit), every unreadable line refused with PATH:LINE.
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/maps/clientlist.h"
#include "policyd/maps/domainlist.h"
#include "policyd/maps/netlist.h"
#include "unit.h"
#include "policyd/lib/addr.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void test_netlist(void)
{
    char err[512];
    const char *entry;
    struct netlist *nl = netlist_new("mynetworks",
                                     "127.0.0.0/8, [::1]/128 10.1.0.0/16 !192.0.2.66 192.0.2.0/24 "
                                     "[::ffff:198.51.100.0]/120 2001:db8::/32 203.0.113.9",
                                     err, sizeof(err));
    CHECK(nl != NULL);
    CHECK(netlist_match(nl, "127.0.0.1", &entry) == 1);
    CHECK_STR(entry, "127.0.0.0/8");
    CHECK(netlist_match(nl, "128.0.0.1", NULL) == 0);
    CHECK(netlist_match(nl, "::1", &entry) == 1);
    CHECK(netlist_match(nl, "::2", NULL) == 0);
    CHECK(netlist_match(nl, "::ffff:10.1.200.3", &entry) == 1); /* mapped IPv4 */
    CHECK_STR(entry, "10.1.0.0/16");
    CHECK(netlist_match(nl, "10.2.0.1", NULL) == 0);
    CHECK(netlist_match(nl, "192.0.2.66", &entry) == 0); /* negated: an early no */
    CHECK_STR(entry, "!192.0.2.66");
    CHECK(netlist_match(nl, "192.0.2.67", NULL) == 1);
    CHECK(netlist_match(nl, "198.51.100.77", &entry) == 1); /* mapped network entry */
    CHECK(netlist_match(nl, "2001:DB8:1::5", NULL) == 1);
    CHECK(netlist_match(nl, "2001:db9::5", NULL) == 0);
    CHECK(netlist_match(nl, "203.0.113.9", NULL) == 1);
    CHECK(netlist_match(nl, "203.0.113.10", NULL) == 0);
    CHECK(netlist_match(nl, "not-an-address", NULL) == -1);
    netlist_free(nl);

    nl = netlist_new("mynetworks", "0.0.0.0/0", err, sizeof(err));
    CHECK(nl && netlist_match(nl, "203.0.113.1", NULL) == 1 && netlist_match(nl, "::1", NULL) == 0);
    netlist_free(nl);

    CHECK(netlist_new("mynetworks", "10.0.0.1/8", err, sizeof(err)) == NULL);
    CHECK_STR(err, "mynetworks: '10.0.0.1/8' has host bits set: use 10.0.0.0/8");
    CHECK(netlist_new("mynetworks", "[2001:db8::1]/32", err, sizeof(err)) == NULL);
    CHECK_STR(err, "mynetworks: '[2001:db8::1]/32' has host bits set: use [2001:db8::]/32");
    CHECK(netlist_new("mynetworks", "10.0.0.0/33", err, sizeof(err)) == NULL);
    CHECK(netlist_new("mynetworks", "10.0.0.0/", err, sizeof(err)) == NULL);
    CHECK(netlist_new("mynetworks", "300.1.1.1", err, sizeof(err)) == NULL);
    CHECK(netlist_new("mynetworks", "[::1", err, sizeof(err)) == NULL);

    /* /file entries */
    char path[] = "/tmp/test_lists.XXXXXX";
    int fd = mkstemp(path);
    FILE *fp = fdopen(fd, "w");
    fprintf(fp, "# trusted\n172.16.0.0/12 # office\n\n  [fd00::]/8, 100.64.0.1\n");
    fclose(fp);
    char value[256];
    snprintf(value, sizeof(value), "127.0.0.0/8 %s", path);
    nl = netlist_new("mynetworks", value, err, sizeof(err));
    CHECK(nl != NULL);
    CHECK(nl && netlist_match(nl, "172.20.1.1", NULL) == 1);
    CHECK(nl && netlist_match(nl, "fd12::1", NULL) == 1);
    CHECK(nl && netlist_match(nl, "100.64.0.1", NULL) == 1);
    CHECK(nl && netlist_match(nl, "100.64.0.2", NULL) == 0);
    netlist_free(nl);
    unlink(path);
    CHECK(netlist_new("mynetworks", "/nonexistent/file", err, sizeof(err)) == NULL);

    CHECK_STR(addr_private_kind("172.17.0.1"), "Docker bridge gateway (172.17.0.0/16)");
    CHECK_STR(addr_private_kind("::ffff:192.168.4.4"), "RFC 1918 private (192.168.0.0/16)");
    CHECK(addr_private_kind("203.0.113.7") == NULL);
    CHECK_STR(addr_private_kind("172.31.255.255"), "RFC 1918 private (172.16.0.0/12)");
    CHECK(addr_private_kind("172.32.0.1") == NULL);
    /* addr_network: the network of an address at the IPv4 / IPv6 prefix lengths. */
    static const struct {
        const char *addr;
        unsigned v4, v6;
        const char *want; /* NULL: not an address */
    } nets[] = {
        {"203.0.113.77", 24, 64, "203.0.113.0/24"},
        {"198.51.100.200", 25, 64, "198.51.100.128/25"},
        {"::ffff:192.0.2.9", 16, 64, "192.0.0.0/16"},
        {"2001:db8:1:2:3:4:5:6", 24, 64, "2001:db8:1:2::/64"},
        {"2001:db8:ff::1", 24, 36, "2001:db8::/36"},
        {"10.1.2.3", 0, 0, "0.0.0.0/0"},
        {"not an address", 24, 64, NULL},
        {"255.255.255.255", 32, 64, "255.255.255.255/32"},
        {"10.0.9.99", 31, 64, "10.0.9.98/31"},
        {"2001:db8::1", 24, 128, "2001:db8::1/128"},
    };
    char net[64];
    for (size_t i = 0; i < sizeof(nets) / sizeof(nets[0]); i++) {
        int rc = addr_network(nets[i].addr, nets[i].v4, nets[i].v6, net, sizeof(net));
        CHECK(rc == (nets[i].want ? 0 : -1));
        if (nets[i].want)
            CHECK_STR(net, nets[i].want);
    }
    char small[8]; /* cut like snprintf */
    CHECK(addr_network("203.0.113.77", 24, 64, small, sizeof(small)) == 0);
    CHECK_STR(small, "203.0.1");
    CHECK_STR(addr_private_kind("100.127.0.1"), "carrier-grade NAT (100.64.0.0/10)");
    CHECK(addr_private_kind("100.128.0.1") == NULL);
    CHECK_STR(addr_private_kind("::1"), "loopback (::1)");
    CHECK(addr_private_kind("::2") == NULL);
    CHECK_STR(addr_private_kind("fd00::1"), "IPv6 unique-local (fc00::/7)");
    CHECK_STR(addr_private_kind("febf::1"), "IPv6 link-local (fe80::/10)");
    CHECK(addr_private_kind("fec0::1") == NULL);
}

static void test_domainlist(void)
{
    char err[512];
    const char *entry;
    struct domainlist *dl =
        domainlist_new("mydestination", "Example.NET, .example.org !bad.example.com example.com", 0,
                       err, sizeof(err));
    CHECK(dl != NULL);
    CHECK(domainlist_match(dl, "example.net", &entry) == 1);
    CHECK_STR(entry, "example.net");
    CHECK(domainlist_match(dl, "EXAMPLE.net.", NULL) == 1);    /* case, trailing dot */
    CHECK(domainlist_match(dl, "sub.example.net", NULL) == 0); /* not parent style */
    CHECK(domainlist_match(dl, "a.b.example.org", &entry) == 1);
    CHECK_STR(entry, ".example.org");
    CHECK(domainlist_match(dl, "example.org", NULL) == 0); /* ".x" means subdomains only */
    CHECK(domainlist_match(dl, "bad.example.com", &entry) == 0);
    CHECK_STR(entry, "!bad.example.com");
    CHECK(domainlist_match(dl, "example.com", NULL) == 1);
    CHECK(domainlist_match(dl, "", NULL) == 0);
    CHECK(domainlist_match(dl, "xexample.net", NULL) == 0);
    domainlist_free(dl);

    dl = domainlist_new("relay_domains", "example.com", 1, err, sizeof(err));
    CHECK(dl && domainlist_match(dl, "mx.sub.example.com", NULL) == 1); /* parent style */
    CHECK(dl && domainlist_match(dl, "notexample.com", NULL) == 0);
    domainlist_free(dl);

    dl = domainlist_new("relay_domains", "", 1, err, sizeof(err));
    CHECK(dl && domainlist_empty(dl) && domainlist_match(dl, "example.com", NULL) == 0);
    domainlist_free(dl);

    CHECK(domainlist_new("relay_domains", "exa mple.com !", 0, err, sizeof(err)) == NULL);
    CHECK(domainlist_new("relay_domains", "bad/name", 0, err, sizeof(err)) == NULL);
}

/* clientlist_file - a client list from text written to a temporary file; NULL + err. */
static struct clientlist *clientlist_file(const char *text, char *path, size_t pathlen, char *err,
                                          size_t errlen)
{
    snprintf(path, pathlen, "/tmp/test_clientlist.XXXXXX");
    int fd = mkstemp(path);
    FILE *fp = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!fp)
        return NULL;
    fputs(text, fp);
    fclose(fp);
    struct clientlist *cl = clientlist_load(path, err, errlen);
    unlink(path);
    return cl;
}

/* refused - the reason a one-entry file with line (after two good lines) is refused, without
 * the temporary path; "(loaded)" if it is not. */
static const char *refused(const char *line)
{
    static char err[1024];
    char path[64], text[512];
    snprintf(text, sizeof(text), "# comment\nexample.com\n%s\n", line);
    struct clientlist *cl = clientlist_file(text, path, sizeof(path), err, sizeof(err));
    if (cl) {
        clientlist_free(cl);
        return "(loaded)";
    }
    size_t n = strlen(path);
    return strncmp(err, path, n) == 0 ? err + n : err;
}

static void test_clientlist(void)
{
    char err[1024];
    const char *entry = NULL;
    const char *debian = "test/data/postgrey/whitelist_clients";
    struct clientlist *cl = clientlist_load(debian, err, sizeof(err));
    CHECK(cl != NULL);
    if (!cl) {
        fprintf(stderr, "  %s\n", err);
        return;
    }
    CHECK(clientlist_count(cl) == 164); /* every entry line of Debian's file */
    /* Names: the name and names under it, any case; never an unverified client. */
    CHECK(clientlist_match(cl, "debian.org", "198.51.100.1", &entry) == 1);
    CHECK_STR(entry, "test/data/postgrey/whitelist_clients:12: debian.org");
    CHECK(clientlist_match(cl, "Master.Debian.ORG", "198.51.100.1", NULL) == 1);
    CHECK(clientlist_match(cl, "notdebian.org", "198.51.100.1", NULL) == 0);
    CHECK(clientlist_match(cl, "debian.org.evil.example", "198.51.100.1", NULL) == 0);
    CHECK(clientlist_match(cl, "unknown", "198.51.100.1", NULL) == 0);
    CHECK(clientlist_match(cl, NULL, "198.51.100.1", NULL) == 0);
    /* Regexes: Perl's \d is a digit (glibc's regcomp would read it as a 'd'). */
    CHECK(clientlist_match(cl, "sv12pub.verizon.net", "198.51.100.1", &entry) == 1);
    CHECK_STR(entry, "test/data/postgrey/whitelist_clients:52: /^s[cv]\\d+pub\\.verizon\\.net$/");
    CHECK(clientlist_match(cl, "svdpub.verizon.net", "198.51.100.1", NULL) == 0);
    CHECK(clientlist_match(cl, "sv12pub.verizon.net.example", "198.51.100.1", NULL) == 0);
    /* (?:...), \w, case: /^(?:smtp\w*|postfix)[0-9]+-g[0-9]+\.free\.fr$/ */
    CHECK(clientlist_match(cl, "smtp5-g21.free.fr", "198.51.100.1", NULL) == 1);
    CHECK(clientlist_match(cl, "SMTPOUT2-G7.FREE.FR", "198.51.100.1", NULL) == 1);
    CHECK(clientlist_match(cl, "postfix3-g2.free.fr", "198.51.100.1", NULL) == 1);
    CHECK(clientlist_match(cl, "smtp-g21.free.fr", "198.51.100.1", NULL) == 0);
    /* A lazy quantifier: /^.*?.server.arvato-systems.de$/ */
    CHECK(clientlist_match(cl, "mx1.server.arvato-systems.de", "198.51.100.1", &entry) == 1);
    CHECK_STR(entry, "test/data/postgrey/whitelist_clients:194: /^.*?.server.arvato-systems.de$/");
    /* Addresses: three numbers are a /24, networks, IPv6; the name does not matter. */
    CHECK(clientlist_match(cl, NULL, "195.235.39.200", &entry) == 1);
    CHECK_STR(entry, "test/data/postgrey/whitelist_clients:107: 195.235.39");
    CHECK(clientlist_match(cl, "unknown", "195.235.40.1", NULL) == 0);
    CHECK(clientlist_match(cl, NULL, "51.4.80.31", &entry) == 1);
    CHECK_STR(entry, "test/data/postgrey/whitelist_clients:278: 51.4.80.0/27");
    CHECK(clientlist_match(cl, NULL, "51.4.80.32", NULL) == 0);
    CHECK(clientlist_match(cl, NULL, "2a01:4180:4051:800::25", &entry) == 1);
    CHECK_STR(entry, "test/data/postgrey/whitelist_clients:280: 2a01:4180:4051:0800::/64");
    CHECK(clientlist_match(cl, NULL, "2a01:4180:4051:801::25", NULL) == 0);
    CHECK(clientlist_match(cl, NULL, "::ffff:198.2.130.9", NULL) == 1); /* 198.2.128.0/18 */
    CHECK(clientlist_match(cl, "mail.example.org", "not-an-address", NULL) == 0);
    clientlist_free(cl);

    /* Our own lines: what the translation must get right, and postgrey's forms. */
    char path[64];
    cl = clientlist_file("  Mail.Example.COM   # trailing comment\n"
                         "\t/^out[\\d-]+\\.pool\\.example$/\n"
                         "/\\Aa{2,3}b\\.x\\.example\\z/\n"
                         "/^[\\]x]\\.y\\.example$/\n"
                         "/^w\\W\\S\\D\\.z\\.example$/\n"
                         "/^m.+?\\.example$/\n"
                         "/^brace{\\.example$/\n"
                         "10.1\n"
                         "192.0.2.77/24\n"
                         "2001:db8::/32\n",
                         path, sizeof(path), err, sizeof(err));
    CHECK(cl != NULL && clientlist_count(cl) == 10);
    CHECK(clientlist_match(cl, "smtp.mail.example.com", NULL, NULL) == 1);
    CHECK(clientlist_match(cl, "out12-3.pool.example", NULL, NULL) == 1);
    CHECK(clientlist_match(cl, "outd.pool.example", NULL, NULL) == 0);
    CHECK(clientlist_match(cl, "aab.x.example", NULL, NULL) == 1);
    CHECK(clientlist_match(cl, "ab.x.example", NULL, NULL) == 0);
    CHECK(clientlist_match(cl, "aaaab.x.example", NULL, NULL) == 0);
    CHECK(clientlist_match(cl, "].y.example", NULL, NULL) == 1);
    CHECK(clientlist_match(cl, "x.y.example", NULL, NULL) == 1);
    CHECK(clientlist_match(cl, "w-aa.z.example", NULL, NULL) == 1);
    CHECK(clientlist_match(cl, "w-a1.z.example", NULL, NULL) == 0);
    CHECK(clientlist_match(cl, "mx.example", NULL, NULL) == 1);
    CHECK(clientlist_match(cl, "brace{.example", NULL, NULL) == 1);
    CHECK(clientlist_match(cl, NULL, "10.1.255.3", NULL) == 1); /* two numbers: a /16 */
    CHECK(clientlist_match(cl, NULL, "10.2.0.1", NULL) == 0);
    CHECK(clientlist_match(cl, NULL, "192.0.2.1", NULL) == 1); /* host bits ignored */
    CHECK(clientlist_match(cl, NULL, "2001:db8:ffff::1", NULL) == 1);
    clientlist_free(cl);
    cl = clientlist_file("# nothing but comments\n\n   \n", path, sizeof(path), err, sizeof(err));
    CHECK(cl != NULL && clientlist_count(cl) == 0);
    CHECK(clientlist_match(cl, "a.example", "192.0.2.1", NULL) == 0);
    clientlist_free(cl);

    /* Every line that cannot be read refuses the file, with its line number. */
    CHECK_STR(refused("good.example"), "(loaded)");
    CHECK(strstr(refused("/foo(/"), ":3: '/foo(/': bad regular expression: ") != NULL);
    CHECK_STR(refused("/(?=x)y/"),
              ":3: '/(?=x)y/': Perl's (?=...) has no POSIX form (only (?:...) is translated)");
    CHECK_STR(refused("/a\\p{L}/"), ":3: '/a\\p{L}/': Perl's \\p has no POSIX form");
    CHECK_STR(refused("/[\\W]/"),
              ":3: '/[\\W]/': \\W inside [...] has no POSIX form: write the class out");
    CHECK_STR(refused("/a*+/"),
              ":3: '/a*+/': possessive quantifiers (*+ ++ ?+) have no POSIX form");
    CHECK_STR(refused("/a[b/"), ":3: '/a[b/': '[' without its ']'");
    CHECK_STR(refused("300.1.2.3"), ":3: '300.1.2.3': '300.1.2.3' is not an IP address");
    CHECK_STR(refused("192.0.2.0/33"), ":3: '192.0.2.0/33': bad prefix length '33' (0..32)");
    CHECK_STR(refused("2001:db8::zz"), ":3: '2001:db8::zz': '2001:db8::zz' is not an IP address");
    CHECK_STR(refused("/a b/"),
              ":3: '/a b/': does not look like a hostname, an address, a network or a /regex/");
    CHECK_STR(
        refused("192.0.2/24"),
        ":3: '192.0.2/24': does not look like a hostname, an address, a network or a /regex/");
    CHECK_STR(refused("1.2.3.4.5"),
              ":3: '1.2.3.4.5': does not look like a hostname, an address, a network or a /regex/");
    CHECK(clientlist_load("/nonexistent/whitelist_clients", err, sizeof(err)) == NULL);
    CHECK(strncmp(err, "/nonexistent/whitelist_clients: ", 32) == 0);
}

int main(void)
{
    test_netlist();
    test_domainlist();
    test_clientlist();
    return UNIT_END();
}
