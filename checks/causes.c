/*
 * causes.c - the cause codes of every diagnosis line, with meaning and fix: the manual's
 * policyd-causes(7) is generated from this table (etc/man/mkcauses.c), and nothing else in the
 * tree spells out what a code means. One entry per distinct explanation the code can give: a
 * check passes the code literal with its verdict (checks/check.h); test/daemon/test_causes.sh
 * keeps the sources and this table in step both ways. The texts are general; the diagnosis
 * line itself names the client, the domains, the records and the settings involved.
 */
/* SPDX-License-Identifier: MIT */
#include "checks/causes.h"

#include <string.h>

const struct cause causes_table[] = {
    /* -- relay -- */
    {"relay.not_mynetworks", "relay_action (554 5.7.1 Relay access denied)",
     "The recipient domain is in none of mydestination, virtual_alias_domains, "
     "virtual_mailbox_domains and relay_domains, so delivering it is relaying, and the client "
     "may not relay: it is not in mynetworks, did not authenticate with SASL and presented no "
     "TLS client certificate listed in relay_clientcerts. When the sender domain is foreign "
     "too, this is the shape of an open-relay probe.",
     "If the client is yours, add its address to mynetworks or have it authenticate with SASL on "
     "port 587. If the recipient domain is one you receive mail for, add it to relay_domains "
     "(backup MX, gateway) or virtual_mailbox_domains. Otherwise nothing: the server refused to "
     "be an open relay."},
    {"relay.container_gateway", "relay_action (554 5.7.1 Relay access denied)",
     "A relay attempt as above, from a private, loopback, link-local or carrier-grade NAT "
     "address. When clients reach Postfix through a container network (Docker's 172.17.0.1), NAT "
     "or a proxy, Postfix sees that gateway instead of the real client, so its own users look "
     "like strangers (or, worse, every client looks trusted once the gateway is in "
     "mynetworks).",
     "If the clients behind that address are yours, have them authenticate with SASL on port "
     "587; add the network to mynetworks only if nothing from outside can arrive through it. To "
     "see the real addresses, publish the SMTP port without address translation (host "
     "networking) or use the PROXY protocol (smtpd_upstream_proxy_protocol)."},
    {"relay.local_sender", "relay_action (554 5.7.1 Relay access denied)",
     "A relay attempt as above whose sender address is in a domain this server hosts: most "
     "likely one of your users sending through port 25 without logging in, or a forgery of "
     "your domain.",
     "Configure that user's mail client to send through port 587 with authentication (SASL). If "
     "the client is a server of yours, add its address to mynetworks."},
    {"relay.table_error", "fallback_action (DUNNO)",
     "A table behind mydestination, virtual_alias_domains, virtual_mailbox_domains or "
     "relay_domains could not be read while deciding whether the recipient domain is local, so "
     "no relay decision was made; Postfix's own restrictions still apply.",
     "Read the warning logged about that table (missing file, wrong type, permissions) and fix "
     "it; rebuild an indexed table with postmap."},

    /* -- rdns -- */
    {"rdns.no_ptr", "rdns_no_ptr_action (450 4.7.1)",
     "The client address has no PTR record (NXDOMAIN or an empty answer). Large receivers "
     "reject or junk mail from addresses without reverse DNS; a temporary refusal lets a "
     "genuine sender retry once it is fixed.",
     "Only the owner of the address (the ISP or hosting provider) can set its PTR record: to a "
     "name that resolves back to the address, such as mail.example.org with a matching A or "
     "AAAA record. The domain's own DNS cannot."},
    {"rdns.mismatch", "rdns_mismatch_action (DUNNO)",
     "The client address has PTR names, but none of them resolves back to the address (the "
     "reverse DNS is not forward-confirmed). Receivers that require matching reverse and forward "
     "DNS reject or junk such mail.",
     "Make them agree: add an A (or AAAA) record with the address for the PTR name, or have the "
     "address owner point the PTR record to a name that already resolves to the address."},
    {"rdns.generic", "rdns_generic_action (DUNNO)",
     "The client's PTR name is forward-confirmed but looks generic: it embeds the address or "
     "contains a word of rdns_generic_patterns (dsl, dynamic, pool, ...), the mark of dynamic "
     "or residential access lines that many receivers refuse to take mail from directly.",
     "A mail server should have a PTR record naming the mail service (mail.example.org), set by "
     "the address owner; a client on an access line should send through its provider's "
     "submission server (port 587). If such names are normal for your senders, remove the word "
     "from rdns_generic_patterns."},
    {"rdns.tempfail", "rdns_tempfail_action (DUNNO)",
     "The PTR lookup of the client address, or the forward lookup of a PTR name, failed "
     "temporarily (timeout, SERVFAIL): no decision on the reverse DNS. Never a 5xx.",
     "Nothing on the client's side yet. If it repeats for many clients, check the DNS servers "
     "policyd uses (dns_servers, or /etc/resolv.conf) and their reach."},

    /* -- dnsbl -- */
    {"dnsbl.listed", "dnsbl_action (554 5.7.1 Service unavailable)",
     "The client address is listed on DNS blocklists (dnsbl_sites) whose weights add up to at "
     "least dnsbl_threshold. The line gives every list's answer, the score and the list's TXT "
     "reason.",
     "The operator of the address must find why it was listed (a compromised host, an open "
     "proxy, spam from a customer), stop it, then ask each list for delisting "
     "(dnsbl_delist_urls names the pages). If a list refuses mail you want, lower its weight or "
     "add an allow list with a negative weight."},
    {"dnsbl.domain_listed", "dnsbl_action (554 5.7.1 Service unavailable)",
     "The sender domain or the HELO name is listed on domain blocklists (rhsbl_sites) whose "
     "weights, with any address listings, add up to at least dnsbl_threshold.",
     "The owner of the domain must find why it was listed (a spamvertised or compromised "
     "domain, a newly registered one), stop it, then ask the list for delisting."},
    {"dnsbl.warn_score", "no verdict: logged, and dnsbl_warn_header prepended when set",
     "The weighted score of the lists reached dnsbl_warn_threshold but stays under "
     "dnsbl_threshold: the mail is accepted and the listing noted.",
     "Nothing to fix here. Raise dnsbl_warn_threshold or set it to 0 to stop these lines; let "
     "a content filter use the header."},
    {"dnsbl.error_answer", "no verdict: the list counts as unanswered",
     "A list answered with an error code (Spamhaus' 127.255.255.252, .254 or .255: a public or "
     "open resolver, a typo in the zone, or over the free-use limit). The list refuses this "
     "resolver; the answer is not a listing. Logged at most once per dnsbl_error_log_interval, "
     "counted every time.",
     "Query the list through your own recursive resolver (dns_servers), not a public one, or "
     "use the registered data-feed zone of your account; until then the list is useless."},
    {"dnsbl.list_timeout", "no verdict: the list is skipped for dnsbl_skip_time",
     "A list timed out dnsbl_timeout_limit times in a row; it is skipped for dnsbl_skip_time "
     "so that it does not delay every request.",
     "Check that the list's zone is spelled right and still exists, and that the resolver can "
     "reach it."},

    /* -- recipient -- */
    {"recipient.unknown", "recipient_unknown_action (550 5.1.1 User unknown)",
     "The recipient is in a domain this server hosts (mydestination, virtual_mailbox_domains, "
     "virtual_alias_domains), but no table of recipient_maps knows it under any of the keys "
     "Postfix would look up (user+ext@domain, user@domain, user, @domain). The line lists the "
     "keys, the tables and close matches.",
     "If the address should receive mail, add it to the table (then run postmap on an indexed "
     "table; policyd notices the change within recipient_table_check_interval). If the sender "
     "mistyped, nothing to fix here."},
    {"recipient.full", "recipient_full_action (452 4.2.2 Mailbox full)",
     "The recipient's Maildir++ mailbox (maildirsize under virtual_mailbox_base) is over its "
     "quota, or would be with this message. A temporary refusal: the sender retries for days.",
     "The user must delete or archive mail, or the quota be raised; nothing is lost if room "
     "appears before the sender gives up."},
    {"recipient.table_error", "fallback_action (DUNNO)",
     "A table of recipient_maps could not be read while looking up the recipient, so no "
     "decision was made.",
     "Read the error logged about that table and rebuild it with postmap."},
    {"recipient.quota_stalled", "no quota decision (the other checks decide)",
     "A mailbox's maildirsize file did not answer within recipient_quota_timeout (or every "
     "reader thread, offload_threads, was already stuck that long in such a read): the storage "
     "under virtual_mailbox_base hangs, typically an NFS server. The read goes on off the event "
     "loop and other clients are not delayed; meanwhile no mailbox is refused as full. Counted "
     "per request; logged at most once a minute with the file and its mount.",
     "Check the storage behind the mount named in the log line (the NFS server, the network to "
     "it); nothing needs to be done in policyd, the reads recover when the storage answers."},

    /* -- spf -- */
    {"spf.fail", "spf_fail_action (550 5.7.23)",
     "The SPF record of the sender domain (or of the HELO name, for the null sender) does not "
     "permit the client address: the term that decided is a -all or another fail. The line "
     "names the record and the term.",
     "If the client is a genuine sender for the domain, the domain's owner must list it in the "
     "SPF record (ip4:, ip6: or an include: of the provider). If the mail was forwarded, exempt "
     "the forwarder (spf_skip_networks) or have it rewrite the sender with SRS."},
    {"spf.softfail", "spf_softfail_action (PREPEND: a Received-SPF header)",
     "The SPF record does not permit the client address but asks receivers to be lenient "
     "(~all). The mail is accepted with a Received-SPF header; the line records it.",
     "As for spf.fail, if the mail was genuine. Set spf_softfail_action to refuse such mail."},
    {"spf.neutral", "spf_neutral_action (PREPEND)",
     "The SPF record says nothing about the client (?all). Logged only when spf_neutral_action "
     "is set to an action.",
     "Nothing to fix on this side."},
    {"spf.none", "spf_none_action (PREPEND)",
     "The domain publishes no SPF record. Logged only when spf_none_action is set to an "
     "action.",
     "The domain's owner may publish one; nothing to fix on this side."},
    {"spf.pass", "spf_pass_action (PREPEND)",
     "The SPF record permits the client. Logged only when spf_pass_action is set to an action "
     "(WARN logs every pass).",
     "Nothing to fix."},
    {"spf.temperror", "spf_temperror_action (451 4.4.3)",
     "The SPF record could not be evaluated because DNS failed temporarily (timeout, SERVFAIL, "
     "or more DNS questions than one evaluation may ask). Never a 5xx: the sender retries.",
     "Nothing, if it is rare. If it persists, check the DNS servers of the domain and policyd's "
     "resolvers (dns_servers)."},
    {"spf.permerror", "spf_permerror_action (PREPEND; 550 5.7.24 to refuse)",
     "The SPF record is unusable: a syntax error, several records, more than 10 DNS-querying "
     "terms across includes and redirects, or more than 2 lookups that find nothing (RFC 7208 "
     "limits).",
     "The owner of the domain must correct the record; the line names the error."},
    {"spf.helo_fail", "spf_helo_fail_action (550 5.7.23)",
     "The sender is not null, but the SPF record of the HELO name does not permit the client "
     "address (RFC 7208 2.3 allows refusing on it).",
     "The owner of the HELO name's domain must permit the address in its SPF record, or the "
     "client must greet with a name whose record does. Set spf_helo_fail_action to DUNNO to "
     "judge by the MAIL FROM identity alone."},

    /* -- dkim -- */
    {"dkim.key_missing", "no verdict (WARN)",
     "A client in mynetworks or an authenticated one sends from a domain whose DKIM signing key "
     "has no DNS record (NXDOMAIN or no TXT at selector._domainkey.domain): receivers will find "
     "the signature invalid.",
     "Publish the public key as a TXT record at selector._domainkey.domain: the .txt file "
     "opendkim-genkey wrote beside the key."},
    {"dkim.key_revoked", "no verdict (WARN)",
     "As above, but the record withdraws the key (an empty p=) while the signer still uses it.",
     "Publish that key's public half at the selector, or switch the signer to a selector whose "
     "record holds its key."},
    {"dkim.key_mismatch", "no verdict (WARN)",
     "As above, but the record holds another public key than the private key the signer uses.",
     "Publish the public key that belongs to the private key (the .txt file from "
     "opendkim-genkey), or point the signer at the private key of the published record; a "
     "changed record counts once the old one's TTL has passed."},
    {"dkim.key_bad_record", "no verdict (WARN)",
     "As above, but the TXT record at the selector is no usable DKIM key (a syntax error, or "
     "several records).",
     "Publish exactly one TXT record of the form 'v=DKIM1; k=rsa; p=BASE64'."},

    /* -- ratelimit -- */
    {"ratelimit.exceeded", "ratelimit_action (450 4.7.1, with the limit and the retry time)",
     "A rate-limit rule's key (an account, a sender, a client network, ...) reached its limit in "
     "the rule's window; the line names the rule, the key, the usage, since when, the retry "
     "time, the client and the recipient domains of the last hour, and says \"likely "
     "compromised account\" when the shape fits (many foreign domains, a new client network). "
     "Messages aborted after RCPT (RSET, QUIT, DATA refused) count too unless Postfix asks "
     "policyd at END-OF-MESSAGE; the fix then says so.",
     "If the account did not send this, check it and reset its password; if the volume is "
     "legitimate, raise its limit in ratelimit_overrides. 'policyd ratelimit reset KEY' clears "
     "the counter."},
    {"ratelimit.blocked", "ratelimit_action (450 4.7.1)",
     "The key is suspended: 'block' in ratelimit_overrides, or 'policyd ratelimit block KEY'.",
     "Lift the block once the account is safe: 'policyd ratelimit unblock KEY', or remove "
     "'block' from ratelimit_overrides."},
    {"ratelimit.warning", "no verdict (logged)",
     "A key crossed ratelimit_warn_ratio of one of its limits: an early warning before it is "
     "deferred.",
     "Look at who sends under that key; raise its limit in ratelimit_overrides if the volume is "
     "expected."},
    {"ratelimit.store_failure", "451 4.3.0 (ratelimit_store_failure = defer)",
     "The state store (state_store) did not answer or failed, and ratelimit_store_failure is "
     "defer; the store's own log lines say why.",
     "Bring the state store back (Redis running and reachable, the LMDB directory writable); "
     "ratelimit_store_failure = local counts in the process meanwhile."},

    /* -- greylist -- */
    {"greylist.deferred", "greylist_action (450 4.2.0, with the retry time)",
     "First attempt of a (client network, sender, recipient) triplet - the SPF domain instead of "
     "the network after an SPF pass - from a client that looks suspicious (no forward-confirmed "
     "reverse name, a generic name, a DNSBL score under the reject threshold, SPF other than "
     "pass; the diagnosis names which), or any client with greylist_policy = all; a retry "
     "before greylist_delay, or a return after greylist_retry_window: deferred; a real mail "
     "server retries and is accepted after the delay.",
     "None for real mail servers. If a sender complains of the delay, fix what made it "
     "suspicious (a reverse name that resolves back and names the mail service, delisting, an "
     "SPF record that passes), or add it to greylist_skip_networks, greylist_skip_client_names "
     "or greylist_skip_clients_file."},
    {"greylist.store_failure", "451 4.3.0 (greylist_store_failure = defer)",
     "The state store did not answer or failed, and greylist_store_failure is defer.",
     "Bring the state store back; greylist_store_failure = dunno accepts meanwhile."},

    /* -- the evaluator -- */
    {"request.bad_client_address", "no verdict (DUNNO from the checks that need the address)",
     "The request's client_address is not an IP address, so the checks that look at the client "
     "(rdns, dnsbl, spf) have nothing to look at and give no verdict, instead of blaming a DNS "
     "record or a domain owner.",
     "Find what connects to the policy socket: Postfix's smtpd always sends the client's "
     "address; a test script or another program may not."},
    {"deadline.fallback", "fallback_action (DUNNO)",
     "Some checks had not answered when request_deadline passed, so policyd answered "
     "fallback_action; the line names the late checks and what each was waiting for (usually a "
     "DNS lookup).",
     "If it repeats, check the DNS servers (dns_servers) and their reach; raise "
     "request_deadline only while keeping it well below Postfix's "
     "smtpd_policy_service_timeout."},
};

const size_t causes_count = sizeof(causes_table) / sizeof(causes_table[0]);

const struct cause *causes_find(const char *code)
{
    for (size_t i = 0; i < causes_count; i++)
        if (strcmp(causes_table[i].code, code) == 0)
            return &causes_table[i];
    return NULL;
}
