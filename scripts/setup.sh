#!/usr/bin/env bash
# Installs what soracam-lake needs on Debian 12, skipping whatever is already there.
#   scripts/setup.sh          build dependencies (compiler, libcurl, OpenSSL, jansson, libmicrohttpd, libjpeg)
#   scripts/setup.sh --test   also the test tools: cmocka, python3, the Azure SDK for Python, Chromium
#                             (renders gallery pages headless), man-db, openssl (test certificates),
#                             Azurite (npm, pinned), and the checkers CI runs: clang with
#                             libFuzzer (make fuzz), cppcheck (make analyze),
#                             valgrind (make valgrind)
set -euo pipefail

AZURITE_VERSION=3.37.0
here=$(cd "$(dirname "$0")/.." && pwd)
want_test=0
[ "${1:-}" = "--test" ] && want_test=1

pkgs=(build-essential pkg-config libcurl4-openssl-dev libssl-dev libjansson-dev libmicrohttpd-dev
      libjpeg62-turbo-dev ca-certificates)
if [ "$want_test" = 1 ]; then
    pkgs+=(libcmocka-dev python3 python3-azure clang-format chromium man-db openssl clang
           libclang-rt-14-dev cppcheck valgrind)
fi

missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "$want_test" = 1 ] && ! command -v npm >/dev/null 2>&1; then
    missing+=(nodejs npm)
fi

if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    sudo_cmd=()
    [ "$(id -u)" = 0 ] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ "$want_test" = 1 ]; then
    azurite="$here/tests/node_modules/.bin/azurite"
    if [ ! -x "$azurite" ] || [ "$("$azurite" --version 2>/dev/null)" != "$AZURITE_VERSION" ]; then
        echo "setup: installing Azurite $AZURITE_VERSION from npm into tests/node_modules"
        (cd "$here/tests" && npm install --no-audit --no-fund --loglevel=error >/dev/null)
    fi
fi
echo "setup: dependencies present"
