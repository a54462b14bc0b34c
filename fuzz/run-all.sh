#!/usr/bin/env bash
# Builds every fuzz target, runs each for SECONDS (default 300) from
# seeds/<target> into corpus/<target>, JOBS at a time (default 2, niced), and
# prints one Markdown table row per target for README.md's "Last run" table.
#
#   ./run-all.sh            # 5 minutes each
#   JOBS=1 ./run-all.sh 60  # a quick pass, one at a time
#
# Logs: artifacts/logs/<target>.log; crashing inputs: artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")"

export SECONDS_EACH="${1:-300}"
JOBS="${JOBS:-2}"
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

cargo fuzz build
mkdir -p artifacts/logs

run_one() {
    local target=$1
    mkdir -p "corpus/$target"
    local status=0
    nice cargo fuzz run "$target" "corpus/$target" "seeds/$target" -- \
        -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 -malloc_limit_mb=512 \
        -print_final_stats=1 >"artifacts/logs/$target.log" 2>&1 || status=$?
    echo "$status" >"artifacts/logs/$target.status"
}
export -f run_one

cargo fuzz list | xargs -P "$JOBS" -I{} bash -c 'run_one {}'

stat() { sed -n "s/^stat::$2: *//p" "artifacts/logs/$1.log" | tail -1; }

echo "| target | runs | exec/s | cov | ft | corpus | peak RSS MB | crashes |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for target in $(cargo fuzz list); do
    log="artifacts/logs/$target.log"
    last=$(grep -E '^#[0-9]+' "$log" | tail -1)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9]*[a-zA-Z]*\).*/\1/p' <<<"$last")
    crashes=$(find "artifacts/$target" -type f 2>/dev/null | wc -l)
    status=$(cat "artifacts/logs/$target.status")
    [ "$status" = 0 ] || crashes="$crashes (exit $status)"
    echo "| $target | $(stat "$target" number_of_executed_units) | $(stat "$target" average_exec_per_sec) | $cov | $ft | $corp | $(stat "$target" peak_rss_mb) | $crashes |"
done
