#!/bin/sh
# install-deps.sh - install what policyd needs to build, run and be tested on Debian 12.
# Non-interactive; safe to run again. Postfix is installed with debconf 'No configuration'
# so the system instance never starts: the tests run their own private instance. The packaging
# tools (debhelper, lintian, mandoc, systemd-analyze, logrotate) serve test/package.
# SPDX-License-Identifier: MIT
set -eu
if [ "$(id -u)" != 0 ]; then
    echo "install-deps.sh: run as root (apt-get)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections
apt-get update -q
apt-get install -y -q --no-install-recommends \
    make gcc clang libclang-rt-14-dev pkg-config clang-format \
    libevent-dev libc-ares-dev libopendkim-dev liblmdb-dev libdb5.3-dev libssl-dev zlib1g-dev \
    libhiredis-dev libsystemd-dev \
    postfix postfix-lmdb swaks dnsmasq-base iproute2 libsasl2-modules opendkim-tools openssl \
    python3 python3-dnslib python3-dnspython python3-yaml python3-cryptography procps psmisc \
    util-linux redis-server curl prometheus \
    build-essential debhelper dpkg-dev fakeroot lintian mandoc man-db systemd logrotate adduser
# promtool (the metrics test) comes only in the prometheus package; the Prometheus server it
# also installs is not wanted here: stopped and disabled where systemd runs.
if [ -d /run/systemd/system ]; then
    systemctl disable --now prometheus.service >/dev/null 2>&1 || true
fi
# The daemon's default unprivileged user.
if ! getent passwd policyd >/dev/null; then
    useradd --system --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin policyd
fi
