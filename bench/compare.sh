#!/usr/bin/env bash
# Runs benchmarks of this checkout and of another commit side by side, alternating,
# so both see the same machine at the same time:
#
#   bench/compare.sh REV NAME [NAME...]     e.g. bench/compare.sh HEAD~1 firewallApply
#
# REV is built in a temporary git worktree (removed afterwards) that shares this
# checkout's node_modules; ROUNDS (default 3) pairs of runs are made. Each run prints
# its tables under a heading naming the commit. Benchmarks that need root need it here.
set -euo pipefail

if [ $# -lt 2 ]; then
  echo "usage: bench/compare.sh REV NAME [NAME...]" >&2
  exit 2
fi
rev=$1
shift
top=$(git rev-parse --show-toplevel)
cd "$top"
base=$(git rev-parse --verify --quiet "$rev^{commit}") || { echo "compare: $rev is not a commit" >&2; exit 2; }
rounds=${ROUNDS:-3}
[ -d node_modules ] || { echo "compare: run npm ci (or make deps) first" >&2; exit 2; }

tree=$(mktemp -d /tmp/novanet-compare.XXXXXX)
cleanup() {
  git worktree remove --force "$tree" >/dev/null 2>&1 || rm -rf "$tree"
  git worktree prune
}
trap cleanup EXIT
git worktree add --detach --quiet "$tree" "$base"
ln -s "$top/node_modules" "$tree/node_modules"

echo "compare: building this checkout and ${base:0:12}" >&2
npm run --silent build
(cd "$tree" && npm run --silent build)

head_label="this checkout ($(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo '+changes'))"
for round in $(seq 1 "$rounds"); do
  for side in base head; do
    if [ "$side" = base ]; then dir=$tree; label="${base:0:12}"; else dir=$top; label=$head_label; fi
    echo
    echo "### round $round, $label"
    (cd "$dir" && node dist/bench/run.js "$@")
  done
done
