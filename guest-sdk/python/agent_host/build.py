"""Builds an agent project into a component: componentize-py, then the marker.

``python -m agent_host build APP_DIR [-o OUT] [--module app]``:

1. writes an entry module that exports the one :class:`agent_host.Agent`
   subclass of ``APP_DIR/<module>.py`` (``app`` by default) as the world;
2. runs componentize-py 0.25.1 (the pinned version; see ``COMPONENTIZE_PY``)
   on the ``agent`` world of the WIT shipped in this package, with
   ``APP_DIR`` and this SDK on the module path;
3. appends the ``agent-host:sdk-version`` custom section (the WIT version as
   text, as the Rust SDK writes it) and, when ``APP_DIR/pyproject.toml``
   names a version, ``agent-host:guest-version``.

Uses only the standard library, so it runs outside a component build.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

#: The componentize-py this SDK is built and tested with.
COMPONENTIZE_PY = "0.25.1"
#: The WIT version of ``agent-host:agent`` this SDK targets.
WIT_VERSION = "0.1.4"
#: The world the agent is built for.
WORLD = "agent"
SDK_VERSION_SECTION = "agent-host:sdk-version"
GUEST_VERSION_SECTION = "agent-host:guest-version"

_ENTRY = "_agent_host_entry"


def wit_dir() -> Path:
    """The WIT shipped inside this package (identical to agent-host's wit/)."""
    return Path(__file__).resolve().parent / "wit"


def _leb128(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def custom_section(name: str, payload: bytes) -> bytes:
    """A WebAssembly custom section (id 0): valid at the end of a component."""
    encoded = name.encode()
    body = _leb128(len(encoded)) + encoded + payload
    return b"\x00" + _leb128(len(body)) + body


def project_version(app_dir: Path):
    """``[project].version`` of ``APP_DIR/pyproject.toml``, if any."""
    pyproject = app_dir / "pyproject.toml"
    if not pyproject.is_file():
        return None
    import tomllib

    with open(pyproject, "rb") as f:
        return tomllib.load(f).get("project", {}).get("version")


def componentize_py() -> str:
    """The componentize-py beside this interpreter, else the one on PATH."""
    beside = Path(sys.executable).parent / "componentize-py"
    if beside.exists():
        return str(beside)
    found = shutil.which("componentize-py")
    if not found:
        raise SystemExit(
            f"componentize-py not found: pip install componentize-py=={COMPONENTIZE_PY} "
            "(or run `agent-host setup --lang python`)"
        )
    return found


def build(app_dir: Path, out: Path, module: str = "app") -> Path:
    """Builds ``app_dir`` into the component ``out`` and returns its path."""
    app_dir = app_dir.resolve()
    if not (app_dir / f"{module}.py").is_file():
        raise SystemExit(f"{app_dir} has no {module}.py defining an agent_host.Agent subclass")
    sdk_root = Path(__file__).resolve().parent.parent
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="agent-host-build-") as scratch:
        Path(scratch, f"{_ENTRY}.py").write_text(
            "from agent_host._agent import world_for\n"
            f"import {module} as _app\n"
            "WitWorld = world_for(_app)\n"
        )
        partial = out.with_name(out.name + ".partial")
        command = [
            componentize_py(),
            "-d", str(wit_dir()),
            "-w", WORLD,
            "componentize", _ENTRY,
            "-p", scratch,
            "-p", str(app_dir),
            "-p", str(sdk_root),
            "-o", str(partial),
        ]
        result = subprocess.run(command, stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            raise SystemExit(f"componentize-py failed (exit {result.returncode}); see above")
        with open(partial, "ab") as f:
            f.write(custom_section(SDK_VERSION_SECTION, WIT_VERSION.encode()))
            version = project_version(app_dir)
            if version:
                f.write(custom_section(GUEST_VERSION_SECTION, str(version).encode()))
        os.replace(partial, out)
    return out


def main(argv) -> int:
    parser = argparse.ArgumentParser(prog="python -m agent_host")
    commands = parser.add_subparsers(dest="command", required=True)
    b = commands.add_parser("build", help="build an agent project into a component")
    b.add_argument("app_dir", type=Path)
    b.add_argument("-o", "--output", type=Path, help="default: APP_DIR/build/agent.wasm")
    b.add_argument("--module", default="app", help="the module defining the Agent (default: app)")
    args = parser.parse_args(argv)
    out = args.output or args.app_dir / "build" / "agent.wasm"
    print(build(args.app_dir, out, args.module))
    return 0
