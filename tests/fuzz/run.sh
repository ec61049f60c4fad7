#!/bin/sh
# run.sh SECONDS - run each libFuzzer target for SECONDS from its committed seed
# corpus; prints one "N passed, N failed" line (a target passes if it found
# no crash, leak or timeout).
set -u
SECONDS_EACH=${1:-60}
passed=0; failed=0
for target in broker msg; do
    work=build-fuzz/corpus-$target
    mkdir -p "$work"
    log=build-fuzz/fuzz_$target.log
    if build-fuzz/fuzz_$target -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix=build-fuzz/ -print_final_stats=1 "$work" tests/fuzz/corpus/$target \
        >"$log" 2>&1; then
        runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
        echo "ok   fuzz_$target: ${runs:-?} inputs in ${SECONDS_EACH}s, no crash"
        passed=$((passed + 1))
    else
        echo "FAIL fuzz_$target (artifacts in build-fuzz/):"
        grep -E 'ERROR|SUMMARY|==[0-9]+==' "$log" | head -20
        failed=$((failed + 1))
    fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" = 0 ]
