#!/usr/bin/env bash
# Events through NATS JetStream: switchboard publishing (`run` with the manifest's
# `[nats] publish`) and consuming (`serve` with `[nats] consume`, no plugins, so the
# broker path is what is measured; without and with the shared ledger) against plain
# async-nats on the same server (nats/examples/raw_rate.rs), in one run. Consuming
# without the ledger, the raw baseline's consuming, and the raw baseline doing the work
# of switchboard's promise that a completed event does not run again (a set of completed
# ids and an append to a file per event, before the acknowledgement) take turns, ROUNDS
# times (the order reversed every other round), each through a new durable consumer,
# and the ratios are taken within each round before the median is: a shared 2-core
# machine drifts by tens of percent between minutes.
#
#   bench/nats.sh [COUNT] [ROUNDS]   # defaults: 50000 events per measurement, 5 rounds
#
# Needs nats-server (Debian: apt-get install nats-server).
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-50000}
rounds=${2:-5}

cargo build --release --workspace --examples --quiet
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
monitor=$(free_port)
nats-server -js -a 127.0.0.1 -p "$port" -m "$monitor" -sd "$work/store" >"$work/nats.log" 2>&1 &
until curl -sf "http://127.0.0.1:$monitor/healthz" >/dev/null; do sleep 0.1; done
url="nats://127.0.0.1:$port"

target/release/examples/raw_rate "$url" "$count"

cat > "$work/p.toml" <<TOML
[events.user_joined]
args = { name = "string", email = "string" }
[nats]
url = "$url"
stream = "BENCH"
publish = ["user_joined"]
TOML
cat > "$work/c.toml" <<TOML
[events.user_joined]
args = { name = "string", email = "string" }
[nats]
url = "$url"
stream = "BENCH"
consume = ["user_joined"]
consumer = "bench"
TOML
lines() {
    python3 -c "
import sys
for n in range($count):
    print('{\"event\": \"user_joined\", \"args\": {\"name\": \"user%d\", \"email\": \"user%d@example.com\"}, \"id\": \"$1-%d\"}' % (n, n, n))
" > "$work/$1.jsonl"
}
rate() { python3 -c "print(round($1 / ($2 - $3)))"; }
now() { date +%s.%N; }

for workers in 2 64; do
    lines "w$workers"
    start=$(now)
    target/release/switchboard -q -m "$work/p.toml" run --workers "$workers" <"$work/w$workers.jsonl" >/dev/null
    echo "switchboard run --workers $workers: publish $(rate "$count" "$(now)" "$start")/s"
done

# The durable consumer `$1-user_joined` as the server's monitor describes it, as JSON.
consumer_detail() {
    curl -sf "http://127.0.0.1:$monitor/jsz?consumers=1" | python3 -c "
import json, sys
j = json.load(sys.stdin)
for a in j.get('account_details', []):
    for s in a.get('stream_detail', []):
        for c in s.get('consumer_detail', []) or []:
            if c['name'] == '$1-user_joined':
                print(json.dumps(c)); sys.exit()
print('{}')"
}
pending() {
    consumer_detail "$1" | python3 -c "
import json, sys
c = json.load(sys.stdin)
print(c['num_pending'] + c['num_ack_pending'] if c else -1)"
}
# The consuming rate as the server saw it: from the durable consumer's creation (by the
# host, once it is connected; the raw baseline's clock also starts after its consumer is
# created) to its last acknowledgement, so that neither start-up nor this script's polling
# counts.
served_rate() {
    consumer_detail "$1" | python3 -c "
import json, sys
from datetime import datetime
def at(t):
    whole, _, rest = t.rstrip('Z').partition('.')
    return datetime.fromisoformat(whole).timestamp() + float('0.' + (rest or '0'))
c = json.load(sys.stdin)
print(round($2 / (at(c['ack_floor']['last_active']) - at(c['created']))))"
}
# Consumes what the stream holds (2 x COUNT events, from the two publishing runs above)
# through the new durable consumer $1, with `ledger = $2` (without it, each host knows
# only its own completed ids; with it, a claim, a mark and a double ack per event);
# prints events/s.
consume() {
    local name=$1 ledger=$2
    sed -e "s/consumer = \"bench\"/consumer = \"$name\"\nledger = $ledger/" "$work/c.toml" >"$work/$name.toml"
    target/release/switchboard -m "$work/$name.toml" serve --listen 127.0.0.1:0 2>"$work/$name.log" &
    local server=$!
    # Looked at twice a second: each look starts two processes, which would otherwise
    # take the cores from the host and the server being measured.
    until [ "$(pending "$name")" = 0 ]; do sleep 0.5; done
    served_rate "$name" $((2 * count))
    kill -TERM "$server"
    wait "$server" || true
}
# Consumes COUNT events of the raw baseline's stream through the new durable consumer $1
# (with the completed-id journal $2, if given); prints events/s.
raw_consume() {
    target/release/examples/raw_rate "$url" "$count" "$@" | sed -n 's|.*consume \([0-9]*\)/s.*|\1|p'
}
for round in $(seq "$rounds"); do
    echo "round $round of $rounds..." >&2
    if [ $((round % 2)) = 1 ]; then
        raw=$(raw_consume "raw-$round")
        journal=$(raw_consume "raw-journal-$round" "$work/raw-$round.completed")
        ours=$(consume "bench-$round" false)
    else
        ours=$(consume "bench-$round" false)
        journal=$(raw_consume "raw-journal-$round" "$work/raw-$round.completed")
        raw=$(raw_consume "raw-$round")
    fi
    echo "$round $raw $journal $ours"
done > "$work/rounds.txt"
echo "switchboard serve, ledger = true: consume $(consume bench-ledger true)/s"
echo
python3 - "$work/rounds.txt" <<'PY'
import statistics, sys
rounds = [tuple(map(int, line.split())) for line in open(sys.argv[1])]
print("| round | raw async-nats, consume | raw, with the completed-id journal | switchboard serve, consume, ledger = false | / raw | / raw with the journal |")
print("|---|---|---|---|---|---|")
for n, raw, journal, ours in rounds:
    print(f"| {n} | {raw:,}/s | {journal:,}/s | {ours:,}/s | {ours / raw:.2f} | {ours / journal:.2f} |")
median = lambda f: statistics.median(f(*r) for r in rounds)
print()
print(f"medians: raw {median(lambda n, r, j, o: r):,.0f}/s, raw with the journal {median(lambda n, r, j, o: j):,.0f}/s, "
      f"switchboard {median(lambda n, r, j, o: o):,.0f}/s")
print(f"consuming, switchboard / raw async-nats: {median(lambda n, r, j, o: o / r):.2f}; "
      f"/ raw with the journal: {median(lambda n, r, j, o: o / j):.2f}; "
      f"raw with the journal / raw: {median(lambda n, r, j, o: j / r):.2f} (medians of the rounds' ratios)")
PY
