#!/usr/bin/env bash
# make demo: one capture cycle of two simulated cameras into ./captures.
# Starts the project's fake SORACOM API on a free loopback port, runs `soracam-lake run`
# against it with the local-directory sink, lists what was stored, and stops the fake.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

tmp=$(mktemp -d)
cleanup() {
    [ -n "${fake_pid:-}" ] && kill "$fake_pid" 2>/dev/null && wait "$fake_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

./build/fake_soracom --port 0 --port-file "$tmp/port" --devices 2 --quiet \
    --auth-key-id keyId-demo --auth-key secret-demo >"$tmp/fake.log" 2>&1 &
fake_pid=$!
for _ in $(seq 100); do [ -s "$tmp/port" ] && break; sleep 0.1; done
[ -s "$tmp/port" ] || { echo "demo: the fake SORACOM API did not start"; cat "$tmp/fake.log"; exit 1; }
port=$(cat "$tmp/port")
echo "demo: fake SORACOM API with two cameras on http://127.0.0.1:$port"

# Only variables a real deployment would set, pointed at the fake; no Azure connection
# string, so images go to ./captures.
env -i PATH="$PATH" \
    SORACOM_API_ENDPOINT="http://127.0.0.1:$port" \
    SORACOM_AUTH_KEY_ID=keyId-demo SORACOM_AUTH_KEY=secret-demo \
    SORACOM_DEVICE_IDS=7CDDDE000001,7CDDDE000002 \
    SORACAM_CAPTURE_DELAY=6s \
    ./soracam-lake run

echo
echo "demo: images stored under $here/captures:"
find captures -name '*.jpg' -printf '  %p (%s bytes)\n' | sort | tail -n 10
echo "demo: each has a .json sidecar with its metadata; run 'make demo' again for the next slot."
