#!/usr/bin/env bash
# Runs one test file many times, optionally under a CPU hog, each run with a time limit, to show whether a
# flaky test still fails or hangs under load.
#
#   scripts/stress-test.sh <test file> [runs=50] [--hog] [--limit S=300] [--minutes M]
#
#   --hog        one busy loop (`node -e 'for(;;){}'`) per core for the whole loop, killed at the end
#   --limit S    a run still going after S seconds counts as a hang; its process group is killed
#   --minutes M  stop starting new runs after M minutes (the runs done so far are reported)
#
# Integration tests spawn dist/main.js: `npm run build` first. Export NATS_AUTOPROF_CACHE as for the tests.
# Each run's output goes to $STRESS_DIR (default a new temp dir); a failed or hung run's log is kept and named.
# Prints one line per run and a summary (runs, passed, failed, hung, min/median/max seconds). Exit 0 only if
# every run passed.
set -u

usage() {
  sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
}

file=""
runs=50
hog=0
limit=300
minutes=0
while [ $# -gt 0 ]; do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --hog) hog=1 ;;
    --limit) limit="$2"; shift ;;
    --minutes) minutes="$2"; shift ;;
    -*) echo "unknown option $1" >&2; usage >&2; exit 2 ;;
    *)
      if [ -z "$file" ]; then file="$1"; else runs="$1"; fi
      ;;
  esac
  shift
done
if [ -z "$file" ] || [ ! -f "$file" ]; then
  echo "no such test file: '$file'" >&2
  usage >&2
  exit 2
fi

root="$(cd "$(dirname "$0")/.." && pwd)"
out="${STRESS_DIR:-$(mktemp -d /tmp/stress-test.XXXXXX)}"
mkdir -p "$out"
hogs=()
cleanup() {
  for p in "${hogs[@]}"; do kill "$p" 2>/dev/null; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cores="$(nproc)"
if [ "$hog" = 1 ]; then
  for _ in $(seq 1 "$cores"); do
    node -e 'for(;;){}' &
    hogs+=("$!")
  done
fi

echo "stress: $file, $runs runs, limit ${limit}s, hog $([ "$hog" = 1 ] && echo "on ($cores busy loops)" || echo off), logs in $out"
start=$(date +%s)
passed=0
failed=0
hung=0
done_runs=0
times=()
for i in $(seq 1 "$runs"); do
  if [ "$minutes" != 0 ] && [ $(( $(date +%s) - start )) -ge $(( minutes * 60 )) ]; then
    echo "stress: time budget of ${minutes} min spent, stopping after $done_runs runs"
    break
  fi
  log="$out/run-$i.log"
  t0=$(date +%s.%N)
  # timeout runs the test in its own process group and signals the whole group (the nats-servers and
  # daemons the test spawned too) when the limit passes; -k: SIGKILL 10 s after the SIGTERM.
  (cd "$root" && timeout -k 10 "$limit" node scripts/run-tests.mjs "$file") >"$log" 2>&1
  rc=$?
  t1=$(date +%s.%N)
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
  times+=("$secs")
  done_runs=$i
  if [ "$rc" = 0 ]; then
    passed=$((passed + 1))
    echo "run $i: pass ${secs}s"
    rm -f "$log"
  elif [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    hung=$((hung + 1))
    echo "run $i: HUNG (killed after ${limit}s), log $log"
  else
    failed=$((failed + 1))
    echo "run $i: FAIL rc=$rc ${secs}s, log $log"
  fi
done
total=$(( $(date +%s) - start ))
stats=$(printf '%s\n' "${times[@]}" | sort -n | awk '{ a[NR] = $1 } END { if (NR) printf "min %.1f s, median %.1f s, max %.1f s", a[1], a[int((NR + 1) / 2)], a[NR] }')
echo "stress: $done_runs runs in ${total}s: $passed passed, $failed failed, $hung hung; $stats; load average $(cut -d' ' -f1-3 /proc/loadavg)"
[ "$passed" = "$done_runs" ]
