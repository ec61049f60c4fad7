#!/usr/bin/python3
"""nuropb_service.py - a service and a client that behave on the wire like
nuropb 0.1.8 (RMQTransport / RMQAPI), with pika, for the bridge tests.

Topology, as nuropb's leader declares it: exchanges nuropb-rpc-exchange
(direct), nuropb-events-exchange (topic) and nuropb-dl-exchange (fanout), all
durable; the service queue nuropb-<service>-service (durable,
x-dead-letter-exchange=nuropb-dl-exchange) bound to the rpc exchange with
the service name; the dead-letter queue nuropb-<service>-dl declared with
pika's defaults (not durable), as nuropb's configure_nuropb_rmq does.

Every message carries the headers nuropb_protocol "0.1.1", nuropb_version
"0.1.8", nuropb_type, trace_id, encrypted "", and content_type
application/json. Bodies:
  request : {"tag": "request", "service", "method", "params", "correlation_id",
             "context", "trace_id"}
  response: {"tag": "response", "correlation_id", "context", "trace_id",
             "result", "error": null | {"error": Class, "description": ...},
             "warning": null, "reply_to": ""}

serve: consumes the service queue (manual ack, --prefetch, default 1 as
nuropb). Methods: echo (the params plus "served_by": "nuropb_service"),
fail (error ValueError with params["text"]; the request is then rejected,
so it is dead-lettered, as nuropb does), sleep (echo after params["seconds"],
other requests served meanwhile), anything else NuropbHandlingError
"Unknown method X". Responses go to "" / reply_to with the request's
correlation_id. Reconnects when the server goes away; writes READY on stdout
each time it starts consuming. Exits 0 on SIGTERM/SIGINT.

call: one request as RMQAPI.request makes it: to the rpc exchange, routing
key = service, mandatory, reply_to = its own response queue
nuropb-<service>-<instance>-rq (auto-delete, consumed exclusively),
expiration = --ttl. A basic.return becomes NuropbNotDeliveredError, as in
nuropb. Prints the response body as one JSON line; {"timeout": true} after
--timeout seconds.
"""

import argparse
import json
import signal
import sys
import time
import uuid

import pika

RPC_EXCHANGE = "nuropb-rpc-exchange"
EVENTS_EXCHANGE = "nuropb-events-exchange"
DL_EXCHANGE = "nuropb-dl-exchange"


def headers(kind, trace_id):
    return {"nuropb_protocol": "0.1.1", "nuropb_version": "0.1.8", "nuropb_type": kind,
            "trace_id": trace_id, "encrypted": ""}


def connect(url):
    params = pika.URLParameters(url)
    params.heartbeat = 30
    return pika.BlockingConnection(params)


class Service:
    def __init__(self, url, service, prefetch):
        self.service = service
        self.connection = connect(url)
        channel = self.channel = self.connection.channel()
        channel.exchange_declare(RPC_EXCHANGE, exchange_type="direct", durable=True)
        channel.exchange_declare(EVENTS_EXCHANGE, exchange_type="topic", durable=True)
        channel.exchange_declare(DL_EXCHANGE, exchange_type="fanout", durable=True)
        queue = "nuropb-%s-service" % service
        dead = "nuropb-%s-dl" % service
        channel.queue_declare(dead)  # nuropb leaves pika's defaults here: not durable
        channel.queue_bind(dead, DL_EXCHANGE)
        channel.queue_declare(queue, durable=True, auto_delete=False,
                              arguments={"x-dead-letter-exchange": DL_EXCHANGE})
        channel.queue_bind(queue, RPC_EXCHANGE, routing_key=service)
        channel.basic_qos(prefetch_count=prefetch)
        channel.basic_consume(queue=queue, on_message_callback=self.on_request)

    def respond(self, tag, props, request, result=None, error=None):
        response = {"tag": "response", "correlation_id": request.get("correlation_id"),
                    "context": request.get("context", {}), "trace_id": request.get("trace_id"),
                    "result": result, "error": error, "warning": None, "reply_to": ""}
        if props.reply_to:
            self.channel.basic_publish(
                exchange="", routing_key=props.reply_to, body=json.dumps(response),
                properties=pika.BasicProperties(
                    content_type="application/json", correlation_id=props.correlation_id,
                    headers=headers("response", request.get("trace_id"))))
        if error:
            self.channel.basic_reject(delivery_tag=tag, requeue=False)
        else:
            self.channel.basic_ack(delivery_tag=tag)

    def on_request(self, channel, method, props, body):
        kind = (props.headers or {}).get("nuropb_type")
        if kind not in ("request", "command"):
            channel.basic_reject(delivery_tag=method.delivery_tag, requeue=False)
            return
        request = json.loads(body)
        name = request.get("method")
        params = request.get("params") or {}
        tag = method.delivery_tag
        if kind == "command":
            channel.basic_ack(delivery_tag=tag)
            return
        if name == "echo":
            self.respond(tag, props, request, result=dict(params, served_by="nuropb_service"))
        elif name == "sleep":
            answer = lambda: self.respond(tag, props, request,
                                          result=dict(params, served_by="nuropb_service"))
            self.connection.call_later(float(params.get("seconds", 1)), answer)
        elif name == "fail":
            self.respond(tag, props, request, error={"error": "ValueError",
                                                     "description": params.get("text", "failed")})
        else:
            self.respond(tag, props, request, error={"error": "NuropbHandlingError",
                                                     "description": "Unknown method %s" % name})

    def run(self):
        print("READY", flush=True)
        self.channel.start_consuming()


def call(args):
    connection = connect(args.url)
    channel = connection.channel()
    instance = uuid.uuid4().hex
    response_queue = "nuropb-%s-%s-rq" % (args.client_name, instance)
    channel.queue_declare(response_queue, durable=False, auto_delete=True)
    outcome = {}
    correlation_id = uuid.uuid4().hex
    trace_id = uuid.uuid4().hex

    def on_response(ch, method, props, body):
        if props.correlation_id == correlation_id:
            outcome["response"] = json.loads(body)

    def on_return(ch, method, props, body):
        outcome["response"] = {
            "tag": "response", "correlation_id": correlation_id, "result": None,
            "error": {"error": "NuropbNotDeliveredError",
                      "description": "Service %s not available: %s" % (args.service,
                                                                      method.reply_text)}}

    channel.basic_consume(queue=response_queue, on_message_callback=on_response,
                          auto_ack=True, exclusive=True)
    channel.add_on_return_callback(on_return)
    request = {"tag": "request", "service": args.service, "method": args.method,
               "params": json.loads(args.params), "correlation_id": correlation_id,
               "context": {"user_id": "test"}, "trace_id": trace_id}
    channel.basic_publish(
        exchange=RPC_EXCHANGE, routing_key=args.service, body=json.dumps(request), mandatory=True,
        properties=pika.BasicProperties(
            content_type="application/json", correlation_id=correlation_id,
            reply_to=response_queue, expiration=str(args.ttl),
            headers=headers("request", trace_id)))
    deadline = time.monotonic() + args.timeout
    while "response" not in outcome and time.monotonic() < deadline:
        connection.process_data_events(time_limit=min(0.1, max(0.0, deadline - time.monotonic())))
    connection.close()
    print(json.dumps(outcome.get("response", {"timeout": True})), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    serve = sub.add_parser("serve")
    serve.add_argument("--url", required=True)
    serve.add_argument("--service", required=True)
    serve.add_argument("--prefetch", type=int, default=1)
    client = sub.add_parser("call")
    client.add_argument("--url", required=True)
    client.add_argument("--service", required=True)
    client.add_argument("--method", required=True)
    client.add_argument("--params", default="{}")
    client.add_argument("--ttl", type=int, default=60000)
    client.add_argument("--timeout", type=float, default=10.0)
    client.add_argument("--client-name", default="test-client")
    args = parser.parse_args()
    if args.mode == "call":
        call(args)
        return

    def stop(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while True:
        try:
            Service(args.url, args.service, args.prefetch).run()
        except pika.exceptions.AMQPError as error:
            print("nuropb_service: %r; reconnecting" % error, file=sys.stderr, flush=True)
            time.sleep(0.3)


if __name__ == "__main__":
    main()
