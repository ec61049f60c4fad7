#!/usr/bin/python3
"""domogik_client.py - one request the way a Domogik component makes it.

Mimics MQSyncReq.rawrequest from domogik-mq (python3 branch) on the wire: a REQ
socket sends ["MDPC01"][service][timeout][action][json], where timeout is the
number of seconds as text (b"5", b"2.5") or b"None", and REQ itself adds the
empty delimiter in front. With --mmi the body is [timeout][name] instead.

It waits at most --timeout seconds (also with --no-timeout, which only changes
the frame sent), or --wait seconds when given, so that a test can see an answer
the broker sends right at the deadline (Domogik's client would not wait for
it). On a reply it prints one line of JSON: {"frames": [...]} with every reply
frame as UTF-8 text (REQ has already removed the delimiter), plus "action" and
"data" when there are exactly 4 frames and the 4th is JSON. JSON is sent
verbatim, unchecked, so tests can also send broken JSON.

Exit status: 0 on a reply, 3 on timeout, 2 on a usage error.
"""

import argparse
import json
import sys

import zmq

EXIT_REPLY = 0
EXIT_USAGE = 2
EXIT_TIMEOUT = 3


def timeout_arg(text):
    """Parse --timeout: a number of seconds > 0, kept as int when it is whole
    so the frame reads b"5" like Python's str(5), else float (b"2.5")."""
    try:
        value = int(text)
    except ValueError:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError("not a number: %r" % text)
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError("must be a finite number > 0: %r" % text)
    return value


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description="Send one Domogik-style MDP/0.1 request over a REQ socket.")
    parser.add_argument("endpoint", help="broker endpoint, e.g. tcp://127.0.0.1:5555")
    parser.add_argument("service", help="service name")
    parser.add_argument("action", metavar="ACTION_OR_NAME",
                        help="action (e.g. config.get), or with --mmi the service name to ask about")
    parser.add_argument("json", nargs="?", default=None, metavar="JSON",
                        help="JSON text sent verbatim as the last frame (default {})")
    parser.add_argument("--timeout", type=timeout_arg, default=5,
                        help="seconds: sent in the timeout frame and the longest wait (default 5)")
    parser.add_argument("--no-timeout", action="store_true",
                        help='send b"None" as the timeout frame (still waits --timeout)')
    parser.add_argument("--wait", type=timeout_arg, default=None, metavar="S",
                        help="seconds to wait for the reply if not --timeout (Domogik waits --timeout)")
    parser.add_argument("--mmi", action="store_true",
                        help="MMI request: body is [timeout][name], no JSON frame")
    args = parser.parse_args(argv)
    if args.mmi and args.json is not None:
        parser.error("--mmi takes no JSON argument")
    if args.wait is None:
        args.wait = args.timeout
    return args


def build_request(args):
    """The frames the application hands to its REQ socket (REQ adds b"")."""
    timeout_frame = b"None" if args.no_timeout else bytes(str(args.timeout), "utf-8")
    frames = [b"MDPC01", args.service.encode("utf-8"), timeout_frame,
              args.action.encode("utf-8")]
    if not args.mmi:
        frames.append((args.json if args.json is not None else "{}").encode("utf-8"))
    return frames


def describe_reply(frames):
    """The one-line JSON report of a reply."""
    text = [f.decode("utf-8", errors="replace") for f in frames]
    out = {"frames": text}
    if len(text) == 4:
        try:
            data = json.loads(text[3])
        except ValueError:
            pass
        else:
            out["action"] = text[2]
            out["data"] = data
    return json.dumps(out)


def main(argv):
    args = parse_args(argv)
    ctx = zmq.Context()
    sock = ctx.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(args.endpoint)
    except zmq.ZMQError as e:
        print("domogik_client: bad endpoint %r: %s" % (args.endpoint, e), file=sys.stderr)
        sock.close(0)
        ctx.term()
        return EXIT_USAGE
    sock.send_multipart(build_request(args))
    status = EXIT_TIMEOUT
    if sock.poll(max(1, int(args.wait * 1000)), zmq.POLLIN):
        print(describe_reply(sock.recv_multipart()), flush=True)
        status = EXIT_REPLY
    else:
        print("domogik_client: no reply within %s s" % args.wait, file=sys.stderr)
    sock.close(0)
    ctx.term()
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
