#!/usr/bin/python3
"""domogik_worker.py - a worker that behaves on the wire like Domogik's MQRep.

Mimics MQRep from domogik-mq: one DEALER socket, READY [""]["MDPW01"][0x01]
[service] at connect, HEARTBEAT [""]["MDPW01"][0x04] every --heartbeat msecs,
and for each REQUEST [""]["MDPW01"][0x02][addr...][""][action][json] a REPLY
[""]["MDPW01"][0x03][addr...][""][reply-action][json]. The return address is
every non-empty frame before the first empty one, kept as it came (as Domogik's
split_address does). reply-action is x.result for x.get and x.do, else
action + ".result"; the reply JSON is the request's JSON object plus
"served_by": "pyzmq". A request whose JSON is missing is taken as {}; one whose
JSON does not parse, or is not an object, gets no reply at all (Domogik only
logs a failing handler), which leaves this worker busy as far as a broker knows.

Unlike Domogik's worker it does reconnect on a (well-formed) DISCONNECT: after
a short pause it opens a new socket and sends READY again, and writes a line
DISCONNECTED to stderr. By default it never reconnects on broker silence. With
--liveness N it does what MQRep and the zguide's mdwrkapi do: silence from the
broker for N heartbeat intervals, counted from when READY was *sent*, makes it
close its socket, open a new one and send READY again (writing a line SILENT
to stderr). It writes READY to stdout once, after its first READY is sent.

It exits 0 after --count replies (the last one is flushed first), after
--seconds, or on SIGTERM/SIGINT (socket closed with linger 0). Like MQRep it
sends no DISCONNECT when it stops, unless --disconnect-on-exit is given.
"""

import argparse
import json
import signal
import sys
import time

import zmq

PROTOCOL = b"MDPW01"
READY = b"\x01"
REQUEST = b"\x02"
REPLY = b"\x03"
HEARTBEAT = b"\x04"
DISCONNECT = b"\x05"

RECONNECT_PAUSE = 0.25  # seconds to wait before opening the new socket
SLICE = 0.1             # longest single poll, so a signal is seen quickly
FLUSH_LINGER_MS = 1000  # how long close may take to flush a last message

stopping = False        # set by SIGTERM/SIGINT


def on_signal(signum, frame):
    global stopping
    stopping = True


def positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("not an integer: %r" % text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be > 0: %r" % text)
    return value


def positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("not a number: %r" % text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError("must be a finite number > 0: %r" % text)
    return value


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description="Serve one MDP/0.1 service the way Domogik's MQRep does.")
    parser.add_argument("endpoint", help="broker endpoint, e.g. tcp://127.0.0.1:5555")
    parser.add_argument("service", help="service name to register")
    parser.add_argument("--heartbeat", type=positive_int, default=2500, metavar="MS",
                        help="heartbeat interval in msecs (default 2500)")
    parser.add_argument("--count", type=positive_int, default=None, metavar="N",
                        help="exit after sending N replies")
    parser.add_argument("--seconds", type=positive_float, default=30.0, metavar="S",
                        help="exit after S seconds in all (default 30)")
    parser.add_argument("--liveness", type=positive_int, default=None, metavar="N",
                        help="reconnect after N heartbeats of broker silence (default: never)")
    parser.add_argument("--disconnect-on-exit", action="store_true",
                        help="send DISCONNECT before exiting (MQRep never does)")
    return parser.parse_args(argv)


def reply_action(action):
    """The Domogik convention: x.get and x.do become x.result, others gain .result."""
    for suffix in (".get", ".do"):
        if action.endswith(suffix) and len(action) > len(suffix):
            return action[: -len(suffix)] + ".result"
    return action + ".result"


def split_address(frames):
    """Split [addr...][""][body...] into (addr frames, body frames); None if
    there is no empty frame."""
    for i, frame in enumerate(frames):
        if frame == b"":
            return frames[:i], frames[i + 1:]
    return None


def note(text):
    print("domogik_worker: " + text, file=sys.stderr, flush=True)


class Worker:
    """One DEALER connection to the broker, renewed on DISCONNECT."""

    def __init__(self, ctx, args):
        self.ctx = ctx
        self.endpoint = args.endpoint
        self.service = args.service.encode("utf-8")
        self.heartbeat = args.heartbeat / 1000.0
        self.liveness = args.liveness
        self.sock = None
        self.next_heartbeat = 0.0
        self.broker_expiry = float("inf")   # broker silent until then: gone
        self.ready_shown = False
        self.replies = 0

    def connect(self):
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(self.endpoint)
        self.sock.send_multipart([b"", PROTOCOL, READY, self.service])
        self.next_heartbeat = time.monotonic() + self.heartbeat
        self.heard()
        if not self.ready_shown:
            print("READY", flush=True)
            self.ready_shown = True

    def close(self, linger_ms=0):
        if self.sock is not None:
            self.sock.close(linger_ms)
            self.sock = None

    def heard(self):
        """Restart the broker-silence clock (with --liveness)."""
        if self.liveness is not None:
            self.broker_expiry = time.monotonic() + self.heartbeat * self.liveness

    def tick(self):
        """Send a HEARTBEAT when one is due."""
        now = time.monotonic()
        if now >= self.next_heartbeat:
            self.sock.send_multipart([b"", PROTOCOL, HEARTBEAT])
            self.next_heartbeat = now + self.heartbeat

    def handle(self, msg):
        """Act on one message from the broker. Returns "disconnect" when the
        broker sent DISCONNECT, else None."""
        if len(msg) < 3 or msg[0] != b"" or msg[1] != PROTOCOL:
            note("ignoring a malformed message of %d frames" % len(msg))
            return None
        command = msg[2]
        if command == DISCONNECT:
            return "disconnect"
        if command == HEARTBEAT:
            return None
        if command != REQUEST:
            note("ignoring command %r" % command)
            return None
        parts = split_address(msg[3:])
        if parts is None or not parts[1]:
            note("ignoring a REQUEST without address delimiter or body")
            return None
        address, body = parts
        action = body[0].decode("utf-8", errors="replace")
        try:
            data = json.loads(body[1].decode("utf-8")) if len(body) > 1 else {}
        except ValueError as e:
            note("no reply to %s: JSON does not parse: %s" % (action, e))
            return None
        if not isinstance(data, dict):
            note("no reply to %s: JSON is not an object" % action)
            return None
        data["served_by"] = "pyzmq"
        reply = [b"", PROTOCOL, REPLY] + address + [b"",
                 reply_action(action).encode("utf-8"), json.dumps(data).encode("utf-8")]
        self.sock.send_multipart(reply)
        self.replies += 1
        return None


def pause(seconds, deadline):
    """Sleep up to seconds, but not past deadline and not once stopping."""
    end = min(time.monotonic() + seconds, deadline)
    while not stopping and time.monotonic() < end:
        time.sleep(min(SLICE, max(0.0, end - time.monotonic())))


def serve(worker, args, deadline):
    """The main loop. Returns the linger to close with."""
    worker.connect()
    while not stopping:
        now = time.monotonic()
        if now >= deadline:
            return 0
        worker.tick()
        wait = min(worker.next_heartbeat, deadline, now + SLICE) - now
        if not worker.sock.poll(max(1, int(wait * 1000)), zmq.POLLIN):
            if time.monotonic() >= worker.broker_expiry:
                note("broker silent for %d heartbeats; reconnecting" % worker.liveness)
                print("SILENT", file=sys.stderr, flush=True)
                worker.close()
                worker.connect()
            continue
        worker.heard()
        if worker.handle(worker.sock.recv_multipart()) == "disconnect":
            note("broker sent DISCONNECT; reconnecting")
            print("DISCONNECTED", file=sys.stderr, flush=True)
            worker.close()
            pause(RECONNECT_PAUSE, deadline)
            if stopping or time.monotonic() >= deadline:
                return 0
            worker.connect()
        elif args.count is not None and worker.replies >= args.count:
            return FLUSH_LINGER_MS
    return 0


def main(argv):
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    deadline = time.monotonic() + args.seconds
    ctx = zmq.Context()
    worker = Worker(ctx, args)
    try:
        linger = serve(worker, args, deadline)
    except zmq.ZMQError as e:
        note("zmq error: %s" % e)
        worker.close()
        ctx.term()
        return 2
    if args.disconnect_on_exit and worker.sock is not None:
        worker.sock.send_multipart([b"", PROTOCOL, DISCONNECT])
        linger = FLUSH_LINGER_MS
    worker.close(linger)
    ctx.term()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
