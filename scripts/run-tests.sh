#!/usr/bin/env bash
# Runs every test file in lanes at once (what `npm test` runs; scripts/test.sh does the set-up):
#   - the real-build lane: the files that build real OpenZFS for real kernels (marked `Lane: real
#     builds` in their header; the timing story, marked `Opt-in: KZ_STORY=1`, only with KZ_STORY=1:
#     its own zfs-2.2.6 build would take CI past 90 minutes on a machine that never built anything).
#     On a machine that never built anything they compile for most of an
#     hour, almost all of it in the builder containers; they run at a lower CPU priority (nice) so the
#     other lanes' timings are not starved;
#   - the faults lane, with KZ_FAULTS=1 only: the fault suite (marked `Lane: faults`): a run with a
#     killed worker per activity boundary (60 today), two 10-minute registry outages and a Temporal
#     restart, much of it waiting (Temporal noticing killed workers); 16 minutes on 2 cores beside the
#     real-build lane, 49 beside four other test runs: too much for CI's 90 minutes on a machine that
#     never built anything. It runs its own Temporal dev server, so restarting that one touches no
#     other lane;
#   - the side lane: long integration files that need nothing of the others (their own worlds, their
#     own Temporal cluster), marked `Lane: side`, beside the main lane so the suite's wall time does not
#     grow with every such file;
#   - the main lane: every other file, one at a time, as before.
# Most of the main lane waits on Temporal timers, the registry and podman, so the other lanes use the
# CPU it leaves idle: the whole suite takes about as long as the longest lane instead of the sum.
# Each lane is one `node --test` process with --test-concurrency=1; the other lanes' lines are
# prefixed with [real builds], [side] and [faults]. The exit code is non-zero when any lane fails.
#
#   scripts/run-tests.sh                # all lanes but the fault suite and the timing story
#   KZ_FAULTS=1 KZ_STORY=1 scripts/run-tests.sh   # also the fault suite and the timing story
#   KZ_TEST_LANES=serial scripts/run-tests.sh   # everything in one lane, one file at a time
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

mapfile -t all < <(ls test/unit/*.test.ts test/integration/*.test.ts)
mapfile -t real < <(grep -l '^ \* Lane: real builds' "${all[@]}")
mapfile -t faults < <(grep -l '^ \* Lane: faults' "${all[@]}")
mapfile -t side < <(grep -l '^ \* Lane: side' "${all[@]}")
main=()
for f in "${all[@]}"; do
  [[ " ${real[*]} ${faults[*]} ${side[*]} " == *" $f "* ]] || main+=("$f")
done
# The fault suite (a full run per activity boundary: 16 to 50 minutes on 2 cores) runs when asked,
# KZ_FAULTS=1: with it, CI would not fit its 90 minutes on a machine that never built anything.
[ "${KZ_FAULTS:-}" = 1 ] || faults=()
# Real-build files marked `Opt-in: KZ_STORY=1` (the timing story: a zfs-2.2.6 build of its own) run when asked.
if [ "${KZ_STORY:-}" != 1 ]; then
  mapfile -t real < <(for f in "${real[@]}"; do grep -q '^ \* Opt-in: KZ_STORY=1' "$f" || echo "$f"; done)
fi
# A test that hangs (a run waiting for an approval nobody gives) fails after this long instead of
# holding CI until its own limit; the real-build lane's first tests compile for most of an hour cold.
main_timeout_ms=$(( 20 * 60 * 1000 ))
real_timeout_ms=$(( 75 * 60 * 1000 ))
faults_timeout_ms=$(( 75 * 60 * 1000 ))
run() { node --import tsx --test --test-concurrency=1 --test-timeout="$main_timeout_ms" "$@"; }

if [ "${KZ_TEST_LANES:-}" = serial ]; then
  main_timeout_ms=$real_timeout_ms run "${all[@]}"
  exit
fi

# Starts one side lane in the background: its files with a timeout, a CPU priority and a prefix on every line.
lane() {
  local name=$1 timeout=$2 niceness=$3
  shift 3
  [ $# -gt 0 ] || return 0
  ( nice -n "$niceness" node --import tsx --test --test-concurrency=1 --test-timeout="$timeout" "$@" 2>&1 |
      sed -u "s/^/[$name] /"
    exit "${PIPESTATUS[0]}" ) &
  pids+=("$!") names+=("$name")
}

t0=$(date +%s)
echo "tests: ${#main[@]} file(s) in the main lane; ${#side[@]} in the side lane; ${#real[@]} in the real-build lane (nice 10): ${real[*]}; ${#faults[@]} in the faults lane (KZ_FAULTS=1): ${faults[*]}"
pids=() names=()
lane 'real builds' "$real_timeout_ms" 10 "${real[@]}"
lane side "$main_timeout_ms" 0 "${side[@]}"
lane faults "$faults_timeout_ms" 0 "${faults[@]}"
run "${main[@]}"
rc=$?
echo "tests: main lane finished (exit $rc) after $(( $(date +%s) - t0 ))s; waiting for the other lanes"
for i in "${!pids[@]}"; do
  wait "${pids[$i]}"
  lane_rc=$?
  echo "tests: ${names[$i]} lane finished (exit $lane_rc) after $(( $(date +%s) - t0 ))s"
  [ "$lane_rc" = 0 ] || rc=$lane_rc
done
[ "$rc" = 0 ]
