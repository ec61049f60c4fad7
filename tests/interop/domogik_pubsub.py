#!/usr/bin/python3
"""domogik_pubsub.py - a publisher and a subscriber that behave on the wire
like Domogik's MQPub and MQAsyncSub (domogik-mq pubsub/publisher.py and
subscriber.py).

pub ENDPOINT CATEGORY JSON [--count N] [--seq] [--warmup CATEGORY]
    Like MQPub: a PUB socket connected to the forwarder's publisher side,
    a 10 ms pause after connecting (Domogik's slow-joiner remedy), then for
    each event the frames ["<category>.<str(time.time()) with '.'->'_'>.0_1"]
    [json.dumps(data)]. --count sends N events (default 1); --seq adds
    "seq": i (0..N-1) to each event's object. A bare PUB cannot know when the
    forwarder's subscription has reached it, so for tests --warmup CATEGORY
    first sends events of CATEGORY every 20 ms until a line (or EOF) arrives
    on stdin, and only then the N events. Writes SENT N to stdout at the end
    and closes with a 1 s linger so every event leaves.

sub ENDPOINT [PREFIX...] --count N [--seconds S] [--raw]
    Like MQAsyncSub: a SUB socket connected to the forwarder's subscriber
    side, subscribed to each PREFIX ('' when none is given). For each message:
    fewer than 2 frames, or a topic of fewer than 3 dot-separated parts, is
    ignored; the last two parts (timestamp and version) are removed to give
    the category; data that is not JSON is ignored. Each event is printed as
    one JSON line {"category": ..., "data": ...} (--raw adds "topic", the
    topic frame as received). Exits 0 after N events, 1
    if S seconds (default 30) pass first, 0 on SIGTERM/SIGINT.
"""

import argparse
import json
import signal
import sys
import time

import zmq

MSG_VERSION = "0_1"
SLICE = 0.1              # longest single poll, so a signal is seen quickly
WARMUP_INTERVAL = 0.02   # seconds between two warm-up events

stopping = False         # set by SIGTERM/SIGINT


def on_signal(signum, frame):
    global stopping
    stopping = True


def topic(category):
    """Domogik's message id: category, timestamp with '_' for '.', version."""
    return "{0}.{1}.{2}".format(category, str(time.time()).replace(".", "_"), MSG_VERSION)


def send_event(sock, category, data):
    sock.send_multipart([topic(category).encode("utf-8"), json.dumps(data).encode("utf-8")])


def stdin_ready():
    """True once a line or EOF is waiting on stdin."""
    poller = zmq.Poller()
    poller.register(sys.stdin, zmq.POLLIN)
    return bool(poller.poll(0))


def run_pub(args):
    try:
        data = json.loads(args.json)
    except ValueError as e:
        print("domogik_pubsub: invalid JSON: %s" % e, file=sys.stderr)
        return 2
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PUB)
    sock.connect(args.endpoint)
    time.sleep(0.01)  # MQPub's slow-joiner pause
    if args.warmup:
        while not stopping and not stdin_ready():
            send_event(sock, args.warmup, {"warmup": True})
            time.sleep(WARMUP_INTERVAL)
        sys.stdin.readline()
    for i in range(args.count):
        event = dict(data, seq=i) if args.seq and isinstance(data, dict) else data
        send_event(sock, args.category, event)
    print("SENT %d" % args.count, flush=True)
    sock.close(1000)
    ctx.term()
    return 0


def category_of(raw_topic):
    """MQAsyncSub's split: drop the version and the timestamp, or None."""
    parts = raw_topic.decode("utf-8", errors="replace").split(".")
    if len(parts) < 3:
        return None
    return ".".join(parts[:-2])


def run_sub(args):
    ctx = zmq.Context()
    sock = ctx.socket(zmq.SUB)
    sock.connect(args.endpoint)
    for prefix in args.prefixes or [""]:
        sock.setsockopt_string(zmq.SUBSCRIBE, prefix)
    deadline = time.monotonic() + args.seconds
    seen = 0
    rc = 1
    while not stopping and time.monotonic() < deadline:
        if not sock.poll(int(SLICE * 1000), zmq.POLLIN):
            continue
        msg = sock.recv_multipart()
        if len(msg) < 2:
            continue
        category = category_of(msg[0])
        if category is None:
            continue
        try:
            data = json.loads(msg[1].decode("utf-8"))
        except ValueError:
            continue
        event = {"category": category, "data": data}
        if args.raw:
            event["topic"] = msg[0].decode("utf-8", errors="replace")
        print(json.dumps(event), flush=True)
        seen += 1
        if seen >= args.count:
            rc = 0
            break
    if stopping:
        rc = 0
    sock.close(0)
    ctx.term()
    return rc


def positive_int(text):
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be > 0: %r" % text)
    return value


def parse_args(argv):
    parser = argparse.ArgumentParser(description="Domogik-shaped event peers (MQPub, MQAsyncSub).")
    sub = parser.add_subparsers(dest="mode", required=True)
    pub = sub.add_parser("pub", help="publish like MQPub")
    pub.add_argument("endpoint")
    pub.add_argument("category")
    pub.add_argument("json")
    pub.add_argument("--count", type=positive_int, default=1)
    pub.add_argument("--seq", action="store_true", help='add "seq": i to each object')
    pub.add_argument("--warmup", metavar="CATEGORY", default=None,
                     help="send CATEGORY events until a line arrives on stdin")
    subp = sub.add_parser("sub", help="subscribe like MQAsyncSub")
    subp.add_argument("endpoint")
    subp.add_argument("prefixes", nargs="*")
    subp.add_argument("--count", type=positive_int, required=True)
    subp.add_argument("--seconds", type=float, default=30.0)
    subp.add_argument("--raw", action="store_true", help='add the raw topic frame as "topic"')
    return parser.parse_args(argv)


def main(argv):
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return run_pub(args) if args.mode == "pub" else run_sub(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
