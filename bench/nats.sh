#!/usr/bin/env bash
# Events through NATS JetStream: switchboard publishing (`run` with the manifest's
# `[nats] publish`) and consuming (`serve` with `[nats] consume`, no plugins, so the
# broker path is what is measured; without and with the shared ledger) against plain
# async-nats on the same server (nats/examples/raw_rate.rs), one after the other, in one
# run.
#
#   bench/nats.sh [COUNT]        # default 50000 events per measurement
#
# Needs nats-server (Debian: apt-get install nats-server).
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-50000}

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
# The same stream consumed twice, by two durable consumers: without the shared ledger
# (each host knows only its own completed ids), then with it (a claim, a mark and a
# double ack per event).
for ledger in false true; do
    sed -e "s/consumer = \"bench\"/consumer = \"bench-$ledger\"\nledger = $ledger/" "$work/c.toml" >"$work/c-$ledger.toml"
    target/release/switchboard -m "$work/c-$ledger.toml" serve --listen 127.0.0.1:0 2>"$work/serve-$ledger.log" &
    server=$!
    # Looked at twice a second: each look starts two processes, which would otherwise
    # take the cores from the host and the server being measured.
    until [ "$(pending "bench-$ledger")" = 0 ]; do sleep 0.5; done
    echo "switchboard serve, ledger = $ledger: consume $(served_rate "bench-$ledger" $((2 * count)))/s"
    kill -TERM "$server"; wait "$server" || true
done
