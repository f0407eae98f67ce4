#!/usr/bin/env python3
"""A real gRPC server and client (grpcio) for the gateway's gRPC tests, without generated code:
methods take and return raw bytes.

  grpc_echo.py serve --listen 127.0.0.2:PORT --name v2 [--tls-cert cert.pem --tls-key key.pem]
      /lab.Echo/Unary   answers JSON {"servedBy", "message", "metadata"} (the call's metadata)
      /lab.Echo/Chat    bidirectional: answers each message with "<name>:<message>"
      /lab.Echo/Fail    ends with INVALID_ARGUMENT and a message, to see trailers pass through
      /lab.Echo/Slow    answers after 5 s, to see a deadline

  grpc_echo.py call --target 127.0.0.1:PORT --method Unary [--metadata k=v ...] [--message m ...]
      [--ca ca.pem --server-name name]    (TLS; default plaintext h2c)
      prints JSON {"code": "OK", "details": ..., "replies": [...]}
"""
import argparse
import json
import sys
import time
from concurrent import futures

import grpc


def serve(args):
    def unary(request, context):
        metadata = {k: v for k, v in context.invocation_metadata()}
        return json.dumps({
            "servedBy": args.name,
            "message": request.decode(),
            "metadata": metadata,
        }).encode()

    def chat(requests, context):
        for message in requests:
            yield f"{args.name}:{message.decode()}".encode()

    def fail(request, context):
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{args.name} refuses: {request.decode()}")

    def slow(request, context):
        time.sleep(5)
        return b"late"

    handler = grpc.method_handlers_generic_handler("lab.Echo", {
        "Unary": grpc.unary_unary_rpc_method_handler(unary),
        "Chat": grpc.stream_stream_rpc_method_handler(chat),
        "Fail": grpc.unary_unary_rpc_method_handler(fail),
        "Slow": grpc.unary_unary_rpc_method_handler(slow),
    })
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    server.add_generic_rpc_handlers((handler,))
    if args.tls_cert:
        with open(args.tls_key, "rb") as k, open(args.tls_cert, "rb") as c:
            credentials = grpc.ssl_server_credentials([(k.read(), c.read())])
        server.add_secure_port(args.listen, credentials)
    else:
        server.add_insecure_port(args.listen)
    server.start()
    print(f"grpc echo {args.name} on {args.listen}", flush=True)
    server.wait_for_termination()


def call(args):
    if args.ca:
        with open(args.ca, "rb") as f:
            credentials = grpc.ssl_channel_credentials(root_certificates=f.read())
        options = [("grpc.ssl_target_name_override", args.server_name)]
        channel = grpc.secure_channel(args.target, credentials, options=options)
    else:
        channel = grpc.insecure_channel(args.target)
    metadata = [tuple(m.split("=", 1)) for m in args.metadata]
    messages = [m.encode() for m in (args.message or ["hello"])]
    path = f"/lab.Echo/{args.method}"
    result = {"code": "OK", "details": "", "replies": []}
    try:
        if args.method == "Chat":
            replies = channel.stream_stream(path)(iter(messages), metadata=metadata, timeout=10)
            result["replies"] = [r.decode() for r in replies]
        else:
            reply = channel.unary_unary(path)(messages[0], metadata=metadata, timeout=10)
            result["replies"] = [reply.decode()]
    except grpc.RpcError as e:
        result["code"] = e.code().name
        result["details"] = e.details() or ""
    print(json.dumps(result))


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--listen", required=True)
    s.add_argument("--name", required=True)
    s.add_argument("--tls-cert")
    s.add_argument("--tls-key")
    c = sub.add_parser("call")
    c.add_argument("--target", required=True)
    c.add_argument("--method", required=True)
    c.add_argument("--metadata", action="append", default=[])
    c.add_argument("--message", action="append")
    c.add_argument("--ca")
    c.add_argument("--server-name", default="")
    args = parser.parse_args()
    serve(args) if args.command == "serve" else call(args)


if __name__ == "__main__":
    sys.exit(main())
