#!/usr/bin/env bash
# test_package.sh - the Debian package, as a postmaster gets it. dpkg-buildpackage builds it in a
# copy of the tree (no build output lands in the sources); then its contents, lintian, the
# manual pages (mandoc -Tlint, every setting of settings.def on policyd.conf(5)), and an install
# with dpkg -i into a throwaway root: overlays of this machine's /usr, /etc and /var in a private
# mount namespace, so the machine itself is not changed. There: the postinst (user, state
# directory, the main.cf advice, main.cf untouched), `policyd -t`, a request through the
# installed binary, `man policyd.conf`, `systemd-analyze verify`, logrotate's parse, remove and
# purge. Not tested: starting the units under a running systemd (no systemd runs here).
#
#   test_package.sh                  everything, "ok NAME" / "not ok NAME" lines
#   test_package.sh --build-only     build and lintian only (make deb)
#   KEEP=DIR test_package.sh         leave the .deb, the build log and lintian's report in DIR
# SPDX-License-Identifier: MIT
set -u
cd "$(dirname "$0")/../.."
TOP=$PWD
. test/tap.sh
export PATH="$PATH:/usr/sbin:/sbin"
BUILD_ONLY=0
[ "${1:-}" = --build-only ] && BUILD_ONLY=1

if ! command -v dpkg-buildpackage >/dev/null; then
    echo "ok package # SKIP dpkg-buildpackage missing (etc/install-deps.sh installs it)"
    exit 0
fi
WORK=$(mktemp -d /tmp/policyd-package.XXXXXX)
cleanup() {
    if [ "$failures" -gt 0 ] && [ -z "${KEEP:-}" ]; then
        echo "# failed: the build tree and logs stay in $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT

# ---- build, in a copy of the tree -----------------------------------------------------------
mkdir -p "$WORK/src"
before=$(git status --porcelain 2>/dev/null)
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    # what git would commit: tracked and new files, not build outputs (.gitignore)
    git ls-files -z -co --exclude-standard | tar --null --ignore-failed-read -T - -cf - 2>/dev/null |
        tar -xf - -C "$WORK/src"
else
    tar --exclude=./build --exclude=./policyd/policyd -cf - . | tar -xf - -C "$WORK/src"
fi
version=$(head -n1 debian/changelog | sed 's/^policyd (\(.*\)).*/\1/')
arch=$(dpkg --print-architecture)
deb=$WORK/policyd_${version}_${arch}.deb
# make check's environment (the sanitizer flavour's BUILD, the jobserver) stays outside
(cd "$WORK/src" && env -u BUILD -u POLICYD -u CFLAGS -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
    DEB_BUILD_OPTIONS="nocheck parallel=2" dpkg-buildpackage -us -uc -b) >"$WORK/build.log" 2>&1
status=$?
if [ $status -eq 0 ] && [ -f "$deb" ]; then
    ok "package: dpkg-buildpackage -us -uc -b builds $(basename "$deb")"
else
    tail -30 "$WORK/build.log" | sed 's/^/# /'
    not_ok "package: dpkg-buildpackage -us -uc -b (exit $status; log $WORK/build.log)"
    exit 1
fi
check "package: the build left nothing in the source tree" \
    test "$(git status --porcelain 2>/dev/null)" = "$before"

# ---- lintian --------------------------------------------------------------------------------
# Warnings left on purpose, with the reason (none today): add "TAG  reason" lines here.
lintian_allowed=""
lintian --pedantic "$WORK/policyd_${version}_${arch}.changes" >"$WORK/lintian.txt" 2>&1
sed 's/^/# /' "$WORK/lintian.txt"
check "lintian: no error" bash -c "! grep -q '^E: ' '$WORK/lintian.txt'"
unexpected=$(grep '^W: ' "$WORK/lintian.txt" | while read -r _ _ tag _; do
    printf '%s\n' "$lintian_allowed" | grep -q "^$tag " || echo "$tag"
done)
check "lintian: no warning but those listed in test_package.sh${unexpected:+ (got: $unexpected)}" \
    test -z "$unexpected"

if [ -n "${KEEP:-}" ]; then
    mkdir -p "$KEEP"
    cp "$deb" "$WORK/build.log" "$WORK/lintian.txt" "$KEEP/"
    echo "# kept in $KEEP: $(basename "$deb"), build.log, lintian.txt"
fi
[ $BUILD_ONLY = 1 ] && exit $((failures > 0))

# ---- contents -------------------------------------------------------------------------------
dpkg-deb --contents "$deb" | awk '{print $1, $NF}' >"$WORK/contents.txt"
for want in \
    "-rwxr-xr-x ./usr/sbin/policyd" \
    "-rw-r--r-- ./etc/policyd/policyd.conf" \
    "-rw-r--r-- ./etc/logrotate.d/policyd" \
    "-rw-r--r-- ./lib/systemd/system/policyd.service" \
    "-rw-r--r-- ./lib/systemd/system/policyd.socket" \
    "-rw-r--r-- ./usr/share/man/man8/policyd.8.gz" \
    "-rw-r--r-- ./usr/share/man/man5/policyd.conf.5.gz" \
    "-rw-r--r-- ./usr/share/man/man7/policyd-causes.7.gz" \
    "-rw-r--r-- ./usr/share/doc/policyd/README.md.gz" \
    "-rw-r--r-- ./usr/share/doc/policyd/main.cf.snippet" \
    "-rw-r--r-- ./usr/share/doc/policyd/policyd.conf" \
    "-rw-r--r-- ./usr/share/doc/policyd/copyright" \
    "-rw-r--r-- ./usr/share/doc/policyd/changelog.gz"; do
    check "contents: ${want#* }" grep -qxF -- "$want" "$WORK/contents.txt"
done
stray=$(awk '$1 !~ /^d/ {print $2}' "$WORK/contents.txt" |
    grep -vE '^\./(usr/sbin/policyd|etc/policyd/policyd\.conf|etc/logrotate\.d/policyd|lib/systemd/system/policyd\.(service|socket)|usr/share/man/man[578]/policyd[-.a-z0-9]*\.gz|usr/share/doc/policyd/[^/]+)$')
check "contents: nothing else${stray:+ (got: $stray)}" test -z "$stray"
dpkg-deb -e "$deb" "$WORK/control"
check "control: /etc/policyd/policyd.conf is a conffile" grep -qx /etc/policyd/policyd.conf \
    "$WORK/control/conffiles"
check "control: version $version from debian/changelog" \
    test "$(dpkg-deb -f "$deb" Version)" = "$version"
ROOT=$WORK/extract
dpkg-deb -x "$deb" "$ROOT"
listen=$(sed -n 's/^listen = //p' "$ROOT/etc/policyd/policyd.conf")
stream=$(sed -n 's/^ListenStream=//p' "$ROOT/lib/systemd/system/policyd.socket")
check "conffile listens on policyd.socket's socket ($listen)" test "$listen" = "unix:$stream"
check "the compiler got the version of debian/changelog (POLICYD_VERSION=$version)" \
    grep -qF -- "-DPOLICYD_VERSION='\"$version\"'" "$WORK/build.log"
check "policyd.service runs the packaged binary and configuration" \
    grep -qx 'ExecStart=/usr/sbin/policyd -c /etc/policyd/policyd.conf -f' \
    "$ROOT/lib/systemd/system/policyd.service"

# ---- manual pages ---------------------------------------------------------------------------
# Every mandoc message about our pages counts, style included, but for references to pages
# mandoc looks for in /usr/share/man only: ours (checked again once installed, below) and
# other packages' (the machine's business, not the page's).
man_lint() {
    local page=$1 out
    out=$(mandoc -Tlint "$page" 2>&1 | grep -F "mandoc: $page:" |
        grep -vE 'referenced manual not found: Xr (policyd|policyd\.conf|access|master|postconf|smtpd|spawn|logrotate|systemd\.socket) ')
    [ -z "$out" ] || {
        echo "$out" | sed 's/^/# /'
        return 1
    }
}
check "mandoc -Tlint man7/policyd-causes.7.gz: clean" man_lint "$ROOT/usr/share/man/man7/policyd-causes.7.gz"
check "man -l man7/policyd-causes.7.gz lists relay.not_mynetworks" bash -c \
    "MANWIDTH=80 man -l '$ROOT/usr/share/man/man7/policyd-causes.7.gz' 2>&1 | grep -q 'relay.not_mynetworks'"
for page in man8/policyd.8.gz man5/policyd.conf.5.gz; do
    check "mandoc -Tlint $page: clean" man_lint "$ROOT/usr/share/man/$page"
    check "man -l $page renders" bash -c \
        "MANWIDTH=80 man -l '$ROOT/usr/share/man/$page' 2>&1 | grep -q '^EXAMPLES'"
done
page=$(zcat "$ROOT/usr/share/man/man5/policyd.conf.5.gz")
missing=""
count=0
for name in $(sed -n 's/^[SP]_[A-Z]*(\([a-z0-9_]*\),.*/\1/p' policyd/settings.def); do
    count=$((count + 1))
    printf '%s\n' "$page" | grep -q "^\.It Cm $name " || missing="$missing $name"
done
check "policyd.conf(5) lists all $count settings of settings.def${missing:+ (missing:$missing)}" \
    test -z "$missing" -a "$count" -gt 30
check "policyd.conf(5): defaults shown (request_deadline 10s)" bash -c \
    "MANWIDTH=200 man -l '$ROOT/usr/share/man/man5/policyd.conf.5.gz' 2>/dev/null |
     grep -A1 '^ *request_deadline (time)' | grep -q \"Default: .10s.\""
check "policyd.conf(5): bounds from the settings table shown (request_deadline 100ms to 90s)" bash -c \
    "MANWIDTH=200 man -l '$ROOT/usr/share/man/man5/policyd.conf.5.gz' 2>/dev/null |
     grep -A3 '^ *request_deadline (time)' | grep -q \"Range: .100ms. to .90s.\""
check "policyd.conf(5): restart-only settings say so (listen)" bash -c \
    "MANWIDTH=200 man -l '$ROOT/usr/share/man/man5/policyd.conf.5.gz' 2>/dev/null |
     grep -A4 '^ *listen (list)' | grep -q 'only after a restart'"

# ---- install into a throwaway root ----------------------------------------------------------
# The root is this machine seen through overlays (changes go to a tmpfs and vanish with the
# mount namespace): dpkg resolves the dependencies against what is installed here.
cp "$deb" "$WORK/policyd.deb"
cat >"$WORK/inroot.sh" <<'EOF'
set -u
. /tmp/tap.sh
export PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8
# the postinst must create the user: start without it
userdel policyd >/dev/null 2>&1
# a main.cf to watch (Postfix installed with "No configuration" has none)
[ -d /etc/postfix ] && [ ! -f /etc/postfix/main.cf ] && printf 'myhostname = mx.example.org\n' >/etc/postfix/main.cf
maincf_before=$(md5sum /etc/postfix/main.cf 2>/dev/null)
dpkg -i /tmp/policyd.deb >/tmp/dpkg.out 2>&1
status=$?
sed 's/^/# /' /tmp/dpkg.out
check "dpkg -i: installs" test $status = 0
check "dpkg -i: policyd is installed" bash -c "dpkg-query -W -f='\${Status}' policyd | grep -q 'install ok installed'"
check "postinst: system user policyd" bash -c 'getent passwd policyd | grep -q ":/usr/sbin/nologin$" && test "$(id -u policyd)" -lt 1000'
check "postinst: /var/lib/policyd owned by policyd, 0750" test "$(stat -c '%U %a' /var/lib/policyd)" = "policyd 750"
check "postinst: /var/log/policyd owned by policyd:adm" test "$(stat -c '%U:%G' /var/log/policyd)" = "policyd:adm"
if getent group postdrop >/dev/null; then
    check "postinst: policyd in group postdrop (postqueue under NoNewPrivileges)" bash -c "id -nG policyd | grep -qw postdrop"
fi
check "postinst: prints the main.cf lines to add" grep -q 'check_policy_service { unix:private/policyd' /tmp/dpkg.out
check "postinst: main.cf untouched" test "$(md5sum /etc/postfix/main.cf 2>/dev/null)" = "$maincf_before"
if command -v postconf >/dev/null; then
    printf 'smtpd_recipient_restrictions = check_policy_service unix:private/policyd, reject_unauth_destination\n' >>/etc/postfix/main.cf
    /var/lib/dpkg/info/policyd.postinst configure 0.1.0 >/tmp/postinst.out 2>&1
    check "postinst: no advice once main.cf calls private/policyd" bash -c "! grep -q check_policy_service /tmp/postinst.out"
fi
check "dpkg: /etc/policyd/policyd.conf registered as a conffile" bash -c "dpkg-query -W -f='\${Conffiles}' policyd | grep -q ' /etc/policyd/policyd.conf '"
check "units enabled (policyd.service, policyd.socket)" test -L /etc/systemd/system/multi-user.target.wants/policyd.service -a -L /etc/systemd/system/sockets.target.wants/policyd.socket
check "policyd -c /etc/policyd/policyd.conf -t" /usr/sbin/policyd -c /etc/policyd/policyd.conf -t
reply=$(printf 'request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=203.0.113.7\nsender=a@example.org\nrecipient=b@foreign.example\n\n' |
    timeout 20 /usr/sbin/policyd -c /etc/policyd/policyd.conf -S 2>&1)
check "installed policyd answers a request (-S): relay refused" grep -q '^action=554 5.7.1' <<<"$reply"
for page in /usr/share/man/man8/policyd.8.gz /usr/share/man/man5/policyd.conf.5.gz; do
    # installed, the pages' references to each other resolve: no message at all is allowed
    # but for other packages' pages this machine lacks
    mandoc -Tlint "$page" 2>&1 | grep -F "mandoc: $page:" |
        grep -vE 'referenced manual not found: Xr (access|master|postconf|smtpd|spawn|logrotate|systemd\.socket) ' >/tmp/lint.out
    sed 's/^/# /' /tmp/lint.out
    check "mandoc -Tlint $page (installed): clean" test ! -s /tmp/lint.out
done
check "man policyd.conf finds the installed page" bash -c "man -w policyd.conf | grep -qx /usr/share/man/man5/policyd.conf.5.gz"
check "man 8 policyd renders" bash -c "MANWIDTH=80 man 8 policyd 2>/dev/null | grep -q 'check_policy_service'"
systemd-analyze verify /lib/systemd/system/policyd.socket /lib/systemd/system/policyd.service >/tmp/verify.out 2>&1
status=$?
sed 's/^/# /' /tmp/verify.out
check "systemd-analyze verify policyd.socket policyd.service: no complaint" test $status = 0 -a ! -s /tmp/verify.out
systemd-analyze security --offline=yes /lib/systemd/system/policyd.service 2>&1 | tail -1 | sed 's/^/# /'
check "systemd-analyze security: exposure of policyd.service at most 3.0" bash -c "systemd-analyze security --offline=yes --threshold=30 /lib/systemd/system/policyd.service >/dev/null 2>&1"
if command -v logrotate >/dev/null; then
    check "logrotate -d /etc/logrotate.d/policyd parses" bash -c "logrotate -d /etc/logrotate.d/policyd 2>&1 | grep -q 'rotating pattern: /var/log/policyd/\*.log' && ! logrotate -d /etc/logrotate.d/policyd 2>&1 | grep -qi error"
fi
echo '# local edit' >>/etc/policyd/policyd.conf
dpkg -r policyd >/tmp/dpkg.out 2>&1
check "dpkg -r: removes the binary, keeps the edited conffile" test $? = 0 -a ! -e /usr/sbin/policyd -a -f /etc/policyd/policyd.conf
dpkg -P policyd >/tmp/dpkg.out 2>&1
check "dpkg -P: purges the conffile, the state and log directories" test $? = 0 -a ! -e /etc/policyd/policyd.conf -a ! -e /var/lib/policyd -a ! -e /var/log/policyd
check "dpkg -P: the policyd user stays" bash -c "getent passwd policyd >/dev/null"
exit 0
EOF
cat >"$WORK/ns.sh" <<'EOF'
set -u
W=$1
R=$W/root
mount -t tmpfs tmpfs "$R" || exit 3
mkdir -p "$R/.upper" "$R/.work"
# every top-level piece dpkg may write to is an overlay (or the same symlink as here)
for d in bin sbin lib lib32 lib64 libx32 usr etc var; do
    if [ -L "/$d" ]; then
        ln -s "$(readlink "/$d")" "$R/$d"
    elif [ -d "/$d" ]; then
        mkdir -p "$R/.upper/$d" "$R/.work/$d" "$R/$d"
        mount -t overlay overlay -o "lowerdir=/$d,upperdir=$R/.upper/$d,workdir=$R/.work/$d" \
            "$R/$d" || exit 3
    fi
done
mkdir -p "$R/proc" "$R/dev" "$R/tmp" "$R/run" "$R/root" "$R/sys" "$R/home"
chmod 1777 "$R/tmp"
mount -t proc proc "$R/proc" && mount --rbind /dev "$R/dev" || exit 3
cp "$W/policyd.deb" "$W/inroot.sh" "$2" "$R/tmp/"
chroot "$R" /bin/bash /tmp/inroot.sh
EOF
mkdir -p "$WORK/root"
if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null; then
    unshare --mount --propagation private bash "$WORK/ns.sh" "$WORK" "$TOP/test/tap.sh" \
        >"$WORK/install.out" 2>&1
    status=$?
else
    status=3
fi
if [ $status = 3 ]; then
    sed 's/^/# /' "$WORK/install.out" 2>/dev/null
    echo "ok install # SKIP no throwaway root here (needs root, unshare and overlayfs)"
else
    cat "$WORK/install.out"
    grep -q '^not ok ' "$WORK/install.out" && failures=$((failures + 1))
    check "install: the throwaway root ran to the end" grep -q '^ok dpkg -P: the policyd user stays' \
        "$WORK/install.out"
fi
exit $((failures > 0))
