#!/usr/bin/env bash
# Telethon interop: builds the fake-dc binary, puts Telethon 1.x in a venv
# under target/, and pings the fake DC over every Telethon transport.
set -euo pipefail
cd "$(dirname "$0")/../.."
target="${CARGO_TARGET_DIR:-target}"
venv="$target/interop-venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check "telethon>=1.36,<2"
cargo build -p mtsender-testkit --bin fake-dc
exec "$venv/bin/python" tests/interop/telethon_ping.py "$target/debug/fake-dc"
