#!/bin/sh
# deps.sh - install, with apt-get, the Debian 12 packages the build and tests need.
# Does nothing (and needs no network) when they are all present already.
set -eu
PKGS="build-essential pkg-config libzmq3-dev libczmq-dev libcjson-dev check \
python3-zmq valgrind clang libclang-rt-14-dev libsystemd-dev \
libmicrohttpd-dev curl chromium wrk \
rabbitmq-server librabbitmq-dev python3-pika"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
        || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing$missing" >&2
if [ "$(id -u)" != 0 ]; then
    echo "deps: missing packages and not root; run as root: apt-get install$missing" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing
