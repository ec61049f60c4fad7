#!/bin/sh
# run.sh BUILD [e2e] - run every Check suite in BUILD/tests and print one summary
# line, "N passed, N failed". With "e2e", only the end-to-end suites. With
# MDP_TEST_VALGRIND=1, each suite runs under valgrind memcheck and any error or
# leak fails it.
set -u
BUILD=${1:-build}
ONLY=${2:-}
export MDP_BUILD="$BUILD"
passed=0; failed=0; bad=""
for t in "$BUILD"/tests/test_*; do
    [ -x "$t" ] || continue
    name=$(basename "$t")
    case "$ONLY:$name" in e2e:test_e2e*|:*) ;; *) continue ;; esac
    log="$BUILD/tests/$name.log"
    if [ "${MDP_TEST_VALGRIND:-}" = 1 ]; then
        # Check forks each test; valgrind follows forks. Errors and definite or
        # possible leaks make valgrind exit 99.
        CK_DEFAULT_TIMEOUT=${CK_DEFAULT_TIMEOUT:-120} MDP_TEST_SLOW=1 \
        valgrind -q --error-exitcode=99 --leak-check=full \
            --trace-children=yes --trace-children-skip="*python*,*/sh,*/bash" \
            --errors-for-leak-kinds=definite,possible --show-leak-kinds=definite,possible \
            --suppressions=tests/valgrind.supp "$t" >"$log" 2>&1
    else
        "$t" >"$log" 2>&1
    fi
    rc=$?
    line=$(grep -E '^[0-9]+%: Checks: ' "$log" | tail -1)
    checks=$(echo "$line" | sed -n 's/.*Checks: \([0-9]*\).*/\1/p')
    fails=$(echo "$line" | sed -n 's/.*Failures: \([0-9]*\).*/\1/p')
    errs=$(echo "$line" | sed -n 's/.*Errors: \([0-9]*\).*/\1/p')
    checks=${checks:-0}; fails=${fails:-0}; errs=${errs:-0}
    ok=$((checks - fails - errs))
    passed=$((passed + ok))
    if [ "$rc" != 0 ] || [ "$fails" != 0 ] || [ "$errs" != 0 ] || [ -z "$line" ]; then
        n=$((fails + errs)); [ "$n" = 0 ] && n=1
        failed=$((failed + n))
        bad="$bad $name"
        echo "FAIL $name (exit $rc): $line"
        grep -E ':[EF]:|ERROR SUMMARY|definitely lost|possibly lost|AddressSanitizer|runtime error' "$log" | head -20
    else
        echo "ok   $name: $line"
    fi
done
[ -n "$bad" ] && echo "failed suites:$bad (logs in $BUILD/tests/*.log)"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
