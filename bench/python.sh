#!/usr/bin/env bash
# The Python columns of compare.sh, measured in alternating rounds: the Python loop,
# host.emit (to native and to Python callbacks) and pluggy take turns, ROUNDS times, and
# each ratio is taken within one round before the median is. A shared 2-core machine
# drifts by tens of percent between the minutes of one compare.sh run; rounds keep each
# ratio's two sides close in time.
#
#   bench/python.sh [ROUNDS]        # default 5; about 40 s a round
#
# Needs what compare.sh does; run compare.sh once first (it builds the workspace and puts
# pluggy and the package into bench/.venv).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
[ -x bench/.venv/bin/python ] && bench/.venv/bin/python -c 'import pluggy, switchboard' 2>/dev/null \
  || { echo "bench/python.sh: run bench/compare.sh first (it sets up bench/.venv)" >&2; exit 2; }
lines=$(mktemp)
trap 'rm -f "$lines"' EXIT
for round in $(seq "$rounds"); do
  echo "round $round of $rounds..." >&2
  echo "round" >> "$lines"
  python3 bench/peers/python_loop.py 100000 5 >> "$lines"
  bench/.venv/bin/python bench/peers/python_host.py "$PWD/target/release" 50000 5 >> "$lines"
  bench/.venv/bin/python bench/peers/pluggy_bench.py 20000 5 >> "$lines"
done
python3 - "$lines" <<'PY'
import re, statistics, sys
rounds = []
for line in open(sys.argv[1]):
    if line.strip() == "round":
        rounds.append({})
    elif m := re.match(r"peer=(\S+) callbacks=(\d+) ns_per_emit=([\d.]+)", line):
        rounds[-1][(m[1], int(m[2]))] = float(m[3])
def median(f):
    return statistics.median(f(r) for r in rounds)
print(f"from Python, {len(rounds)} alternating rounds: median ns per emit, and the median of each round's ratio")
print()
print("| callbacks | Python loop | host.emit, native callbacks | host.emit, Python callbacks | pluggy | pluggy / host.emit native |")
print("|---|---|---|---|---|---|")
for n in (1, 3, 10):
    row = [str(n), f"{median(lambda r: r[('python', n)]):,.1f}"]
    for peer in ("python-host", "python-host-py", "pluggy"):
        ns = median(lambda r: r[(peer, n)])
        ratio = median(lambda r: r[(peer, n)] / r[("python", n)])
        row.append(f"{ns:,.1f} ({ratio:.2f}x)")
    row.append(f"{median(lambda r: r[('pluggy', n)] / r[('python-host', n)]):.1f}x")
    print("| " + " | ".join(row) + " |")
PY
