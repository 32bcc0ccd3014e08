"""A gRPC client with no callqa code in it: it discovers the services through server
reflection, checks health, and calls AnalyzeCall with messages built from the reflected
descriptors. Prints one JSON object for the Rust test (tests/calls.rs) to check.

    python reflect_client.py ADDR API_KEY AUDIO_FILE
"""
import base64
import json
import sys

import grpc
from google.protobuf import descriptor_pool, json_format, message_factory
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)


def call(channel, pool, method, request_fields, metadata=()):
    """Calls a unary method named 'package.Service/Method' with a request built from a dict."""
    service, name = method.split("/")
    desc = pool.FindServiceByName(service).FindMethodByName(name)
    request_class = message_factory.GetMessageClass(desc.input_type)
    response_class = message_factory.GetMessageClass(desc.output_type)
    stub = channel.unary_unary(
        f"/{method}",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=response_class.FromString,
    )
    request = json_format.ParseDict(request_fields, request_class())
    return stub(request, metadata=metadata, timeout=120)


def main():
    addr, key, audio_path = sys.argv[1:4]
    channel = grpc.insecure_channel(addr, options=[("grpc.max_receive_message_length", 64 << 20)])
    reflection = ProtoReflectionDescriptorDatabase(channel)
    pool = descriptor_pool.DescriptorPool(reflection)
    services = sorted(reflection.get_services())
    health = call(channel, pool, "grpc.health.v1.Health/Check", {})
    with open(audio_path, "rb") as f:
        audio = f.read()
    auth = (("authorization", f"Bearer {key}"),)
    analysis = call(
        channel,
        pool,
        "callqa.v1.CallQa/AnalyzeCall",
        # proto3 JSON: bytes are base64, enums by name.
        {
            "audio": base64.b64encode(audio).decode(),
            "callId": "py-1",
            "repId": "rep-py",
            "playbook": "playbook",
            "language": "LANGUAGE_EN",
        },
        metadata=auth,
    )
    try:
        call(channel, pool, "callqa.v1.CallQa/GetAnalysis", {"callId": "py-1"})
        unauthenticated = False
    except grpc.RpcError as e:
        unauthenticated = e.code() == grpc.StatusCode.UNAUTHENTICATED
    print(
        json.dumps(
            {
                "services": services,
                "health": health.status,
                "call_id": analysis.call_id,
                "turns": len(analysis.turns),
                "dimensions": len(analysis.scorecard.dimensions),
                "without_key_unauthenticated": unauthenticated,
            }
        )
    )


if __name__ == "__main__":
    main()
