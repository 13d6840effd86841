#!/usr/bin/env bash
# test_recipient.sh - recipient decisions through a real Postfix 3.7 (issue 5): mail to an
# unknown user of a hosted domain is refused at RCPT with 5.1.1 and the diagnosis sits beside
# Postfix's line; a full mailbox is deferred with 4.2.2; a user with room gets the mail (routed
# to smtp-sink). The table is an lmdb built by the real postmap.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lab.sh"
lab_enter "$@"
lab_setup
lab_start_dns || not_ok "test DNS starts"
mkdir -p "$LAB/mail/example.com/room" "$LAB/mail/example.com/full"
printf '100000S,2C\n500 1\n' >"$LAB/mail/example.com/room/maildirsize"
printf '100000S,2C\n900 2\n' >"$LAB/mail/example.com/full/maildirsize"
printf 'room@example.com example.com/room/\nfull@example.com example.com/full/\n' >"$LAB/vmailbox"
postmap -c "$LAB/etc" "lmdb:$LAB/vmailbox" || not_ok "postmap builds the lmdb table"
lab_start_postfix || { not_ok "Postfix starts"; exit 1; }
lab_start_sink || not_ok "smtp-sink starts"
# Postfix relays example.com to the sink; policyd is told the domain is hosted here.
lab_start_policyd "checks = relay, recipient" "virtual_mailbox_domains = example.com" \
    "recipient_maps = lmdb:$LAB/vmailbox" "virtual_mailbox_base = $LAB/mail" ||
    { not_ok "policyd starts"; exit 1; }

lab_send "$LAB/unknown.out" --from a@example.org --to rooom@example.com \
    --xclient-addr 203.0.113.30 --xclient-name mail.example.org
check "unknown user refused at RCPT with 550 5.1.1" \
    grep -qE '<\*\* 550 5\.1\.1 <rooom@example\.com>: Recipient address rejected: User unknown' "$LAB/unknown.out"
check "Postfix's NOQUEUE line" \
    lab_wait_grep 'postfix/smtpd\[[0-9]+\]: NOQUEUE: reject: RCPT from mail\.example\.org\[203\.0\.113\.30\]: 550 5\.1\.1 <rooom@example\.com>' "$MAILLOG"
check "policyd's diagnosis beside it, with the close match" \
    lab_wait_grep 'policyd\[[0-9]+\]: NOQUEUE: client=mail\.example\.org\[203\.0\.113\.30\], from=<a@example\.org>, to=<rooom@example\.com>, .*recipient: reject: 550 5\.1\.1 User unknown; cause_code=recipient\.unknown; cause=.*close matches: room@example\.com' "$MAILLOG"

lab_send "$LAB/full.out" --from a@example.org --to full@example.com \
    --xclient-addr 203.0.113.30 --xclient-name mail.example.org
check "full mailbox deferred at RCPT with 452 4.2.2" \
    grep -qE '<\*\* 452 4\.2\.2 <full@example\.com>: Recipient address rejected: Mailbox full' "$LAB/full.out"
check "policyd's quota diagnosis in the maillog" \
    lab_wait_grep 'policyd\[[0-9]+\]: NOQUEUE: .*to=<full@example\.com>.*recipient: defer: 452 4\.2\.2 Mailbox full; cause_code=recipient\.full; cause=mailbox of full@example\.com .* is full: 900 bytes in 2 messages used, quota 100000 bytes / 2 messages' "$MAILLOG"

lab_send "$LAB/room.out" --from a@example.org --to room@example.com \
    --xclient-addr 203.0.113.30 --xclient-name mail.example.org
check "user with room accepted" grep -qE '<- +250 2\.0\.0 Ok: queued' "$LAB/room.out"
check "the mail reached the sink" lab_sink_has room@example.com
check "policyd exits 0" lab_stop_policyd
[ "$failures" -eq 0 ] || { echo "--- maillog"; tail -30 "$MAILLOG"; }
exit $((failures > 0))
