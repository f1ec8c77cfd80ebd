#!/usr/bin/env bash
# Creates the virtualenv used by the Python-worker conformance test and the
# voice benchmark's Python side (tests/conformance/voice_agent.py), and
# installs the pinned livekit-agents with its OpenAI and Silero plugins into
# it, every dependency at the version in constraints.txt. Idempotent: does
# nothing when the pinned versions are already installed.
#
#   bash tests/conformance/setup.sh            # venv in target/conformance-venv
#   VENV=/some/dir bash tests/conformance/setup.sh
#
# Then run the test with
#   AGENT_HOST_PYTHON=$PWD/target/conformance-venv/bin/python cargo test -p fake-livekit --test python_worker
set -euo pipefail

LIVEKIT_AGENTS_VERSION="1.8.9"
# The plugins are released in lockstep with livekit-agents: same version.
PACKAGES=(
    "livekit-agents==$LIVEKIT_AGENTS_VERSION"
    "livekit-plugins-openai==$LIVEKIT_AGENTS_VERSION"
    "livekit-plugins-silero==$LIVEKIT_AGENTS_VERSION"
)
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${VENV:-$ROOT/target/conformance-venv}"
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3

if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" - "${PACKAGES[@]}" <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
pins = [p.split("==") for p in sys.argv[1:]]
sys.exit(0 if all(version(name) == pin for name, pin in pins) else 1)
PY
then
    echo "${PACKAGES[*]} already installed in $VENV"
    echo "AGENT_HOST_PYTHON=$VENV/bin/python"
    exit 0
fi

if [ ! -x "$VENV/bin/python" ]; then
    echo "creating $VENV with $("$PYTHON" --version)"
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --disable-pip-version-check --quiet --upgrade pip
"$VENV/bin/python" -m pip install --disable-pip-version-check -c "$ROOT/tests/conformance/constraints.txt" "${PACKAGES[@]}"
"$VENV/bin/python" -c 'import livekit.agents; print("livekit-agents", livekit.agents.__version__)'
"$VENV/bin/python" -c 'import livekit.plugins.openai, livekit.plugins.silero'
echo "AGENT_HOST_PYTHON=$VENV/bin/python"
