#!/usr/bin/env bash
# `switchboard serve` with the reference workload (`user_joined` to three `bench`
# plugins) against two axum servers on the same machine, same load generator (wrk), same
# concurrency: a hello world (serve/examples/hello_world.rs), and one that does the same
# work on its HTTP threads with nothing of switchboard in the way
# (serve/examples/same_work.rs: parse, check, three counters, the same answer). The
# servers take turns, ROUNDS times (the order reversed every other round), and each
# ratio is taken within one round before the median is: a shared 2-core machine drifts by
# tens of percent between minutes, and rounds keep each ratio's sides close in time.
# Prints each round's requests/s and the servers' CPU per request (user and system time
# over the round, from /proc, divided by the requests wrk counted), then the medians.
#
#   bench/serve.sh [SECONDS] [CONNECTIONS] [ROUNDS]   # defaults: 5 s, 64 connections, 5 rounds
#   BEFORE=/path/to/an/older/switchboard bench/serve.sh  # a third server in each round
#
# Needs wrk (Debian: apt-get install wrk).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-5}
connections=${2:-64}
rounds=${3:-5}

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

# The CPU time (user, system) process $1 has used so far, in clock ticks.
cpu_ticks() { awk '{print $14, $15}' "/proc/$1/stat"; }

# One round of wrk against server NAME (process PID) at URL: a line
# "NAME RPS P50 P99 NON2XX CPU_US_PER_REQUEST".
measure() {
    local name=$1 pid=$2 url=$3
    local user0 system0 user1 system1
    read -r user0 system0 < <(cpu_ticks "$pid")
    wrk -t2 -c"$connections" -d"${seconds}s" --latency -s "$work/post.lua" "$url" > "$work/$name.txt"
    read -r user1 system1 < <(cpu_ticks "$pid")
    local rps p50 p99 errors requests
    rps=$(awk '/Requests\/sec/ {print $2}' "$work/$name.txt")
    p50=$(awk '$1 == "50%" {print $2}' "$work/$name.txt")
    p99=$(awk '$1 == "99%" {print $2}' "$work/$name.txt")
    errors=$(awk '/Non-2xx/ {print $5}' "$work/$name.txt")
    requests=$(awk '/requests in/ {print $1}' "$work/$name.txt")
    local ticks
    ticks=$(getconf CLK_TCK)
    echo "$name $rps $p50 $p99 ${errors:-0} $(python3 -c "print(round(($user1 - $user0 + $system1 - $system0) / $ticks * 1e6 / $requests, 1))")"
}

target/release/switchboard --quiet --manifest "$work/events.toml" serve --listen 127.0.0.1:18610 &
serve_pid=$!
target/release/examples/hello_world 127.0.0.1:18611 2>/dev/null &
hello_pid=$!
target/release/examples/same_work 127.0.0.1:18613 2>/dev/null &
same_pid=$!
if [ -n "${BEFORE:-}" ]; then
    "$BEFORE" --quiet --manifest "$work/events.toml" serve --listen 127.0.0.1:18612 &
    before_pid=$!
fi
sleep 1
# Warm both (connections, allocator, caches) before the first round counts.
wrk -t2 -c"$connections" -d1s -s "$work/post.lua" http://127.0.0.1:18611/events/user_joined >/dev/null
wrk -t2 -c"$connections" -d1s -s "$work/post.lua" http://127.0.0.1:18613/events/user_joined >/dev/null
wrk -t2 -c"$connections" -d1s -s "$work/post.lua" http://127.0.0.1:18610/events/user_joined >/dev/null
[ -z "${BEFORE:-}" ] || wrk -t2 -c"$connections" -d1s -s "$work/post.lua" http://127.0.0.1:18612/events/user_joined >/dev/null
for round in $(seq "$rounds"); do
    echo "round $round of $rounds..." >&2
    echo "round $round"
    # Every other round in the reverse order, so that neither side always goes first.
    sides=(hello_world same_work before serve)
    [ $((round % 2)) = 1 ] || sides=(serve before same_work hello_world)
    for side in "${sides[@]}"; do
        case $side in
            hello_world) measure hello_world "$hello_pid" http://127.0.0.1:18611/events/user_joined ;;
            same_work) measure same_work "$same_pid" http://127.0.0.1:18613/events/user_joined ;;
            before) [ -z "${BEFORE:-}" ] || measure before "$before_pid" http://127.0.0.1:18612/events/user_joined ;;
            serve) measure serve "$serve_pid" http://127.0.0.1:18610/events/user_joined ;;
        esac
    done
done > "$work/results.txt"

echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores; wrk -t2 -c$connections -d${seconds}s, $rounds rounds in turn"
echo
python3 - "$work/results.txt" <<'PY'
import statistics, sys
rounds = []
for line in open(sys.argv[1]):
    words = line.split()
    if words[0] == "round":
        rounds.append({})
    else:
        name, rps, p50, p99, errors, cpu = words
        rounds[-1][name] = dict(rps=float(rps), p50=p50, p99=p99, errors=int(errors), cpu=float(cpu))
print("| round | hello world | same work, no switchboard | serve | serve p50 / p99 | serve non-2xx | serve / hello world | serve / same work |")
print("|---|---|---|---|---|---|---|---|")
side = lambda r: f"{r['rps']:,.0f}/s, {r['cpu']} us"
for n, r in enumerate(rounds, 1):
    h, w, s = r["hello_world"], r["same_work"], r["serve"]
    print(f"| {n} | {side(h)} | {side(w)} | {side(s)} | {s['p50']} / {s['p99']} | {s['errors']} | {s['rps'] / h['rps']:.2f} | {s['rps'] / w['rps']:.2f} |")
median = lambda f: statistics.median(f(r) for r in rounds)
print()
print("Each cell: requests/s, and the server's CPU per request.")
print()
for name in ("hello_world", "same_work", "serve"):
    print(f"median {name}: {median(lambda r: r[name]['rps']):,.0f} requests/s at {median(lambda r: r[name]['cpu'])} us of CPU each")
print(f"serve / hello_world: {median(lambda r: r['serve']['rps'] / r['hello_world']['rps']):.2f} of the requests per second (median of the rounds' ratios)")
print(f"serve / same_work: {median(lambda r: r['serve']['rps'] / r['same_work']['rps']):.2f} of the requests per second, "
      f"{median(lambda r: r['serve']['cpu'] / r['same_work']['cpu']):.2f} of the CPU per request")
print(f"same_work / hello_world: {median(lambda r: r['same_work']['rps'] / r['hello_world']['rps']):.2f} of the requests per second")
if "before" in rounds[0]:
    print()
    print("| round | before: requests/s, CPU per request | before / hello world | serve / before |")
    print("|---|---|---|---|")
    for n, r in enumerate(rounds, 1):
        h, b, s = r["hello_world"], r["before"], r["serve"]
        print(f"| {n} | {b['rps']:,.0f}, {b['cpu']} us | {b['rps'] / h['rps']:.2f} | {s['rps'] / b['rps']:.2f} |")
    print()
    print(f"before / hello_world: {median(lambda r: r['before']['rps'] / r['hello_world']['rps']):.2f}; "
          f"serve / before: {median(lambda r: r['serve']['rps'] / r['before']['rps']):.2f} of the requests per second, "
          f"{median(lambda r: r['serve']['cpu'] / r['before']['cpu']):.2f} of the CPU per request (medians of the rounds' ratios)")
PY
