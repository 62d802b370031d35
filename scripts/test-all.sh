#!/usr/bin/env bash
# Run the given make stages in order (`make test`), stop at the first failure and print
# a summary table: each stage's result and duration, and which stages did not run.
#
# Usage: scripts/test-all.sh STAGE...
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1

stages=("$@")
[ "${#stages[@]}" -gt 0 ] || { echo "usage: $0 STAGE..." >&2; exit 2; }

# The machine's own firewall (root network namespace) must read the same after every
# stage as before: tests, demo and benchmarks only ever change namespaces they create.
host_firewall() {
    local tool
    for tool in iptables-save ip6tables-save iptables-legacy-save ip6tables-legacy-save; do
        if command -v "$tool" >/dev/null 2>&1; then
            printf '## %s\n' "$tool"
            "$tool" 2>&1 | grep -v '^#'
        fi
    done
}
host_before=$(host_firewall)

declare -A result duration
passed=0
failed=0
failed_stage=
started=$SECONDS

for stage in "${stages[@]}"; do
    printf '\n==================== make %s ====================\n' "$stage"
    t0=$SECONDS
    make --no-print-directory "$stage"
    rc=$?
    duration[$stage]=$((SECONDS - t0))
    if [ "$rc" -eq 0 ]; then
        result[$stage]=passed
        passed=$((passed + 1))
    else
        result[$stage]="FAILED (exit $rc)"
        failed=$((failed + 1))
        failed_stage=$stage
        break
    fi
done

not_run=$(( ${#stages[@]} - passed - failed ))
host_after=$(host_firewall)
if [ "$host_before" != "$host_after" ]; then
    echo "the machine's own firewall changed during the tests:" >&2
    diff <(printf '%s\n' "$host_before") <(printf '%s\n' "$host_after") >&2 || true
    result[host-firewall]="FAILED (changed)"
    failed=$((failed + 1))
else
    printf '\nthe machine'"'"'s own firewall (root namespace iptables/ip6tables, nft and legacy) is unchanged\n'
fi

printf '\n==================== summary ====================\n'
for stage in "${stages[@]}"; do
    if [ -n "${result[$stage]:-}" ]; then
        printf '  %-16s %-18s %5ss\n' "$stage" "${result[$stage]}" "${duration[$stage]}"
    else
        printf '  %-16s %-18s\n' "$stage" "not run"
    fi
done
printf '  total time: %ss\n' "$((SECONDS - started))"
if [ -n "$failed_stage" ]; then
    printf '  stopped at the first failure (%d stage(s) not run): rerun with "make %s"\n' "$not_run" "$failed_stage"
fi
# Counts make stages, not individual tests (pytest prints its own counts above).
printf 'stages: %d passed, %d failed\n' "$passed" "$failed"

[ "$failed" -eq 0 ]
