#!/usr/bin/env bash
# The end-to-end benchmark, agent-host side by side with the official Python
# worker, in one command on a fresh machine (see README, "Performance"):
#
#   bash tests/benches/e2e.sh            # extra arguments go to the benchmark
#
# Builds the `agent-host` binary the benchmark runs (bench profile, into
# target/release), then runs it with --python; the benchmark installs the
# Python worker's virtualenv with tests/conformance/setup.sh if needed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
cargo build --profile bench -p agent-host
cargo bench -p agent-host-tests --bench e2e -- --python "$@"
