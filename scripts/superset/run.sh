#!/usr/bin/env bash
# Apache Superset over meshgate's PostgreSQL wire, end to end, in Superset's own environment.
#
#   scripts/superset/run.sh            (from the repository root)
#
# 1. installs apache-superset (pinned) and psycopg2 into $SUPERSET_VENV (default
#    /tmp/superset-venv; never the project's .venv), with Python 3.11 ($SUPERSET_PYTHON);
# 2. serves the demo mesh with `meshgate serve` and `server.postgres_port` (SCRAM sign-in);
# 3. gives Superset a SQLite metadata database and an admin, then `check.py` (in Superset's
#    environment, through its REST API and a test client) adds meshgate as a database
#    (postgresql+psycopg2://analyst@...), lists its schemas (the domains the analyst may read)
#    and tables, registers sales.orders as a dataset and runs a bar chart's aggregate query.
# Prints one JSON report; exits non-zero on the first step that fails. Not run in CI: the
# install alone is ~250 packages and several minutes.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SUPERSET_VENV=${SUPERSET_VENV:-/tmp/superset-venv}
SUPERSET_PYTHON=${SUPERSET_PYTHON:-/root/.pyenv/versions/3.11.7/bin/python}
MESHGATE_PYTHON=${MESHGATE_PYTHON:-$ROOT/.venv/bin/python}
WORK=${SUPERSET_WORK:-$(mktemp -d /tmp/meshgate-superset.XXXXXX)}
PG_PORT=${PG_PORT:-15433}
FLIGHT_PORT=${FLIGHT_PORT:-18815}

if [ ! -x "$SUPERSET_VENV/bin/superset" ]; then
  "$SUPERSET_PYTHON" -m venv "$SUPERSET_VENV"
  "$SUPERSET_VENV/bin/pip" install -q --upgrade pip
  # rich and cachetools: imported by superset/cli/test_db.py and
  # superset/db_engine_specs/aws_iam.py (the PostgreSQL spec's) but not declared by
  # apache-superset 6.1.0; flask-caching: 2.5 (what "<3" resolves to) breaks Superset's
  # memoized caches.
  "$SUPERSET_VENV/bin/pip" install -q "apache-superset==6.1.0" "psycopg2-binary==2.9.13" \
    "rich==15.0.0" "cachetools==8.0.0" "flask-caching==2.3.1"
fi

# The demo mesh with the PostgreSQL port switched on.
export PYTHONPATH="$ROOT/src:$ROOT/connectors"
"$MESHGATE_PYTHON" - "$WORK/mesh" "$PG_PORT" "$FLIGHT_PORT" <<'PY'
import sys
from pathlib import Path
import yaml
from meshgate.demo.generate import prepare_demo
target = prepare_demo(Path(sys.argv[1]))
mesh = target / "mesh.yaml"
document = yaml.safe_load(mesh.read_text(encoding="utf-8"))
document.setdefault("server", {}).update(postgres_port=int(sys.argv[2]), port=int(sys.argv[3]))
mesh.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
PY
"$MESHGATE_PYTHON" -m meshgate.cli serve --config "$WORK/mesh" > "$WORK/meshgate.log" 2>&1 &
MESHGATE_PID=$!
trap 'kill $MESHGATE_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do
  grep -q "PostgreSQL wire protocol on port" "$WORK/meshgate.log" && break
  kill -0 $MESHGATE_PID 2>/dev/null || { cat "$WORK/meshgate.log"; exit 1; }
  sleep 0.5
done

# Superset: its own metadata database (SQLite), an admin, the built-in roles.
export SUPERSET_CONFIG_PATH="$WORK/superset_config.py"
export SUPERSET_HOME="$WORK/superset-home"
cat > "$SUPERSET_CONFIG_PATH" <<PY
SECRET_KEY = "$(head -c 32 /dev/urandom | base64)"
SQLALCHEMY_DATABASE_URI = "sqlite:///$WORK/superset.db"
WTF_CSRF_ENABLED = False
PREVENT_UNSAFE_DB_CONNECTIONS = False
# In-process caches: Superset 6.1.0's default metastore cache does not start with the
# flask-caching it installs (an unexpected 'ignore_delete_many_errors' argument).
CACHE_CONFIG = DATA_CACHE_CONFIG = {"CACHE_TYPE": "SimpleCache"}
FILTER_STATE_CACHE_CONFIG = EXPLORE_FORM_DATA_CACHE_CONFIG = {"CACHE_TYPE": "SimpleCache"}
PY
SUPERSET="$SUPERSET_VENV/bin/superset"
"$SUPERSET" db upgrade > "$WORK/superset-setup.log" 2>&1
"$SUPERSET" fab create-admin --username admin --firstname Ada --lastname Admin \
  --email admin@example.com --password admin >> "$WORK/superset-setup.log" 2>&1
"$SUPERSET" init >> "$WORK/superset-setup.log" 2>&1

"$SUPERSET_VENV/bin/python" "$ROOT/scripts/superset/check.py" \
  "postgresql+psycopg2://analyst:analyst@127.0.0.1:$PG_PORT/meshgate"
