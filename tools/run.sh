#!/usr/bin/env bash
# run.sh - the main job: mdp-broker on tcp://127.0.0.1:5555 with an echo worker,
# in the foreground. Ctrl-C (or SIGTERM) stops both.
set -eu
BUILD=${1:-build}
EP=${MDP_ENDPOINT:-tcp://127.0.0.1:5555}
"$BUILD/bin/mdp-broker" -e "$EP" &
broker=$!
"$BUILD/bin/mdp-echo-worker" -e "$EP" echo &
worker=$!
stop() {
    trap - INT TERM
    kill -TERM "$worker" "$broker" 2>/dev/null || true
    wait "$worker" 2>/dev/null || true
    wait "$broker" 2>/dev/null || true
    exit 0
}
trap stop INT TERM
echo "mdp: broker on $EP with an 'echo' worker; try: $BUILD/bin/mdp-req -e $EP echo config.get '{\"key\": 1}'" >&2
echo "mdp: Ctrl-C stops both" >&2
# If either process dies, stop the other.
while kill -0 "$broker" 2>/dev/null && kill -0 "$worker" 2>/dev/null; do
    wait -n 2>/dev/null || sleep 1
done
stop
