#!/usr/bin/env bash
# Run the adbc-drivers/validation suite against `meshgate serve` (Go Flight SQL driver from the
# adbc-driver-flightsql wheel, Python 3.13). Not run by CI: it needs a checkout of the suite,
# which this script never fetches.
#
#   scripts/validation/run.sh /path/to/validation [WORK_DIR]
#
# PYTHON313 (default python3.13) makes the suite's venv, once, in $WORK_DIR/venv, from the
# suite's own requirements (PyPI). MESHGATE_PYTHON (default: the repo's .venv, else python3)
# runs meshgate from this checkout. MESHGATE_VALIDATION_PORT (default 18815) is the port.
set -euo pipefail

suite=$(cd "${1:?usage: run.sh SUITE_PATH [WORK_DIR]}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
work=$(mkdir -p "${2:-/tmp/meshgate-validation}" && cd "${2:-/tmp/meshgate-validation}" && pwd)
port=${MESHGATE_VALIDATION_PORT:-18815}
venv="$work/venv"
meshgate_python=${MESHGATE_PYTHON:-}
if [[ -z $meshgate_python ]]; then
  if [[ -x $repo/.venv/bin/python ]]; then meshgate_python=$repo/.venv/bin/python; else meshgate_python=python3; fi
fi

if [[ ! -x $venv/bin/python ]]; then
  "${PYTHON313:-python3.13}" -m venv "$venv"
  "$venv/bin/pip" install -q "$suite" adbc-driver-flightsql
fi

"$venv/bin/python" "$here/build_mesh.py" "$work/mesh"

PYTHONPATH="$repo/src:$repo/connectors" "$meshgate_python" -m meshgate.cli serve \
  --config "$work/mesh/config" --port "$port" > "$work/serve.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  if "$venv/bin/python" -c "import socket; socket.create_connection(('127.0.0.1', $port), 1)" 2>/dev/null; then break; fi
  kill -0 "$server" 2>/dev/null || { cat "$work/serve.log"; exit 1; }
  sleep 0.2
done

cd "$here/suite"
MESHGATE_VALIDATION_URI="grpc://127.0.0.1:$port" MESHGATE_VALIDATION_QUERIES="$work/mesh/queries" \
  "$venv/bin/python" -m pytest -q -p no:cacheprovider -o junit_family=legacy \
  --junitxml="$work/junit.xml" . > "$work/pytest.log" 2>&1 || true
tail -n 8 "$work/pytest.log"
"$venv/bin/python" "$here/summarize.py" "$work/junit.xml"
