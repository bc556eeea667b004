#!/usr/bin/env bash
# Runs every test file in two lanes at once (what `npm test` runs; scripts/test.sh does the set-up):
#   - the real-build lane: the files that build real OpenZFS for real kernels (marked `Lane: real
#     builds` in their header). On a machine that never built anything they compile for most of an
#     hour, almost all of it in the builder containers; they run at a lower CPU priority (nice) so the
#     other lane's timings are not starved;
#   - the main lane: every other file, one at a time, as before.
# Most of the main lane waits on Temporal timers, the registry and podman, so the builds use the CPU it
# leaves idle: the whole suite takes about as long as the longer lane instead of the sum of both.
# Each lane is one `node --test` process with --test-concurrency=1; the real-build lane's lines are
# prefixed with [real builds]. The exit code is non-zero when either lane fails.
#
#   scripts/run-tests.sh                # both lanes
#   KZ_TEST_LANES=serial scripts/run-tests.sh   # everything in one lane, one file at a time
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

mapfile -t all < <(ls test/unit/*.test.ts test/integration/*.test.ts)
mapfile -t real < <(grep -l '^ \* Lane: real builds' "${all[@]}")
main=()
for f in "${all[@]}"; do
  [[ " ${real[*]} " == *" $f "* ]] || main+=("$f")
done
# A test that hangs (a run waiting for an approval nobody gives) fails after this long instead of
# holding CI until its own limit; the real-build lane's first tests compile for most of an hour cold.
main_timeout_ms=$(( 20 * 60 * 1000 ))
real_timeout_ms=$(( 75 * 60 * 1000 ))
run() { node --import tsx --test --test-concurrency=1 --test-timeout="$main_timeout_ms" "$@"; }

if [ "${KZ_TEST_LANES:-}" = serial ] || [ ${#real[@]} -eq 0 ]; then
  main_timeout_ms=$real_timeout_ms run "${all[@]}"
  exit
fi

t0=$(date +%s)
echo "tests: ${#main[@]} file(s) in the main lane; ${#real[@]} in the real-build lane (nice 10): ${real[*]}"
( nice -n 10 node --import tsx --test --test-concurrency=1 --test-timeout="$real_timeout_ms" "${real[@]}" 2>&1 | sed -u 's/^/[real builds] /'
  exit "${PIPESTATUS[0]}" ) &
real_pid=$!
run "${main[@]}"
main_rc=$?
echo "tests: main lane finished (exit $main_rc) after $(( $(date +%s) - t0 ))s; waiting for the real-build lane"
wait "$real_pid"
real_rc=$?
echo "tests: real-build lane finished (exit $real_rc); both lanes took $(( $(date +%s) - t0 ))s"
[ "$main_rc" = 0 ] && [ "$real_rc" = 0 ]
