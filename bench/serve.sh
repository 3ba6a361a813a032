#!/usr/bin/env bash
# `switchboard serve` with the reference workload (`user_joined` to three `bench`
# plugins) against an axum hello-world server on the same machine, same load generator
# (wrk), same concurrency, one after the other; prints requests/s and p50/p99 latency.
#
#   bench/serve.sh [SECONDS] [CONNECTIONS]     # defaults: 10 s, 64 connections
#
# Needs wrk (Debian: apt-get install wrk).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
connections=${2:-64}

cargo build --release --workspace --examples --quiet
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

cat > "$work/events.toml" <<TOML
[host]
plugin_dir = "$PWD/target/release"

[serve]
queue = 4096

[events.user_joined]
args = { name = "string", email = "string" }
[events.user_lookup]
args = { email = "string" }
result = "first"
[events.bench_total]
[events.bench_allocations]

[[plugins]]
name = "bench1"
library = "bench"
config = { rmw = true }
[[plugins]]
name = "bench2"
library = "bench"
config = { rmw = true }
[[plugins]]
name = "bench3"
library = "bench"
config = { rmw = true, answers = true }
TOML
cat > "$work/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"name": "Ann", "email": "ann@example.com"}'
wrk.headers["Content-Type"] = "application/json"
LUA

measure() {
    local name=$1 url=$2
    wrk -t2 -c"$connections" -d"${seconds}s" --latency -s "$work/post.lua" "$url" > "$work/$name.txt"
    local rps p50 p99 errors
    rps=$(awk '/Requests\/sec/ {print $2}' "$work/$name.txt")
    p50=$(awk '$1 == "50%" {print $2}' "$work/$name.txt")
    p99=$(awk '$1 == "99%" {print $2}' "$work/$name.txt")
    errors=$(awk '/Non-2xx/ {print $5}' "$work/$name.txt")
    echo "$name $rps $p50 $p99 ${errors:-0}"
}

target/release/switchboard --quiet --manifest "$work/events.toml" serve --listen 127.0.0.1:18610 &
target/release/examples/hello_world 127.0.0.1:18611 2>/dev/null &
sleep 1
{
    measure hello_world http://127.0.0.1:18611/events/user_joined
    measure serve http://127.0.0.1:18610/events/user_joined
} > "$work/results.txt"

echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores; wrk -t2 -c$connections -d${seconds}s"
echo
echo "| server | requests/s | p50 | p99 | non-2xx |"
echo "|---|---|---|---|---|"
while read -r name rps p50 p99 errors; do
    echo "| $name | $rps | $p50 | $p99 | $errors |"
done < "$work/results.txt"
python3 - "$work/results.txt" <<'PY'
import sys
rows = {l.split()[0]: float(l.split()[1]) for l in open(sys.argv[1])}
print(f"\nserve / hello_world: {rows['serve'] / rows['hello_world']:.2f} of the requests per second")
PY
