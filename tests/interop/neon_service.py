#!/usr/bin/python3
"""neon_service.py - a service and a client that behave on the wire like the
Neon MQ Connector (neon_mq_connector 0.10), with pika, for the bridge tests.

Body codec, as Neon's dict_to_b64 / b64_to_dict: base64 of json.dumps(str(d)),
read back with json.loads and a Python literal eval (ast.literal_eval here:
the same result for literal text, and it refuses anything else).

serve: consumes each --queue (declared plain, auto_delete=False, auto-ack,
prefetch 50, as Neon's consumers do), and reconnects when the server goes
away, as Neon's consumers do (READY again each time). For each request it echoes the dict
(without routing_key) plus "served_by": "neon_service" and
context.mq.message_id, to the body's routing_key, the way Neon's
send_message does: queue_declare(routing_key, auto_delete=False), then
publish "" / routing_key with expiration "1000". A queue SPEC is
NAME[,parts=N][,fail=TEXT][,sleep=SECONDS][,silent]; the same keys in a
request body ("parts", "fail", "sleep", "silent") override them:
  parts=N   N partial replies {_part: i, _is_final: False} first, then the
            final one {_part: N, _is_final: True} (complete on its own)
  fail=TEXT reply {"error": TEXT} (an error payload) instead of the echo
  sleep=S   reply S seconds later (other requests are served meanwhile)
  silent    never reply
Exits 0 on SIGTERM/SIGINT.

call: sends one request (or --count of them at once) like send_mq_request:
a response queue uuid4().hex declared plain, "routing_key" and "message_id"
in the body, the target queue declared, expiration "1000"; waits up to
--timeout for replies whose context.mq.message_id (else message_id) match,
collecting partials until one is final; requeues replies that are not ours;
deletes the response queue. Prints one JSON line:
  {"results": [{"parts": [...], "result": {...} or null}, ...]}
With --no-reply: one request without "routing_key" (Neon's
send_mq_request(..., expect_response=False)); prints {"sent": message_id}.
"""

import argparse
import ast
import base64
import json
import signal
import sys
import time
import uuid

import pika


def dict_to_b64(data):
    return base64.b64encode(json.dumps(str(data)).encode("utf-8"))


def b64_to_dict(body):
    return ast.literal_eval(json.loads(base64.b64decode(body).decode("utf-8")))


def parse_spec(spec):
    parts = spec.split(",")
    options = {"parts": 0, "fail": None, "sleep": 0.0, "silent": False}
    for item in parts[1:]:
        key, _, value = item.partition("=")
        if key == "parts":
            options["parts"] = int(value)
        elif key == "fail":
            options["fail"] = value
        elif key == "sleep":
            options["sleep"] = float(value)
        elif key == "silent":
            options["silent"] = True
        else:
            raise SystemExit("neon_service: unknown queue option %r" % key)
    return parts[0], options


def connect(url):
    params = pika.URLParameters(url)
    params.heartbeat = 30
    return pika.BlockingConnection(params)


class Service:
    def __init__(self, url, specs):
        self.connection = connect(url)
        self.channel = self.connection.channel()
        self.channel.basic_qos(prefetch_count=50)
        for spec in specs:
            queue, options = parse_spec(spec)
            self.channel.queue_declare(queue=queue, auto_delete=False)
            self.channel.basic_consume(
                queue=queue, auto_ack=True,
                on_message_callback=lambda ch, m, p, b, o=options: self.on_request(b, o))

    def send_message(self, data, queue):
        self.channel.queue_declare(queue=queue, auto_delete=False)
        self.channel.basic_publish(exchange="", routing_key=queue, body=dict_to_b64(data),
                                   properties=pika.BasicProperties(expiration="1000"))

    def on_request(self, body, defaults):
        try:
            request = b64_to_dict(body)
        except Exception as error:  # Neon logs and drops what it cannot read
            print("neon_service: bad body: %r" % error, file=sys.stderr, flush=True)
            return
        options = dict(defaults)
        for key in options:
            if key in request:
                options[key] = request[key]
        if options["silent"]:
            return
        reply = lambda: self.reply(request, options)
        if options["sleep"]:
            self.connection.call_later(float(options["sleep"]), reply)
        else:
            reply()

    def reply(self, request, options):
        queue = request.get("routing_key")
        message_id = request.get("message_id")
        if not queue:
            return
        if options["fail"]:
            self.send_message({"message_id": message_id, "error": options["fail"]}, queue)
            return
        answer = {k: v for k, v in request.items() if k != "routing_key"}
        answer["served_by"] = "neon_service"
        answer["context"] = {"mq": {"message_id": message_id}}
        count = int(options["parts"] or 0)
        for index in range(count):
            part = dict(answer, _part=index, _is_final=False, text="part %d" % index)
            self.send_message(part, queue)
        if count:
            answer.update(_part=count, _is_final=True)
        self.send_message(answer, queue)

    def run(self):
        print("READY", flush=True)
        self.channel.start_consuming()


def fire(args):
    """send_mq_request(..., expect_response=False): no routing_key, no wait."""
    connection = connect(args.url)
    channel = connection.channel()
    request = json.loads(args.data)
    request["message_id"] = uuid.uuid4().hex
    channel.queue_declare(queue=args.queue, auto_delete=False)
    channel.basic_publish(exchange="", routing_key=args.queue, body=dict_to_b64(request),
                          properties=pika.BasicProperties(expiration="1000"))
    connection.close()
    print(json.dumps({"sent": request["message_id"]}), flush=True)


def call(args):
    if args.no_reply:
        fire(args)
        return
    connection = connect(args.url)
    channel = connection.channel()
    response_queue = args.response_queue or uuid.uuid4().hex
    channel.queue_declare(queue=response_queue, auto_delete=False, exclusive=False)
    channel.basic_qos(prefetch_count=50)
    pending = {}
    order = []
    for index in range(args.count):
        request = json.loads(args.data)
        if args.count > 1:
            request["i"] = index
        message_id = uuid.uuid4().hex
        request["routing_key"] = response_queue
        request["message_id"] = message_id
        pending[message_id] = {"parts": [], "result": None}
        order.append(message_id)
        channel.queue_declare(queue=args.queue, auto_delete=False)
        channel.basic_publish(exchange="", routing_key=args.queue, body=dict_to_b64(request),
                              properties=pika.BasicProperties(expiration="1000"))
    waiting = set(order)

    def on_reply(ch, method, props, body):
        reply = b64_to_dict(body)
        mq = (reply.get("context") or {}).get("mq") or {}
        message_id = mq.get("message_id") or reply.get("message_id")
        if message_id not in waiting:
            ch.basic_nack(delivery_tag=method.delivery_tag, requeue=True)
            return
        ch.basic_ack(delivery_tag=method.delivery_tag)
        if isinstance(reply.get("_part"), int) and reply.get("_is_final") is False:
            pending[message_id]["parts"].append(reply)
        else:
            pending[message_id]["result"] = reply
            waiting.discard(message_id)

    channel.basic_consume(queue=response_queue, on_message_callback=on_reply)
    deadline = time.monotonic() + args.timeout
    while waiting and time.monotonic() < deadline:
        connection.process_data_events(time_limit=min(0.1, max(0.0, deadline - time.monotonic())))
    channel.queue_delete(queue=response_queue)
    connection.close()
    print(json.dumps({"results": [pending[m] for m in order]}), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    serve = sub.add_parser("serve")
    serve.add_argument("--url", required=True)
    serve.add_argument("--queue", action="append", required=True)
    client = sub.add_parser("call")
    client.add_argument("--url", required=True)
    client.add_argument("--queue", required=True)
    client.add_argument("--data", default="{}")
    client.add_argument("--count", type=int, default=1)
    client.add_argument("--timeout", type=float, default=10.0)
    client.add_argument("--response-queue")
    client.add_argument("--no-reply", action="store_true",
                        help="fire and forget: no routing_key, wait for nothing")
    args = parser.parse_args()
    if args.mode == "call":
        call(args)
        return

    def stop(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    # Like Neon's connectors, come back after the server restarts: READY is
    # written again each time consuming starts.
    while True:
        try:
            Service(args.url, args.queue).run()
        except pika.exceptions.AMQPError as error:
            print("neon_service: %r; reconnecting" % error, file=sys.stderr, flush=True)
            time.sleep(0.3)


if __name__ == "__main__":
    main()
