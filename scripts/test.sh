#!/usr/bin/env bash
# Installs dependencies, builds sbx twice (normal, and with ASan+UBSan) and runs the whole
# Criterion suite against the real kernel in both builds.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
status=0
for variant in normal asan; do
    if [ "$variant" = asan ]; then
        dir=build-asan
        bash scripts/build.sh "$dir" -DSBX_SANITIZE=address,undefined
        export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
        export LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp:print_suppressions=0
        export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    else
        dir=build
        bash scripts/build.sh "$dir"
    fi
    echo "== tests ($variant build) =="
    if ! ctest --test-dir "$dir" --output-on-failure --timeout 600; then
        status=1
    fi
done
exit $status
