#!/usr/bin/env sh
# Regenerate meshgate's Flight / Flight SQL protobuf classes (*_pb2.py + *_pb2.pyi).
#
# The .proto files under src/meshgate/server/proto/ are meshgate's own; the generated modules are
# committed so that runtime needs only `protobuf`. Needs grpcio-tools (the `test` extra).
# Proto paths are rooted at src/ so the descriptors are registered as
# "meshgate/server/proto/<name>.proto" and cannot collide with another library's file names.
set -eu
cd "$(dirname "$0")/.."
python -m grpc_tools.protoc \
  --proto_path=src \
  --python_out=src \
  --pyi_out=src \
  src/meshgate/server/proto/flight_sql.proto \
  src/meshgate/server/proto/flight.proto
echo "generated: $(ls src/meshgate/server/proto/*_pb2.py*)"
