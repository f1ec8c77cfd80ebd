#!/usr/bin/env bash
# Creates the virtualenv used by the Python-worker conformance test and
# installs the pinned livekit-agents into it. Idempotent: does nothing when
# the pinned version is already installed.
#
#   bash tests/conformance/setup.sh            # venv in target/conformance-venv
#   VENV=/some/dir bash tests/conformance/setup.sh
#
# Then run the test with
#   AGENT_HOST_PYTHON=$PWD/target/conformance-venv/bin/python cargo test -p fake-livekit --test python_worker
set -euo pipefail

LIVEKIT_AGENTS_VERSION="1.8.9"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${VENV:-$ROOT/target/conformance-venv}"
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3

if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" - "$LIVEKIT_AGENTS_VERSION" <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
sys.exit(0 if version("livekit-agents") == sys.argv[1] else 1)
PY
then
    echo "livekit-agents $LIVEKIT_AGENTS_VERSION already installed in $VENV"
    echo "AGENT_HOST_PYTHON=$VENV/bin/python"
    exit 0
fi

echo "creating $VENV with $("$PYTHON" --version)"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --disable-pip-version-check --quiet --upgrade pip
"$VENV/bin/python" -m pip install --disable-pip-version-check "livekit-agents==$LIVEKIT_AGENTS_VERSION"
"$VENV/bin/python" -c 'import livekit.agents; print("livekit-agents", livekit.agents.__version__)'
echo "AGENT_HOST_PYTHON=$VENV/bin/python"
