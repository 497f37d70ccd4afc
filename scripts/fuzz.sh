#!/usr/bin/env bash
# make fuzz / make fuzz-ci: runs each libFuzzer target built in build-fuzz/ for FUZZ_SECONDS
# (default 60) seconds, FUZZ_JOBS (default: the number of CPUs) targets at a time, starting
# from its committed corpus tests/data/fuzz/<target>/ (read only; new inputs go to
# build-fuzz/corpus/<target>/), with a per-target input size bound and a memory limit. A
# crash, leak, sanitizer report, timeout or broken invariant stops that target; the input is
# saved under build-fuzz/findings/ and the script exits 1.
#
#   scripts/fuzz.sh TARGET...
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
seconds=${FUZZ_SECONDS:-60}
out=build-fuzz
mkdir -p "$out/findings"

# Input size bounds: a little over what each parser meets in practice.
max_len() {
    case "$1" in
        schedule) echo 320 ;;     # expressions are capped at 256 characters
        values) echo 128 ;;
        azure_conn) echo 2048 ;;
        template) echo 1536 ;;    # templates render to at most 1024 characters
        jpeg) echo 8192 ;;
        *) echo 4096 ;;           # JSON answers and bodies
    esac
}

jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 1)}

# Runs one target; writes its summary line to build-fuzz/fuzz_<target>.result.
run_one() {
    local t=$1 exe="$out/fuzz_$1" corpus="$out/corpus/$1" log="$out/fuzz_$1.log"
    mkdir -p "$corpus"
    local args=(-max_total_time="$seconds" -max_len="$(max_len "$t")" -rss_limit_mb=2048
                -timeout=10 -print_final_stats=1 -artifact_prefix="$out/findings/$t-")
    [ -f "tests/data/fuzz/$t.dict" ] && args+=(-dict="tests/data/fuzz/$t.dict")
    local start rc runs cov
    start=$(date +%s)
    ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=0 UBSAN_OPTIONS=print_stacktrace=1 \
        "$exe" "${args[@]}" "$corpus" "tests/data/fuzz/$t" >"$log" 2>&1
    rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
    printf 'fuzz %-12s %4ss %10s runs  %-10s %s\n' "$t" "$(($(date +%s) - start))" \
        "${runs:-?}" "${cov:-}" "$([ $rc = 0 ] && echo ok || echo FAILED)" >"$out/fuzz_$t.result"
    return $rc
}

running=0
for t in "$@"; do
    if [ "$running" -ge "$jobs" ]; then
        wait -n || true
        running=$((running - 1))
    fi
    run_one "$t" &
    running=$((running + 1))
done
wait

failed=()
for t in "$@"; do
    cat "$out/fuzz_$t.result"
    if ! grep -q ' ok$' "$out/fuzz_$t.result"; then
        failed+=("$t")
        grep -E 'ERROR|SUMMARY|invariant broken|Test unit written|runtime error' \
            "$out/fuzz_$t.log" | head -20
        echo "  full log: $out/fuzz_$t.log"
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: findings in ${failed[*]}: reproduce with build-fuzz/fuzz_<target> <file>; fix," \
         "then commit the input to tests/data/fuzz/<target>/ as a regression test"
    exit 1
fi
echo "fuzz: ${#@} targets, ${seconds}s each, $jobs at a time, no findings"
