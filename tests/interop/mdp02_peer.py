#!/usr/bin/python3
"""mdp02_peer.py - an MDP/0.2 (RFC 18 codes) worker or client written from
spec/mdp.md section 15 alone, for the mixed-version end-to-end tests: a peer
that shares no code with libmdp. Both use the delimited form.

worker ENDPOINT SERVICE --partials N [--seconds S] [--heartbeat MS] [--delay MS]
    A DEALER sends READY [""]["MDPW02"][0x01][service] and writes READY on
    stdout, then HEARTBEAT [""]["MDPW02"][0x05] every --heartbeat msecs. Each
    REQUEST [""]["MDPW02"][0x02][addr...][""][action][json] gets N PARTIALs
    [""]["MDPW02"][0x03][addr...][""][action + ".partial"][{"part": i}] (i from
    0, --delay msecs apart) and then a FINAL [""]["MDPW02"][0x04][addr...][""]
    [reply action][json], where the reply action follows Domogik's convention
    (x.get and x.do become x.result, others gain .result) and the JSON is the
    request's object plus "parts": N. A request whose JSON is not an object
    gets a FINAL mdp.error 400. On a DISCONNECT it reconnects. It exits 0 after
    --seconds or on SIGTERM/SIGINT, sending DISCONNECT [""]["MDPW02"][0x06].

client ENDPOINT SERVICE ACTION JSON [--timeout S]
    A DEALER sends [corr][""]["MDPC02"][0x01][service][timeout][action][json],
    corr being an 8-byte request id, and prints one JSON line per reply,
    {"command": "partial"|"final", "action": ..., "data": ...}, checking that
    each carries corr back. An MDPC01 reply counts as final. Exit 0 after the
    FINAL, 3 when --timeout seconds pass without a reply (each partial
    restarts the wait), 1 on a malformed reply, 2 on a usage error.

majortomo ENDPOINT SERVICE FRAME... [--timeout S]
    The client of majortomo (the Python MDP/0.2 implementation), whose one
    command table serves client and worker: a DEALER sends exactly
    [""]["MDPC02"][0x02][service][FRAME...] and takes replies only of the form
    [""]["MDPC02"][0x03 PARTIAL | 0x04 FINAL][body...], with no service frame
    (majortomo rejects a message whose first frame is not empty). It prints one
    JSON line per reply, {"command": "partial"|"final", "frames": [...],
    "action": first frame, "data": second frame as JSON or null}. Exit codes as
    for client.
"""

import argparse
import json
import signal
import sys
import time

import zmq

MDPW02 = b"MDPW02"
MDPC02 = b"MDPC02"
MDPC01 = b"MDPC01"
W_READY, W_REQUEST, W_PARTIAL, W_FINAL, W_HEARTBEAT, W_DISCONNECT = (
    b"\x01", b"\x02", b"\x03", b"\x04", b"\x05", b"\x06")
C_REQUEST, C_PARTIAL, C_FINAL = b"\x01", b"\x02", b"\x03"
MT_REQUEST, MT_PARTIAL, MT_FINAL = b"\x02", b"\x03", b"\x04"   # majortomo's client codes

SLICE = 0.1              # longest single poll, so a signal is seen quickly
CORRELATION = (0x0102030405060708).to_bytes(8, "big")   # the client's request id
EXIT_OK, EXIT_BROKEN, EXIT_USAGE, EXIT_TIMEOUT = 0, 1, 2, 3

stopping = False         # set by SIGTERM/SIGINT


def on_signal(signum, frame):
    global stopping
    stopping = True


def note(text):
    print("mdp02_peer: " + text, file=sys.stderr, flush=True)


def reply_action(action):
    """The Domogik convention: x.get and x.do become x.result, others gain .result."""
    for suffix in (".get", ".do"):
        if action.endswith(suffix) and len(action) > len(suffix):
            return action[: -len(suffix)] + ".result"
    return action + ".result"


def split_address(frames):
    """[addr...][""][body...] -> (addr frames, body frames), or None."""
    for i, frame in enumerate(frames):
        if frame == b"":
            return (frames[:i], frames[i + 1:]) if i > 0 else None
    return None


def dumps(value):
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


class Worker:
    """An MDPW02 worker on one DEALER, renewed on DISCONNECT."""

    def __init__(self, ctx, args):
        self.ctx = ctx
        self.args = args
        self.service = args.service.encode("utf-8")
        self.heartbeat = args.heartbeat / 1000.0
        self.sock = None
        self.next_heartbeat = 0.0
        self.ready_shown = False

    def send(self, command, *frames):
        self.sock.send_multipart([b"", MDPW02, command] + list(frames))

    def connect(self):
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(self.args.endpoint)
        self.send(W_READY, self.service)
        self.next_heartbeat = time.monotonic() + self.heartbeat
        if not self.ready_shown:
            print("READY", flush=True)
            self.ready_shown = True

    def tick(self):
        now = time.monotonic()
        if now >= self.next_heartbeat:
            self.send(W_HEARTBEAT)
            self.next_heartbeat = now + self.heartbeat

    def answer(self, address, body):
        """N partials, then the final reply, to the client at address."""
        action = body[0].decode("utf-8", errors="replace")
        try:
            data = json.loads(body[1].decode("utf-8")) if len(body) > 1 else {}
        except ValueError:
            data = None
        if not isinstance(data, dict):
            error = {"code": 400, "reason": "request JSON is not an object"}
            self.send(W_FINAL, *address, b"", b"mdp.error", dumps(error))
            return
        partial = (action + ".partial").encode("utf-8")
        for part in range(self.args.partials):
            if part and self.args.delay:
                time.sleep(self.args.delay / 1000.0)
            self.send(W_PARTIAL, *address, b"", partial, dumps({"part": part}))
            self.tick()
        data["parts"] = self.args.partials
        self.send(W_FINAL, *address, b"", reply_action(action).encode("utf-8"), dumps(data))

    def handle(self, msg):
        """One message from the broker. Returns True on DISCONNECT."""
        if len(msg) < 3 or msg[0] != b"" or msg[1] != MDPW02:
            note("ignoring a malformed message of %d frames" % len(msg))
            return False
        command = msg[2]
        if command == W_DISCONNECT:
            return True
        if command == W_REQUEST:
            parts = split_address(msg[3:])
            if parts is None or not parts[1]:
                note("ignoring a REQUEST without [addr...][\"\"][body...]")
            else:
                self.answer(*parts)
        elif command != W_HEARTBEAT:
            note("ignoring command %r" % command)
        return False

    def serve(self, deadline):
        self.connect()
        while not stopping and time.monotonic() < deadline:
            self.tick()
            wait = min(self.next_heartbeat, deadline, time.monotonic() + SLICE) - time.monotonic()
            if not self.sock.poll(max(1, int(wait * 1000)), zmq.POLLIN):
                continue
            if self.handle(self.sock.recv_multipart()):
                note("broker sent DISCONNECT; reconnecting")
                self.sock.close(0)
                time.sleep(0.1)
                self.connect()
        self.send(W_DISCONNECT)
        self.sock.close(500)


def run_worker(args):
    ctx = zmq.Context()
    try:
        Worker(ctx, args).serve(time.monotonic() + args.seconds)
    except zmq.ZMQError as e:
        note("zmq error: %s" % e)
        ctx.term()
        return EXIT_BROKEN
    ctx.term()
    return EXIT_OK


def describe(msg, service):
    """Parse [corr][""][protocol]... into (command, action, data), or None."""
    if len(msg) < 4 or msg[0] != CORRELATION or msg[1] != b"":
        return None
    if msg[2] == MDPC02 and len(msg) >= 6 and msg[3] in (C_PARTIAL, C_FINAL):
        command = "partial" if msg[3] == C_PARTIAL else "final"
        rest = msg[4:]
    elif msg[2] == MDPC01:
        command, rest = "final", msg[3:]
    else:
        return None
    if rest[0] != service or len(rest) < 2:
        return None
    try:
        data = json.loads(rest[2].decode("utf-8")) if len(rest) > 2 else {}
    except ValueError:
        return None
    return command, rest[1].decode("utf-8", errors="replace"), data


def run_client(args):
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    service = args.service.encode("utf-8")
    timeout = args.timeout if args.timeout != int(args.timeout) else int(args.timeout)
    sock.connect(args.endpoint)
    sock.send_multipart([CORRELATION, b"", MDPC02, C_REQUEST, service,
                         str(timeout).encode("utf-8"), args.action.encode("utf-8"),
                         args.json.encode("utf-8")])
    status = EXIT_TIMEOUT
    while not stopping:
        if not sock.poll(max(1, int(args.timeout * 1000)), zmq.POLLIN):
            note("no reply within %s s" % args.timeout)
            break
        parsed = describe(sock.recv_multipart(), service)
        if parsed is None:
            note("malformed reply")
            status = EXIT_BROKEN
            break
        command, action, data = parsed
        print(json.dumps({"command": command, "action": action, "data": data}), flush=True)
        if command == "final":
            status = EXIT_OK
            break
    sock.close(0)
    ctx.term()
    return status


def describe_majortomo(msg):
    """Parse [""]["MDPC02"][0x03|0x04][body...] into a dict, or None."""
    if len(msg) < 3 or msg[0] != b"" or msg[1] != MDPC02 or msg[2] not in (MT_PARTIAL, MT_FINAL):
        return None
    body = [frame.decode("utf-8", errors="replace") for frame in msg[3:]]
    data = None
    if len(body) > 1:
        try:
            data = json.loads(body[1])
        except ValueError:
            pass
    return {"command": "partial" if msg[2] == MT_PARTIAL else "final", "frames": body,
            "action": body[0] if body else None, "data": data}


def run_majortomo(args):
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(args.endpoint)
    sock.send_multipart([b"", MDPC02, MT_REQUEST, args.service.encode("utf-8")]
                        + [frame.encode("utf-8") for frame in args.frames])
    status = EXIT_TIMEOUT
    while not stopping:
        if not sock.poll(max(1, int(args.timeout * 1000)), zmq.POLLIN):
            note("no reply within %s s" % args.timeout)
            break
        msg = sock.recv_multipart()
        parsed = describe_majortomo(msg)
        if parsed is None:
            note("malformed reply: %r" % msg)
            status = EXIT_BROKEN
            break
        print(json.dumps(parsed), flush=True)
        if parsed["command"] == "final":
            status = EXIT_OK
            break
    sock.close(0)
    ctx.term()
    return status


def positive(kind):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError("not a number: %r" % text)
        if not 0 < value < float("inf"):
            raise argparse.ArgumentTypeError("must be > 0: %r" % text)
        return value
    return parse


def parse_args(argv):
    parser = argparse.ArgumentParser(description="An MDP/0.2 worker or client.")
    roles = parser.add_subparsers(dest="role", required=True)
    worker = roles.add_parser("worker", help="serve SERVICE with partial replies")
    worker.add_argument("endpoint")
    worker.add_argument("service")
    worker.add_argument("--partials", type=int, default=0, metavar="N",
                        help="partial replies before each final one (default 0)")
    worker.add_argument("--seconds", type=positive(float), default=30.0, metavar="S",
                        help="exit after S seconds (default 30)")
    worker.add_argument("--heartbeat", type=positive(int), default=2500, metavar="MS",
                        help="heartbeat interval in msecs (default 2500)")
    worker.add_argument("--delay", type=int, default=0, metavar="MS",
                        help="msecs between two partials (default 0)")
    client = roles.add_parser("client", help="send one MDPC02 request")
    client.add_argument("endpoint")
    client.add_argument("service")
    client.add_argument("action")
    client.add_argument("json")
    client.add_argument("--timeout", type=positive(float), default=5.0, metavar="S",
                        help="seconds: the timeout frame and the longest silence (default 5)")
    majortomo = roles.add_parser("majortomo", help="send one request as majortomo's client")
    majortomo.add_argument("endpoint")
    majortomo.add_argument("service")
    majortomo.add_argument("frames", nargs="+", metavar="FRAME")
    majortomo.add_argument("--timeout", type=positive(float), default=5.0, metavar="S",
                           help="seconds: the longest silence (default 5)")
    args = parser.parse_args(argv)
    if args.role == "worker" and (args.partials < 0 or args.delay < 0):
        parser.error("--partials and --delay must be >= 0")
    return args


def main(argv):
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if args.role == "majortomo":
        return run_majortomo(args)
    return run_worker(args) if args.role == "worker" else run_client(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
