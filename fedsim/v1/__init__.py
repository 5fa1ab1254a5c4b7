"""Generated protobuf/gRPC code for the fedsim wire contract (protos/fedsim/v1/wire.proto).

Do not edit the *_pb2* files by hand: regenerate with ``python -m fedsim.wire.protogen``.
"""
