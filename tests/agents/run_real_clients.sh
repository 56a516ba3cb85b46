#!/usr/bin/env bash
# The real agent CLIs (Codex CLI, Claude Code) against Relay in front of the mock upstream: 16 runs, one table.
#
#   tests/agents/run_real_clients.sh [--install-dir DIR] [--install-only] [--refresh-fixtures] [--jobs N] [--only CLI]
#
# Installs the pinned versions (tests/agents/clients.py) with npm into DIR (default: a new temporary folder),
# unless RELAY_AGENTS_BIN names a folder that already holds the `codex` and `claude` commands; then runs
# `python -m tests.agents.runner` (see docs/testing.md). --install-only installs and prints the RELAY_AGENTS_BIN
# to export, which also lets `pytest tests/agents/test_real_clients.py` run. Exits 1 when a run failed.
set -euo pipefail
cd "$(dirname "$0")/../.."

install_dir=""
install_only=0
runner_args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --install-dir) install_dir="$2"; shift 2 ;;
        --install-only) install_only=1; shift ;;
        --refresh-fixtures) runner_args+=("$1"); shift ;;
        --jobs|--only) runner_args+=("$1" "$2"); shift 2 ;;
        -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "run_real_clients.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

if [ -n "${RELAY_AGENTS_BIN:-}" ] && [ -z "$install_dir" ]; then
    bin="$RELAY_AGENTS_BIN"
else
    packages=$(python -c 'from tests.agents.clients import CLIENTS; print(" ".join(f"{c.package}@{c.version}" for c in CLIENTS))')
    install_dir="${install_dir:-$(mktemp -d "${TMPDIR:-/tmp}/relay-agents-npm.XXXXXX")}"
    mkdir -p "$install_dir"
    echo "installing $packages into $install_dir" >&2
    # shellcheck disable=SC2086  # the package list is meant to split into words
    npm install --prefix "$install_dir" --no-audit --no-fund --loglevel=error --save-exact $packages >&2
    bin="$install_dir/node_modules/.bin"
fi

for command in codex claude; do
    if [ ! -x "$bin/$command" ]; then
        echo "run_real_clients.sh: $bin/$command not found" >&2
        exit 2
    fi
done

if [ "$install_only" -eq 1 ]; then
    echo "export RELAY_AGENTS_BIN=$bin"
    exit 0
fi
exec python -m tests.agents.runner --bin "$bin" ${runner_args[@]+"${runner_args[@]}"}
