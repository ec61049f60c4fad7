#!/bin/sh
# run.sh BUILD - the standard benchmark matrix behind `make bench`: every
# configuration runs against mdp-broker and against mdp-relay (the bare
# envelope swap) alternately, so that each mdp figure sits next to the raw one
# from the same run, as a ratio; then callgrind's instructions per request,
# memory per idle worker and per queued request, and a profile of the broker.
# Then issue 18's scenario: one client with 20,000 plain MDP/0.1 requests in
# flight through one worker, both brokers under callgrind --separate-threads.
# Writes bench/RESULTS.md (then the AMQP bridge and mdp-http sections); the raw
# JSON and callgrind files go to BUILD/bench.
# BENCH_SECONDS (3) and BENCH_REPEAT (2, best kept) trade time for stability;
# BENCH_RENDER_ONLY=1 only rewrites RESULTS.md from the files of the last run.
set -eu
BUILD=${1:-build}
BENCH="$BUILD/bin/mdp-bench"
OUT="$BUILD/bench"
SECONDS_EACH=${BENCH_SECONDS:-3}
REPEAT=${BENCH_REPEAT:-2}
CG_REQUESTS=${BENCH_CALLGRIND_REQUESTS:-20000}
PIPE=${BENCH_PIPE_REQUESTS:-20000}
PYTHON=/usr/bin/python3
[ -x "$PYTHON" ] || PYTHON=python3
[ -x "$BENCH" ] || { echo "run.sh: $BENCH not built (make BUILD=$BUILD all)" >&2; exit 1; }
command -v valgrind >/dev/null || { echo "run.sh: valgrind missing (make deps)" >&2; exit 1; }

# run NAME ARGS... : one mdp-bench invocation, its JSON in OUT/NAME.json;
# a failure ends the run (row: the throughput table shows it, the run goes on)
row() {
    run "$@" || { rm -f "$OUT/$1.json"; echo "  the table shows $1 as failed" >&2; }
}
run() {
    name=$1; shift
    echo "mdp-bench $* --json" >>"$OUT/commands"
    printf '%-26s' "$name" >&2
    t0=$(date +%s)
    if ! "$BENCH" "$@" --json >"$OUT/$name.json" 2>"$OUT/$name.log"; then
        echo " FAILED (see $OUT/$name.log)" >&2
        cat "$OUT/$name.log" >&2
        return 1
    fi
    echo " $(( $(date +%s) - t0 )) s" >&2
}

# measure: the whole matrix, into OUT (meta keeps what the report needs)
measure() {
    rm -rf "$OUT"
    mkdir -p "$OUT/callgrind"
    started=$(date +%s)
    load_before=$(cut -d' ' -f1-3 /proc/loadavg)
    : >"$OUT/commands"
    COMMON="--broker both -c 4 -d $SECONDS_EACH --repeat $REPEAT"
    for mode in sync async; do
        window=""; [ "$mode" = async ] && window="-W 16"
        for workers in 1 4; do
            for size in 16 16384; do
                row "$mode-w$workers-s$size" $COMMON --mode $mode $window -w $workers -s $size
            done
        done
    done
    row "async-w4-s16-services10k" $COMMON --mode async -W 16 -w 4 -s 16 --services 10000
    row "async-w4-s16-idle1000" $COMMON --mode async -W 16 -w 4 -s 16 --idle-workers 1000
    # One client, the whole window in flight at once, one worker; warmed up
    # with one whole window, so that both brokers have held that many before.
    PIPE_ARGS="--broker both --mode pipe -c 1 -W $PIPE -w 1 -s 16 -n $PIPE --warmup $PIPE"
    run "pipe-w1-s16" $PIPE_ARGS --repeat $REPEAT || exit 1
    mkdir -p "$OUT/callgrind-pipe"
    run "callgrind-pipe" $PIPE_ARGS --callgrind --heartbeat 60000 --callgrind-dir "$OUT/callgrind-pipe" || exit 1
    CG="--broker both --callgrind --mode async -c 4 -W 16 -w 4 -s 16"
    run "callgrind" $CG -n "$CG_REQUESTS" --callgrind-dir "$OUT/callgrind" || exit 1
    # Scaling checks under callgrind: heartbeats every 60 s, so that only the
    # message path counts (10,000 workers heartbeating add their own cost).
    run "callgrind-services10k" $CG -n 5000 --heartbeat 60000 --services 10000 || exit 1
    run "callgrind-idle1000" $CG -n 5000 --heartbeat 60000 --idle-workers 1000 || exit 1
    run "queue" --queue 100000 -s 16 || exit 1
    f="$OUT/callgrind/callgrind.mdp.$CG_REQUESTS-01"
    callgrind_annotate --inclusive=yes --threshold=100 --auto=no "$f" >"$f.inclusive.txt"
    callgrind_annotate --threshold=100 --auto=no "$f" >"$f.self.txt"
    f="$OUT/callgrind-pipe/callgrind.mdp.$PIPE-01"
    callgrind_annotate --inclusive=yes --threshold=100 --auto=no "$f" >"$f.inclusive.txt"
    cat >"$OUT/meta" <<META
load_before=$load_before
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
elapsed=$(( $(date +%s) - started ))
date=$(date -u '+%Y-%m-%d %H:%M UTC')
META
}

# BENCH_RENDER_ONLY=1 rewrites RESULTS.md from the last run's OUT.
[ "${BENCH_RENDER_ONLY:-}" = 1 ] || measure
export OUT CG_REQUESTS SECONDS_EACH REPEAT BUILD PIPE
"$PYTHON" - <<'EOF'
# Render OUT/*.json into bench/RESULTS.md.
import json, os, re, subprocess

out, n_cg, n_pipe = os.environ["OUT"], int(os.environ["CG_REQUESTS"]), int(os.environ["PIPE"])
meta = dict(line.rstrip("\n").split("=", 1) for line in open(os.path.join(out, "meta")))

def load(name):
    with open(os.path.join(out, name + ".json")) as f:
        return json.loads(f.readline())

def failure(name):
    """Why a row of the matrix has no figures: the last line of its log."""
    try:
        with open(os.path.join(out, name + ".log")) as f:
            lines = [l.strip() for l in f if l.strip()]
        return lines[-1] if lines else "no output"
    except OSError:
        return "not run"

def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()
    except OSError:
        return "?"

def ratio(a, b):
    return "%.2f" % (a / b) if a and b else "-"

def num(v, fmt="%.0f"):
    return fmt % v if v is not None else "-"

cpu = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip()
elapsed = int(meta["elapsed"])
lines = []
w = lines.append
w("# mdp-bench results")
w("")
w("Written by `make bench` (`sh bench/run.sh %s`) on %s, in %d s. Every row ran"
  % (os.environ["BUILD"], meta["date"], elapsed))
w("against `mdp-broker` and against `mdp-relay` (the in-repo lean MDP/0.1 relay: LRU idle")
w("workers, each given one request at a time as MDP requires, a FIFO of waiting requests, and")
w("nothing else; the ceiling any broker can reach here), alternately, %s times each for %s s, "
  "best run kept. Wall-clock"
  % (os.environ["REPEAT"], os.environ["SECONDS_EACH"]))
w("figures on this shared machine move from run to run; read the ratios, and for the")
w("broker's own cost read the instruction counts, which repeat.")
w("")
w("| machine | |")
w("|---|---|")
w("| CPU | %s, %s cores (nproc) |" % (cpu, sh("nproc")))
w("| kernel | %s |" % sh("uname -sr"))
w("| libzmq / czmq | %s / %s |" % (sh("pkg-config --modversion libzmq"), sh("pkg-config --modversion libczmq")))
w("| source | %s |" % (sh("git describe --always --dirty 2>/dev/null") or "?"))
w("| load average before / after | %s / %s |" % (meta["load_before"], meta["load_after"]))
w("")

# Per-function instructions from a callgrind_annotate listing.
def annotate(path, inclusive):
    funcs = {}
    pat = re.compile(r"^\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(.*)$")
    with open(path) as f:
        for line in f:
            mm = pat.match(line)
            if not mm or "PROGRAM TOTALS" in line:
                continue
            name = mm.group(2)
            obj = re.search(r"\[([^\]]*)\]\s*$", name)
            name = re.sub(r"\s*\[[^\]]*\]\s*$", "", name)
            fn = name.split(":", 1)[-1] if ":" in name else name
            lib = os.path.basename(obj.group(1)) if obj else ""
            if name.startswith("???:"):
                fn = "%s:%s" % (lib.split(".so")[0], fn) if lib else fn
            else:
                fn = "%s:%s" % (os.path.basename(name.split(":", 1)[0]), fn)
            cost = int(mm.group(1).replace(",", ""))
            #  callgrind_annotate may list a function twice (absolute and
            #  relative source path): inclusive costs repeat, self costs add.
            funcs[fn] = max(funcs.get(fn, 0), cost) if inclusive else funcs.get(fn, 0) + cost
    return funcs

SKIP = ("(below main)", "__libc_start", "libc_start", "ld-linux", ":0x", "start_thread", "clone")

# mdp-relay before issue 18 in the pipe scenario (it kept a malloc'd copy of
# each waiting request's frame array and packed every envelope into a token).
RELAY_BEFORE_MAIN, RELAY_BEFORE_ALL = "13605", "27422"

# Headline: callgrind.
cg = load("callgrind")
m, r = cg["mdp"]["callgrind"], cg["raw"]["callgrind"]
w("## Broker instructions per request (callgrind)")
w("")
w("The broker runs under callgrind with instrumentation off; it is switched on while %d" % n_cg)
w("pipelined requests run (async, 4 clients x 16 in flight, 4 workers, 16-byte payload) and")
w("off after the last reply, so start-up, registration, warm-up and shutdown never count.")
w("*main* is the broker's own thread (routing logic and the libzmq calls it makes); *all*")
w("adds libzmq's I/O thread (TCP framing, syscalls), which does the same work for both.")
w("These counts repeat to within about 0.5% from run to run.")
w("")
w("| | mdp | raw | mdp/raw | target |")
w("|---|---:|---:|---:|---:|")
w("| Ir per request, main thread | %s | %s | **%s** | <= 1.5 |"
  % (num(m["ir_main_per_request"]), num(r["ir_main_per_request"]), ratio(m["ir_main_per_request"], r["ir_main_per_request"])))
w("| Ir per request, all threads | %s | %s | **%s** | <= 1.5 |"
  % (num(m["ir_per_request"]), num(r["ir_per_request"]), ratio(m["ir_per_request"], r["ir_per_request"])))
w("| mdp - raw, main thread (the broker's own work) | %s | | | |"
  % num(m["ir_main_per_request"] - r["ir_main_per_request"]))
w("")

# Issue 18's scenario: one client, the whole window in flight, one worker.
pipe = load("callgrind-pipe")
pm, pr = pipe["mdp"]["callgrind"], pipe["raw"]["callgrind"]
w("## One client, %d requests in flight, one worker (issue 18)" % n_pipe)
w("")
w("One client sends %d plain MDP/0.1 requests at once (`[\"\"][\"MDPC01\"][service][16-byte" % n_pipe)
w("payload]`, no correlation frame, one body frame) through one worker, which gets them one")
w("at a time, so that nearly all of them wait in the broker; after a warm-up of one whole")
w("window, each broker runs under `valgrind --tool=callgrind --separate-threads=yes`, counting")
w("from the first request to the last reply (heartbeats every 60 s). *main* is the broker's")
w("own thread, *all* adds libzmq's I/O thread. mdp-relay is the ceiling: one ROUTER, MDP's")
w("own frames, LRU idle workers, a FIFO ring of moved frames, the client's routing id as the")
w("token, blocking reads; no services, heartbeats, deadlines or MMI, no allocation per message")
w("and no scan.")
w("")
w("| | main thread Ir/req | all threads Ir/req | mdp/relay main | mdp/relay all |")
w("|---|---:|---:|---:|---:|")
w("| lean relay outside this project (issue 18's figure, its own client and worker) | 12203 | 25961 | | |")
w("| mdp-relay before issue 18 (dbcf021, this scenario, measured once) | %s | %s | | |"
  % (RELAY_BEFORE_MAIN, RELAY_BEFORE_ALL))
w("| **mdp-relay** (this run) | **%s** | **%s** | | |"
  % (num(pr["ir_main_per_request"]), num(pr["ir_per_request"])))
w("| **mdp-broker** (this run) | **%s** | **%s** | **%s** | **%s** |"
  % (num(pm["ir_main_per_request"]), num(pm["ir_per_request"]),
     ratio(pm["ir_main_per_request"], pr["ir_main_per_request"]),
     ratio(pm["ir_per_request"], pr["ir_per_request"])))
w("| target for mdp-broker (the next step) | | | <= 1.20 | <= 1.10 |")
w("")
tp = load("pipe-w1-s16")
w("Without callgrind, the same scenario (best of %s): mdp-broker %s req/s, mdp-relay %s req/s,"
  % (os.environ["REPEAT"], num(tp["mdp"]["rps"]), num(tp["raw"]["rps"])))
w("**%s** of the relay's throughput (target >= 0.95); broker CPU %s and %s us per request."
  % (ratio(tp["mdp"]["rps"], tp["raw"]["rps"]), num(tp["mdp"]["broker_cpu_us_per_request"], "%.1f"),
     num(tp["raw"]["broker_cpu_us_per_request"], "%.1f")))
w("")
w("To reproduce this section alone (about two minutes per broker here):")
w("")
w("```")
w("make all")
w("build/bin/mdp-bench --broker both --mode pipe -c 1 -W %d -w 1 -s 16 -n %d --warmup %d \\" % (n_pipe, n_pipe, n_pipe))
w("    --callgrind --heartbeat 60000 --callgrind-dir /tmp/cg")
w("callgrind_annotate --inclusive=yes /tmp/cg/callgrind.mdp.%d-01 | head -40" % n_pipe)
w("```")
w("")
w("### Where the instructions go (mdp-broker, main thread, this scenario)")
w("")
w("`callgrind_annotate --inclusive=yes` of mdp-broker's main thread in the run above, top")
w("functions, as instructions per request (libzmq has no symbols here: its internals are")
w("counted inside the API calls that reach them).")
w("")
w("| inclusive Ir/req | % of main | function |")
w("|---:|---:|---|")
pipe_total = pm["ir_main_per_request"]
pipe_file = os.path.join(out, "callgrind-pipe", "callgrind.mdp.%d-01.inclusive.txt" % n_pipe)
shown = 0
for k, v in sorted(annotate(pipe_file, True).items(), key=lambda kv: -kv[1]):
    v = v / n_pipe
    if any(s in k for s in SKIP) or k.endswith(":main") or v > pipe_total * 1.01:
        continue
    w("| %.0f | %.1f | `%s` |" % (v, 100.0 * v / pipe_total, k))
    shown += 1
    if shown == 25:
        break
w("")

# The matrix.
w("## Throughput, latency and broker CPU")
w("")
w("4 clients; async clients keep 16 requests in flight (a correlation frame before the")
w("delimiter), sync clients one. *cpu/req* is the broker's CPU time (all threads) per request.")
w("The last row is issue 18's scenario: 1 client with %d plain requests in flight." % n_pipe)
w("")
w("| mode | workers | payload | services | idle workers | mdp req/s | raw req/s | ratio | mdp p50/p99 us | raw p50/p99 us | mdp cpu/req us | raw cpu/req us | ratio |")
w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
rows = [("%s-w%d-s%d" % (mode, wk, sz)) for mode in ("sync", "async") for wk in (1, 4) for sz in (16, 16384)]
rows += ["async-w4-s16-services10k", "async-w4-s16-idle1000", "pipe-w1-s16"]
runs = {}
for name in rows:
    if not os.path.exists(os.path.join(out, name + ".json")):
        w("| %s: **no figures**, the run failed (%s) | | | | | | | | | | | | |" % (name, failure(name)))
        continue
    j = load(name)
    runs[name] = j
    a, b = j["mdp"], j["raw"]
    w("| %s | %d | %d | %d | %d | %s | %s | %s | %s / %s | %s / %s | %s | %s | %s |" % (
        j["mode"], j["workers"], j["size"], j["services"], j["idle_workers"],
        num(a["rps"]), num(b["rps"]), ratio(a["rps"], b["rps"]),
        num(a["latency_us"]["p50"]), num(a["latency_us"]["p99"]),
        num(b["latency_us"]["p50"]), num(b["latency_us"]["p99"]),
        num(a["broker_cpu_us_per_request"], "%.1f"), num(b["broker_cpu_us_per_request"], "%.1f"),
        ratio(a["broker_cpu_us_per_request"], b["broker_cpu_us_per_request"])))
w("")

# Does cost grow with services / idle workers?
base = runs.get("async-w4-s16")
w("## Cost against the number of services and workers")
w("")
w("Broker CPU per request relative to the raw relay in the same run, for the async 4-worker")
w("16-byte row with 1 service and no idle worker, then with 10,000 registered services (held")
w("by 9,996 placeholder workers) and with 1,000 more idle workers. Flat means O(1).")
w("")
w("| configuration | mdp cpu/req us | raw cpu/req us | mdp/raw |")
w("|---|---:|---:|---:|")
for label, name in (("1 service, 0 idle", "async-w4-s16"), ("10,000 services", "async-w4-s16-services10k"),
                    ("1,000 idle workers", "async-w4-s16-idle1000")):
    if name not in runs:
        w("| %s | - | - | - |" % label)
        continue
    a, b = runs[name]["mdp"], runs[name]["raw"]
    w("| %s | %s | %s | %s |" % (label, num(a["broker_cpu_us_per_request"], "%.1f"),
                                 num(b["broker_cpu_us_per_request"], "%.1f"),
                                 ratio(a["broker_cpu_us_per_request"], b["broker_cpu_us_per_request"])))
w("")
w("The same under callgrind (main thread; the two scaling runs with 5,000 requests and")
w("heartbeats every 60 s so that 10,000 heartbeating workers do not add their own traffic;")
w("with 4 workers heartbeats are far below 0.1% of the count). Part of any growth is")
w("libzmq's: its ROUTER finds a peer's pipe in a tree keyed by routing id, which the relay")
w("pays too, so *mdp - raw* is the broker's own share.")
w("")
w("| configuration | mdp Ir/req | raw Ir/req | mdp/raw | mdp - raw |")
w("|---|---:|---:|---:|---:|")
for label, name in (("1 service, 0 idle", "callgrind"), ("10,000 services", "callgrind-services10k"),
                    ("1,000 idle workers", "callgrind-idle1000")):
    j = load(name)
    a, b = j["mdp"]["callgrind"]["ir_main_per_request"], j["raw"]["callgrind"]["ir_main_per_request"]
    w("| %s | %s | %s | %s | %s |" % (label, num(a), num(b), ratio(a, b), num(a - b)))
w("")

# Memory.
idle = runs.get("async-w4-s16-idle1000")
w("## Memory")
w("")
w("Broker resident set (VmRSS) when measuring began, and peak (VmHWM).")
w("")
w("| | mdp | raw |")
w("|---|---:|---:|")
for label, name in (("1 service, 0 idle workers", "async-w4-s16"), ("1,000 idle workers", "async-w4-s16-idle1000"),
                    ("10,000 services", "async-w4-s16-services10k")):
    if name not in runs:
        continue
    a, b = runs[name]["mdp"], runs[name]["raw"]
    w("| RSS / peak, %s (KiB) | %d / %d | %d / %d |" % (label, a["broker_rss_kib"], a["broker_hwm_kib"],
                                                      b["broker_rss_kib"], b["broker_hwm_kib"]))
per = lambda k: (idle[k]["broker_rss_kib"] - base[k]["broker_rss_kib"]) * 1024.0 / 1000 if idle and base else 0
w("| **RSS per idle worker** ((RSS with 1,000 - with 0) / 1,000) | **%.0f B** | %.0f B |" % (per("mdp"), per("raw")))
w("")
svc = runs.get("async-w4-s16-services10k") if base else None
per_service = ((svc["mdp"]["broker_rss_kib"] - base["mdp"]["broker_rss_kib"])
               - (svc["raw"]["broker_rss_kib"] - base["raw"]["broker_rss_kib"])) * 1024.0 / 9996 \
              if svc else None
w("The relay keeps nothing per idle peer, so its figure is libzmq's own cost of a connection")
w("(session, pipes, TCP buffers); **mdp minus raw, %.0f B, is what the broker adds per idle"
  % (per("mdp") - per("raw")))
w("worker** (target <= 1 KiB). This difference of two RSS readings moves by a few hundred")
w("bytes from run to run (malloc arenas, libzmq buffers); read it as an order of magnitude.")
w("The same difference for the 10,000-service row, per placeholder worker with its own")
w("service: %s." % ("%.0f B" % per_service if svc else "not measured in this run"))
w("")
q = load("queue")["queue"]
w("Queued requests: %d requests of %d body bytes each (`bench.echo` + a 16-byte payload)"
  % (q["requests"], q["body_bytes"]))
w("sent to a service with no worker (deadline 1 day, `--max-queue` above the count): broker")
w("RSS %d KiB -> %d KiB, **%.0f bytes per queued request, %.0f over the body bytes**."
  % (q["rss_before_kib"], q["rss_after_kib"], q["bytes_per_request"], q["overhead_bytes"]))
w("")

cgdir = os.path.join(out, "callgrind")
def per_request(kind):
    run = annotate(os.path.join(cgdir, "callgrind.mdp.%d-01.%s.txt" % (n_cg, kind)),
                   kind == "inclusive")
    return sorted(((v / n_cg, k) for k, v in run.items() if v > 0), reverse=True)

total = m["ir_main_per_request"]
w("## Where the time goes (mdp-broker, main thread)")
w("")
w("From the %d-request callgrind run above (`callgrind_annotate` of the broker's main" % n_cg)
w("thread): each function's instructions per request, as a share of the %.0f in all. libzmq" % total)
w("has no debug symbols here: its API entry points are named, its internals (shown only in")
w("the second table, summed) sit inside them.")
w("")
w("| inclusive Ir/req | % | function |")
w("|---:|---:|---|")
shown = 0
for v, k in per_request("inclusive"):
    if any(s in k for s in SKIP) or k.endswith(":main") or v > total * 1.01:
        continue
    w("| %.0f | %.1f | `%s` |" % (v, 100.0 * v / total, k))
    shown += 1
    if shown == 18:
        break
w("")
selfs = {}
groups = {"libzmq": 0.0, "broker": 0.0, "other": 0.0}
for v, k in per_request("self"):
    group = "libzmq" if k.startswith("libzmq") else \
            "broker" if re.match(r"(broker|htab|dlist|access|config)[a-z_]*\.[ch]:", k) else "other"
    groups[group] += v
    if ":0x" in k:
        k = k.split(":", 1)[0] + " internals (no symbols)"
    selfs[k] = selfs.get(k, 0) + v
w("By where the instructions themselves run (self cost): libzmq %.0f (%.0f%%), the broker's"
  % (groups["libzmq"], 100 * groups["libzmq"] / total))
w("own code %.0f (%.0f%%), libc and the rest %.0f (%.0f%%) per request."
  % (groups["broker"], 100 * groups["broker"] / total, groups["other"], 100 * groups["other"] / total))
w("")
w("| self Ir/req | % | function |")
w("|---:|---:|---|")
for k, v in sorted(selfs.items(), key=lambda kv: -kv[1])[:15]:
    w("| %.0f | %.1f | `%s` |" % (v, 100.0 * v / total, k))
w("")

# Calls per request into libzmq (and the clock), from callgrind's call counts.
def calls(path):
    names, counts, callee = {}, {}, None
    with open(path) as f:
        for line in f:
            mm = re.match(r"^(c?fn)=\((\d+)\)(?: (.*))?$", line.rstrip("\n"))
            if mm:
                if mm.group(3):
                    names[mm.group(2)] = mm.group(3)
                if mm.group(1) == "cfn":
                    callee = names.get(mm.group(2))
                continue
            mm = re.match(r"^calls=(\d+)", line)
            if mm and callee:
                counts[callee] = counts.get(callee, 0) + int(mm.group(1))
    return counts
cm = calls(os.path.join(cgdir, "callgrind.mdp.%d-01" % n_cg))
cr = calls(os.path.join(cgdir, "callgrind.raw.%d-01" % n_cg))
w("Calls per request from the main thread, mdp next to raw (callgrind's call counts):")
w("")
w("| function | mdp | raw |")
w("|---|---:|---:|")
wanted = [k for k in set(cm) | set(cr) if re.match(r"(zmq_|clock_gettime|malloc$|free$|htab_)", k)]
for k in sorted(wanted, key=lambda k: -(cm.get(k, 0) + cr.get(k, 0))):
    if max(cm.get(k, 0), cr.get(k, 0)) / n_cg >= 0.1:
        w("| `%s` | %.1f | %.1f |" % (k.split("@")[0], cm.get(k, 0) / n_cg, cr.get(k, 0) / n_cg))
w("")

w("## Commands")
w("")
w("```")
with open(os.path.join(out, "commands")) as f:
    for line in f:
        w(line.rstrip("\n"))
w("```")
with open("bench/RESULTS.md", "w") as f:
    f.write("\n".join(lines) + "\n")
print("bench/RESULTS.md written: mdp/raw instructions per request %s (main thread), %s (all threads)"
      % (ratio(m["ir_main_per_request"], r["ir_main_per_request"]), ratio(m["ir_per_request"], r["ir_per_request"])))
EOF

# The AMQP bridge (issue 7): MDP -> mdp-amqp-bridge -> RabbitMQ -> a C echo
# service, next to a direct rabbitmq-c RPC to the same service, in one run.
bridge_section() {
    echo
    echo "## AMQP bridge round trips"
    echo
    echo "\`$BUILD/bin/mdp-bridge-bench --rabbit -n 10000 -W 16\` (a private RabbitMQ on"
    echo "loopback, started and stopped by the run; raw profile, 64-byte bodies):"
    echo
    echo '```'
    "$BUILD/bin/mdp-bridge-bench" --rabbit -n 10000 -W 16 2>&1 | grep -v '^rabbit-\|^[DIW]: '
    echo '```'
}
if [ "${BENCH_RENDER_ONLY:-}" != 1 ] && [ "${BENCH_BRIDGE:-1}" = 1 ]; then
    bridge_section >>bench/RESULTS.md
fi

# mdp-http (issue 17): HTTP through the gateway next to the direct MDP async
# client, at 1 and 64 in flight, in one run (bench/http.sh).
if [ "${BENCH_RENDER_ONLY:-}" != 1 ] && [ "${BENCH_HTTP:-1}" = 1 ]; then
    sh bench/http.sh "$BUILD" >>bench/RESULTS.md
fi
# The worker (issue 14): libmdp's worker and client next to bare libzmq peers
# speaking the same frames, through one mdp-broker, in one run.
worker_section() {
    echo
    echo "## libmdp worker and client against bare libzmq peers"
    echo
    echo "\`$BUILD/bin/mdp-worker-bench -n 20000 -c 8 --rounds 3 --callgrind 5000\`: one mdp-broker;"
    echo "the worker is a process (libmdp: \`mdp_worker_run\` with an echo hook that decodes and"
    echo "re-encodes the JSON; bare: a libzmq DEALER that echoes the frames); clients are bare"
    echo "DEALERs (the client row: \`mdp_client_t\` against a bare DEALER, with the bare worker)."
    echo "Rounds alternate the order; best of 3 kept. Instructions are the worker process's,"
    echo "counted by callgrind over 5000 sync round trips only."
    echo
    "$BUILD/bin/mdp-worker-bench" -n 20000 -c 8 --rounds 3 --callgrind 5000 2>/dev/null
}
if [ "${BENCH_RENDER_ONLY:-}" != 1 ] && [ "${BENCH_WORKER:-1}" = 1 ]; then
    worker_section >>bench/RESULTS.md
fi
