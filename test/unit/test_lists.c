/*
 * test_lists.c - network and domain lists: Postfix's matching rules, files, negation, errors.
 */
/* SPDX-License-Identifier: MIT */
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

int main(void)
{
    test_netlist();
    test_domainlist();
    return UNIT_END();
}
