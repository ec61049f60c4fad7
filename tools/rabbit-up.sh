#!/usr/bin/env bash
# rabbit-up.sh [PORT] - bring up a private RabbitMQ node for tests and benches:
# listening on 127.0.0.1:PORT only, all state in one directory of its own, no
# systemd, no /etc/rabbitmq, /var/lib/rabbitmq or /var/log/rabbitmq. Prints the
# AMQP URL (amqp://guest:guest@127.0.0.1:PORT/%2f) on stdout, progress on stderr,
# and exits 0 once the node takes AMQP connections; non-zero (loudly) otherwise.
#
#   PORT                 AMQP port (default $RABBIT_PORT, else 5673). The Erlang
#                        distribution port is PORT+20000, so PORT must be < 45000.
#   RABBIT_BASE=DIR      state directory (default ${TMPDIR:-/tmp}/mdp-rabbitmq-PORT)
#   RABBIT_VHOSTS="/a /b" extra vhosts, created with full rights for guest
#   RABBIT_KEEP_DATA=1   start on the data left by the last run (restart tests)
#   RABBIT_TIMEOUT=S     how long to wait for the boot (default 60)
#   RABBIT_TLS_PORT=P    also an amqps listener on 127.0.0.1:P, with the PEM files
#   RABBIT_TLS_DIR=DIR   DIR/ca.pem, DIR/server.pem and DIR/server.key (no client
#                        certificate asked for)
#
# Calling it again for a node that is up only prints the URL (and adds vhosts).
# DIR/ctl runs rabbitmqctl against this node: DIR/ctl list_queues name messages
set -euo pipefail

port=${1:-${RABBIT_PORT:-5673}}
case $port in '' | *[!0-9]*) echo "rabbit-up: bad port '$port'" >&2; exit 2 ;; esac
if [ "$port" -lt 1024 ] || [ "$port" -ge 45000 ]; then
    echo "rabbit-up: port $port out of range (1024..44999: the node also takes PORT+20000)" >&2
    exit 2
fi
dist_port=$((port + 20000))
base=${RABBIT_BASE:-${TMPDIR:-/tmp}/mdp-rabbitmq-$port}
node=rabbit$port@localhost
wait_s=${RABBIT_TIMEOUT:-60}
# The programs themselves: /usr/sbin/rabbitmq* are wrappers that switch to the
# 'rabbitmq' user and its home, which would defeat the private state directory.
bin=/usr/lib/rabbitmq/bin
url="amqp://guest:guest@127.0.0.1:$port/%2f"

say() { echo "rabbit-up: $*" >&2; }

[ -x "$bin/rabbitmq-server" ] || { say "no $bin/rabbitmq-server: apt-get install rabbitmq-server"; exit 2; }
mkdir -p "$base"
base=$(cd "$base" && pwd)

# The server and the CLI read everything from the environment. HOME is where
# both find the Erlang cookie, so they must agree on it.
export HOME=$base
export RABBITMQ_NODENAME=$node
export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
export RABBITMQ_NODE_PORT=$port
export RABBITMQ_DIST_PORT=$dist_port
export RABBITMQ_MNESIA_BASE=$base/mnesia
export RABBITMQ_LOG_BASE=$base/log
export RABBITMQ_CONFIG_FILE=$base/rabbitmq.conf
export RABBITMQ_ADVANCED_CONFIG_FILE=$base/advanced.config
export RABBITMQ_CONF_ENV_FILE=$base/rabbitmq-env.conf
export RABBITMQ_ENABLED_PLUGINS_FILE=$base/enabled_plugins
export RABBITMQ_PID_FILE=$base/rabbit.pid
loopback_dist="-kernel inet_dist_use_interface {127,0,0,1}"
export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=$loopback_dist
export RABBITMQ_CTL_ERL_ARGS=$loopback_dist
export ERL_EPMD_ADDRESS=127.0.0.1
export ERL_EPMD_PORT=${ERL_EPMD_PORT:-4369}

# DIR/ctl: rabbitmqctl bound to this node, for tests and for people.
cat >"$base/ctl" <<EOF
#!/bin/sh
HOME='$base' ERL_EPMD_PORT='$ERL_EPMD_PORT' RABBITMQ_CTL_ERL_ARGS='$loopback_dist'
export HOME ERL_EPMD_PORT RABBITMQ_CTL_ERL_ARGS
exec $bin/rabbitmqctl -n '$node' "\$@"
EOF
chmod 755 "$base/ctl"

ctl() { "$bin/rabbitmqctl" -n "$node" "$@"; }
running() { [ -s "$RABBITMQ_PID_FILE" ] && kill -0 "$(cat "$RABBITMQ_PID_FILE")" 2>/dev/null; }
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

add_vhosts() {
    for vhost in ${RABBIT_VHOSTS:-}; do
        ctl add_vhost "$vhost" >/dev/null 2>&1 || true   # already there is fine
        ctl set_permissions -p "$vhost" guest '.*' '.*' '.*' >/dev/null
        say "vhost $vhost"
    done
}

finish() {
    add_vhosts
    echo "$url" >"$base/url"
    echo "$url"
    exit 0
}

if running; then
    if ctl await_startup --timeout "$wait_s" >/dev/null 2>&1; then
        say "$node is already up (pid $(cat "$RABBITMQ_PID_FILE"))"
        finish
    fi
    say "$node has a live process that does not answer; run tools/rabbit-down.sh $port"
    exit 1
fi

tls_port=${RABBIT_TLS_PORT:-}
if [ -n "$tls_port" ]; then
    tls_dir=$(cd "${RABBIT_TLS_DIR:?RABBIT_TLS_PORT needs RABBIT_TLS_DIR}" && pwd)
    for f in ca.pem server.pem server.key; do
        [ -r "$tls_dir/$f" ] || { say "no $tls_dir/$f"; exit 2; }
    done
fi

for p in "$port" "$dist_port" $tls_port; do
    if listening "$p"; then
        say "127.0.0.1:$p is taken by another program"
        exit 1
    fi
done

rm -f "$RABBITMQ_PID_FILE"
[ "${RABBIT_KEEP_DATA:-0}" = 1 ] || rm -rf "$base/mnesia" "$base/log"
mkdir -p "$base/mnesia" "$base/log"
if [ ! -s "$base/.erlang.cookie" ]; then
    (umask 077; od -An -N20 -tx1 /dev/urandom | tr -dc '0-9a-f' | tr a-f A-F >"$base/.erlang.cookie")
    chmod 400 "$base/.erlang.cookie"
fi
: >"$RABBITMQ_CONF_ENV_FILE"
echo '[].' >"$RABBITMQ_ENABLED_PLUGINS_FILE"   # no management plugin: quicker boot, no HTTP port
cat >"$RABBITMQ_CONFIG_FILE" <<EOF
listeners.tcp.default = 127.0.0.1:$port
loopback_users.guest = true
log.console = false
log.file.level = info
disk_free_limit.absolute = 10MB
EOF
if [ -n "$tls_port" ]; then
    cat >>"$RABBITMQ_CONFIG_FILE" <<EOF
listeners.ssl.default = 127.0.0.1:$tls_port
ssl_options.cacertfile = $tls_dir/ca.pem
ssl_options.certfile = $tls_dir/server.pem
ssl_options.keyfile = $tls_dir/server.key
ssl_options.verify = verify_none
ssl_options.fail_if_no_peer_cert = false
EOF
fi

say "starting $node: amqp 127.0.0.1:$port, dist $dist_port, state in $base"
started=$(date +%s%N)
setsid "$bin/rabbitmq-server" >"$base/log/stdout.log" 2>&1 </dev/null &

# 'wait PIDFILE' returns once the rabbit application has booted, and gives up
# early if the server process dies.
if ! ctl wait --timeout "$wait_s" "$RABBITMQ_PID_FILE" >"$base/log/wait.log" 2>&1; then
    say "$node did not start; the end of its logs:"
    tail -n 30 "$base/log/stdout.log" "$base/log/$node.log" >&2 2>/dev/null || true
    exit 1
fi
tries=0
until listening "$port" && { [ -z "$tls_port" ] || listening "$tls_port"; }; do
    tries=$((tries + 1))
    if [ "$tries" -gt 50 ]; then
        say "$node booted but 127.0.0.1:$port takes no connections"
        exit 1
    fi
    sleep 0.1
done
say "$node up in $((($(date +%s%N) - started) / 1000000)) ms (pid $(cat "$RABBITMQ_PID_FILE"))"
finish
