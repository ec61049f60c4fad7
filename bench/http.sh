#!/bin/sh
# http.sh BUILD - mdp-http against the direct MDP async client, in one run:
# one mdp-broker, and for each concurrency (1 and 64 in flight) wrk over HTTP
# keep-alive connections through mdp-http to mdp-echo-worker, then mdp-bench's
# async client (one client, window W) on the same broker with its own echo
# worker. Prints a Markdown section on stdout (bench/run.sh appends it to
# bench/RESULTS.md). HTTP_BENCH_SECONDS (5) sets each run's length.
set -eu
BUILD=${1:-build}
SECS=${HTTP_BENCH_SECONDS:-5}
BIN="$BUILD/bin"
command -v wrk >/dev/null || { echo "http.sh: wrk missing (make deps)" >&2; exit 1; }
TMP=$(mktemp -d)
pids=""
cleanup() { for p in $pids; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT INT TERM

# wait_line FILE NEEDLE: wait (10 s at most) until FILE holds a line with NEEDLE
wait_line() {
    i=0
    until grep -q "$2" "$1" 2>/dev/null; do
        i=$((i + 1)); [ $i -lt 200 ] || { echo "http.sh: no '$2' in $1" >&2; cat "$1" >&2; exit 1; }
        sleep 0.05
    done
}

"$BIN/mdp-broker" -e 'tcp://127.0.0.1:*' 2>"$TMP/broker.log" &
pids="$pids $!"
wait_line "$TMP/broker.log" "serving on"
EP=$(sed -n 's/.*serving on \(tcp:[^ ]*\).*/\1/p' "$TMP/broker.log" | head -1)
"$BIN/mdp-echo-worker" -e "$EP" echo 2>"$TMP/worker.log" &
pids="$pids $!"
"$BIN/mdp-http" --listen 127.0.0.1:0 -e "$EP" 2>"$TMP/http.log" &
pids="$pids $!"
wait_line "$TMP/http.log" "serving on"
URL=$(sed -n 's/.*serving on \(http:[^ ]*\).*/\1/p' "$TMP/http.log" | head -1)
cat >"$TMP/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"payload": "0123456789abcdef"}'
wrk.headers["Content-Type"] = "application/json"
LUA
# The worker is registered once a call succeeds.
i=0
until wrk -t1 -c1 -d1s -s "$TMP/post.lua" "$URL/v1/services/echo/bench.echo" 2>/dev/null \
        | grep -q "Requests/sec"; do
    i=$((i + 1)); [ $i -lt 20 ] || { echo "http.sh: mdp-http never answered" >&2; exit 1; }
done

# to_us VALUE: wrk's "123.45us" / "1.23ms" / "1.2s" in microseconds
to_us() {
    echo "$1" | awk '{ v = $1 + 0; if ($1 ~ /us$/) print v; else if ($1 ~ /ms$/) print v * 1000;
                       else if ($1 ~ /s$/) print v * 1000000; else print v }'
}

echo
echo "## HTTP gateway (mdp-http) next to the direct MDP async client"
echo
echo "Written by \`sh bench/http.sh $BUILD\` (also run by \`make bench\`) on $(date -u '+%Y-%m-%d %H:%M UTC'),"
echo "${SECS} s per row, one broker for all rows, 16-byte JSON payload. *HTTP*: \`wrk\` (keep-alive,"
echo "C connections, one request in flight each) -> mdp-http -> mdp-broker -> mdp-echo-worker."
echo "*MDP*: \`mdp-bench -e EP --broker mdp --mode async -c 1 -W C -w 1\` (one async client with C"
echo "in flight, mdp-bench's own echo worker) on the same broker. 2 shared cores: wrk, mdp-http,"
echo "the broker and the worker share them, so the ratio is what to read."
echo
echo "Load average before: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine competes too)."
echo
echo "| in flight | HTTP req/s | HTTP p50 / p99 us | MDP req/s | MDP p50 / p99 us | HTTP / MDP |"
echo "|---:|---:|---:|---:|---:|---:|"
for C in 1 64; do
    T=1; [ "$C" -gt 1 ] && T=2
    wrk -t$T -c$C -d${SECS}s --latency -s "$TMP/post.lua" "$URL/v1/services/echo/bench.echo" \
        >"$TMP/wrk-$C.txt"
    hrps=$(awk '/Requests\/sec/ { print $2 }' "$TMP/wrk-$C.txt")
    hp50=$(to_us "$(awk '$1 == "50%" { print $2 }' "$TMP/wrk-$C.txt")")
    hp99=$(to_us "$(awk '$1 == "99%" { print $2 }' "$TMP/wrk-$C.txt")")
    errors=$(grep -c "Non-2xx\|Socket errors" "$TMP/wrk-$C.txt" || true)
    "$BIN/mdp-bench" -e "$EP" --broker mdp --mode async -c 1 -W $C -w 1 -s 16 -d "$SECS" --json \
        >"$TMP/mdp-$C.json" 2>"$TMP/mdp-$C.log"
    set -- $(/usr/bin/python3 -c 'import json,sys; j=json.loads(open(sys.argv[1]).readline()); j=j.get("mdp", j);
print("%.0f %.0f %.0f" % (j["rps"], j["latency_us"]["p50"], j["latency_us"]["p99"]))' "$TMP/mdp-$C.json")
    ratio=$(awk -v a="$hrps" -v b="$1" 'BEGIN { printf "%.2f", a / b }')
    note=""; [ "$errors" != 0 ] && note=" (wrk saw errors)"
    printf '| %d | %.0f | %.0f / %.0f | %s | %s / %s | **%s**%s |\n' "$C" "$hrps" "$hp50" "$hp99" \
        "$1" "$2" "$3" "$ratio" "$note"
done
echo
echo "Load average after: $(cut -d' ' -f1-3 /proc/loadavg). Target: HTTP >= 0.7x the direct client at"
echo "64 in flight. The two paths differ in more than HTTP: the HTTP rows add a process"
echo "(mdp-http) and wrk on the same two cores, and answer from mdp-echo-worker (libmdp's"
echo "worker, a background thread per worker) where mdp-bench uses its own lean raw worker."
