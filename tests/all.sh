#!/bin/sh
# all.sh - the whole test run behind `make test`: plain suites, the same under
# ASan+UBSan, the end-to-end suites under valgrind, a short fuzz run. Prints
# each phase, then one total line "N passed, N failed".
set -u
total_p=0; total_f=0; status=0
phase() {
    name=$1; shift
    echo "== $name"
    out=$("$@" 2>&1); rc=$?
    echo "$out" | grep -vE '^  CC|^make\[' 
    line=$(echo "$out" | grep -E '[0-9]+ passed, [0-9]+ failed' | tail -1)
    p=$(echo "$line" | sed -n 's/.*\b\([0-9][0-9]*\) passed.*/\1/p')
    f=$(echo "$line" | sed -n 's/.*passed, \([0-9][0-9]*\) failed.*/\1/p')
    [ -z "$line" ] && f=1
    total_p=$((total_p + ${p:-0})); total_f=$((total_f + ${f:-0}))
    [ "$rc" != 0 ] && status=1
}
phase "plain" make --no-print-directory check
phase "asan+ubsan" make --no-print-directory check-san
phase "valgrind" make --no-print-directory check-valgrind
phase "fuzz" make --no-print-directory fuzz FUZZ_SECONDS=${FUZZ_SECONDS:-20}
[ "$total_f" != 0 ] && status=1
echo "$total_p passed, $total_f failed"
exit $status
