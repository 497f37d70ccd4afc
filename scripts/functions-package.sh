#!/usr/bin/env bash
# Builds dist/soracam-lake-functions.zip, ready for Azure Functions zip deploy:
#
#   host.json                     custom handler: runs "soracam-lake serve"
#   SoraCamFunction/function.json the timer trigger
#   soracam-lake                  the binary, linked with RPATH $ORIGIN/lib
#   lib/                          every shared library it needs except glibc's own,
#                                 copied from this machine, with MANIFEST and licenses/
#
# The Functions Linux image has glibc but not libcurl, jansson, libmicrohttpd or libjpeg, and
# Debian ships no static libcurl that can be linked (libkrb5 has no static archive), so
# the libraries travel in the package. The binary's RPATH (not RUNPATH) also applies to the
# libraries' own dependencies, so everything in lib/ is found there first. The script
# prints the oldest glibc the package runs on.
#
#   make functions-package   (or: bash scripts/functions-package.sh)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

dist=dist
build=$dist/build              # objects of the packaged binary, apart from ./build
stage=$dist/functions          # the package's tree, zipped as it is
zipfile=$dist/soracam-lake-functions.zip
make_cmd=${MAKE:-make}

die() {
    echo "functions-package: $*" >&2
    exit 1
}

# Build dependencies first (installs only what is missing), then the packaging tools.
bash scripts/setup.sh
missing=()
for p in zip binutils; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "functions-package: installing ${missing[*]}"
    sudo_cmd=()
    [ "$(id -u)" = 0 ] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

[ "$(uname -m)" = x86_64 ] || echo "functions-package: warning: building on $(uname -m); Azure Functions on Linux runs x86-64" >&2

# glibc's own libraries: the image has them, and they must match its loader.
is_glibc() {
    case "$1" in
    ld-linux*.so.* | libc.so.* | libm.so.* | libmvec.so.* | libpthread.so.* | libdl.so.* | \
        librt.so.* | libresolv.so.* | libutil.so.* | libanl.so.* | libnss_*.so.* | \
        libBrokenLocale.so.* | libthread_db.so.* | linux-vdso.so.* | linux-gate.so.*)
        return 0 ;;
    esac
    return 1
}

# 1. The binary, in its own build directory, with the RPATH. SANITIZE is cleared in case
#    the caller's make passed it down.
"$make_cmd" --no-print-directory SANITIZE= BUILD="$build" BIN="$build/soracam-lake" \
    LDFLAGS="-Wl,-rpath,'\$\$ORIGIN/lib' -Wl,--disable-new-dtags" "$build/soracam-lake"

rm -rf "$stage"
mkdir -p "$stage/lib/licenses"
strip --strip-unneeded -o "$stage/soracam-lake" "$build/soracam-lake"
chmod 755 "$stage/soracam-lake"
# shellcheck disable=SC2016 # a literal $ORIGIN
readelf -d "$stage/soracam-lake" | grep -q 'Library rpath: \[\$ORIGIN/lib\]' ||
    die "the binary has no RPATH \$ORIGIN/lib"

# 2. The Functions files (never a local.settings.json: it holds secrets).
(cd deploy/azure-functions && find . -type f ! -name local.settings.json) | while read -r f; do
    mkdir -p "$stage/$(dirname "$f")"
    install -m 644 "deploy/azure-functions/$f" "$stage/$f"
done

# 3. The libraries: what the loader resolves on this machine, minus glibc.
{
    # shellcheck disable=SC1091
    echo "# Shared libraries bundled with soracam-lake $(cat VERSION), built on $(. /etc/os-release && echo "$PRETTY_NAME")."
    echo "# soname  Debian package  version"
} >"$stage/lib/MANIFEST"
env -i PATH=/usr/bin:/bin ldd "$build/soracam-lake" >"$dist/ldd-build.txt"
grep -q 'not found' "$dist/ldd-build.txt" && die "unresolved libraries: $(grep 'not found' "$dist/ldd-build.txt")"
awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }' "$dist/ldd-build.txt" | while read -r soname path; do
    is_glibc "$soname" && continue
    cp -L "$path" "$stage/lib/$soname"
    chmod 644 "$stage/lib/$soname"
    if readelf -d "$stage/lib/$soname" | grep -qE '\((RUNPATH|RPATH)\)'; then
        die "$soname has its own RUNPATH/RPATH, so its dependencies would not be looked up in lib/"
    fi
    # Which Debian package it came from (for licences and security updates).
    pkg=
    real=$(readlink -f "$path")
    for cand in "$path" "$real" "${path#/usr}" "/usr${path}" "${real#/usr}" "/usr${real}"; do
        pkg=$(dpkg-query -S "$cand" 2>/dev/null | head -1 | cut -d: -f1) && [ -n "$pkg" ] && break
    done
    if [ -n "$pkg" ]; then
        ver=$(dpkg-query -W -f='${Version}' "$pkg" 2>/dev/null || echo unknown)
        echo "$soname  $pkg  $ver" >>"$stage/lib/MANIFEST"
        if [ -f "/usr/share/doc/$pkg/copyright" ]; then
            cp -L "/usr/share/doc/$pkg/copyright" "$stage/lib/licenses/$pkg.copyright"
        fi
    else
        echo "$soname  (unknown package)  -" >>"$stage/lib/MANIFEST"
    fi
done

# 4. The oldest glibc that has every symbol version the binary and lib/ ask for.
glibc_min=$(for f in "$stage/soracam-lake" "$stage"/lib/*.so*; do objdump -T "$f"; done |
    grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)
echo "# needs glibc >= $glibc_min (x86-64)" >>"$stage/lib/MANIFEST"

# 5. Check: with a clean environment, every library outside glibc loads from lib/, and the
#    binary starts with every symbol bound.
abs_stage=$(cd "$stage" && pwd)
env -i PATH=/usr/bin:/bin ldd "$abs_stage/soracam-lake" >"$dist/ldd-package.txt"
bad=$(awk -v lib="$abs_stage/lib/" '$2 == "=>" && ($3 !~ /^\// || index($3, lib) != 1) { print $1 }' \
    "$dist/ldd-package.txt" | while read -r soname; do is_glibc "$soname" || echo "$soname"; done)
[ -z "$bad" ] || die "not loaded from lib/: $bad (see $dist/ldd-package.txt)"
env -i PATH=/usr/bin:/bin LD_BIND_NOW=1 "$abs_stage/soracam-lake" --version >/dev/null ||
    die "the packaged binary does not start"

# 6. The zip: sorted entries and fixed times, so the same tree gives the same bytes. zip
#    keeps the Unix modes (the binary stays executable on Linux).
epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 315619200)} # else 1980-01-02
find "$stage" -exec touch -h -d "@$epoch" {} +
rm -f "$zipfile.tmp"
(cd "$stage" && find . -mindepth 1 | sed 's|^\./||' | LC_ALL=C sort | zip -X -q -@ "$here/$zipfile.tmp")
mv -f "$zipfile.tmp" "$zipfile"

nlib=$(find "$stage/lib" -maxdepth 1 -name '*.so*' | wc -l)
echo "functions-package: $zipfile ($(du -k "$zipfile" | cut -f1) KiB; binary + $nlib libraries," \
    "$(du -sk "$stage" | cut -f1) KiB unpacked); runs on x86-64 Linux with glibc >= $glibc_min"
