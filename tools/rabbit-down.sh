#!/usr/bin/env bash
# rabbit-down.sh [PORT] - stop the node that tools/rabbit-up.sh started for PORT.
# Exits 0 whether or not it was running. Asks the node to stop, and waits for its
# process to end; if that fails, SIGTERM, then SIGKILL. Then stops epmd if no
# Erlang node is registered with it any more (epmd refuses while one is).
#   RABBIT_BASE=DIR   as for rabbit-up.sh
#   RABBIT_PURGE=1    delete the state directory as well
#   RABBIT_KEEP_EPMD=1 leave epmd running
set -uo pipefail

port=${1:-${RABBIT_PORT:-5673}}
base=${RABBIT_BASE:-${TMPDIR:-/tmp}/mdp-rabbitmq-$port}
node=rabbit$port@localhost
bin=/usr/lib/rabbitmq/bin
pidfile=$base/rabbit.pid
export HOME=$base
export ERL_EPMD_PORT=${ERL_EPMD_PORT:-4369}
export RABBITMQ_CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"

say() { echo "rabbit-down: $*" >&2; }
alive() { kill -0 "$1" 2>/dev/null; }

pid=$(cat "$pidfile" 2>/dev/null || true)
if [ -n "$pid" ] && alive "$pid"; then
    started=$(date +%s%N)
    # 'stop PIDFILE' returns only when the server's OS process has gone.
    if ! timeout 60 "$bin/rabbitmqctl" -n "$node" stop "$pidfile" >/dev/null 2>&1; then
        say "rabbitmqctl stop failed; SIGTERM to $pid"
        kill -TERM "$pid" 2>/dev/null
        for _ in $(seq 1 100); do alive "$pid" || break; sleep 0.1; done
        if alive "$pid"; then
            say "SIGKILL to $pid"
            kill -KILL "$pid" 2>/dev/null
        fi
    fi
    say "$node stopped in $((($(date +%s%N) - started) / 1000000)) ms"
else
    say "$node is not running"
fi
rm -f "$pidfile"

if [ "${RABBIT_KEEP_EPMD:-0}" != 1 ] && command -v epmd >/dev/null 2>&1; then
    if ! epmd -names 2>/dev/null | grep -q '^name '; then
        epmd -kill >/dev/null 2>&1 && say "epmd stopped"
    fi
fi
[ "${RABBIT_PURGE:-0}" = 1 ] && rm -rf "$base"
exit 0
