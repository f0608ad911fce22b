#!/bin/sh
# tsan_run.sh DIR COMMAND...: runs an integration test of the ThreadSanitizer
# build (SL_TSAN) so that a data race in any daemon it starts fails it.
# Every instrumented child writes its reports to DIR/report.<pid>
# (TSAN_OPTIONS log_path), not to a log the test may discard; after the
# test, any report makes this exit 1 with the reports printed, whatever the
# test's own verdict. DIR is emptied first. TSAN_OPTIONS comes from CTest
# (tests/sl_testing.cmake); run by hand, a default with halt_on_error=1 is used.
set -u
dir=$1
shift
rm -rf "$dir"
mkdir -p "$dir"
TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}:log_path=$dir/report"
export TSAN_OPTIONS
"$@"
rc=$?
found=0
for f in "$dir"/report.*; do
  [ -e "$f" ] || continue
  found=1
  echo "=== ThreadSanitizer report $f ===" >&2
  cat "$f" >&2
done
if [ "$found" = 1 ]; then
  echo "tsan_run.sh: ThreadSanitizer reported races (above); failing the test (its own exit code: $rc)" >&2
  exit 1
fi
exit "$rc"
