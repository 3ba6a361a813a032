"""The reference workload through the switchboard Python package: `host.emit` from Python
to 1, 3 and 10 native `bench` plugins (peer `python-host`), and to as many Python
callbacks registered with `@host.callback` (peer `python-host-py`, whose callbacks do the
Python loop's work).

Prints one line per callback count:  peer=P callbacks=N ns_per_emit=X
Usage: python python_host.py PLUGIN_DIR [emits per sample] [samples]
"""
import os
import statistics
import sys
import tempfile
import time

from switchboard import Host

PLUGINS = sys.argv[1]
EMITS = int(sys.argv[2]) if len(sys.argv) > 2 else 200_000
SAMPLES = int(sys.argv[3]) if len(sys.argv) > 3 else 9

EVENTS = """
[events.user_joined]
args = { name = "string", email = "string" }
[events.user_lookup]
args = { email = "string" }
result = "first"
[events.bench_total]
[events.bench_allocations]
"""

total = 0


def manifest(folder, plugins):
    text = f"[host]\nplugin_dir = {PLUGINS!r}\n{EVENTS}\n"
    for i in range(1, plugins + 1):
        text += f'[[plugins]]\nname = "bench{i}"\nlibrary = "bench"\n\n'
    path = os.path.join(folder, f"events-{plugins}.toml")
    with open(path, "w") as file:
        file.write(text)
    return path


def timed(host, name, email):
    emit = host.emit
    for _ in range(EMITS):  # warm up
        emit("user_joined", name=name, email=email)
    times = []
    for _ in range(SAMPLES):
        start = time.perf_counter_ns()
        for _ in range(EMITS):
            emit("user_joined", name=name, email=email)
        times.append((time.perf_counter_ns() - start) / EMITS)
    return statistics.median(times)


def main():
    global total
    name, email = "Ann", "ann@example.com"
    work = (SAMPLES + 1) * EMITS * (len(name) + len(email))
    with tempfile.TemporaryDirectory() as folder:
        for n in (1, 3, 10):
            with Host(manifest(folder, n)) as host:
                ns = timed(host, name, email)
                done = sum(o.value for o in host.emit("bench_total"))
                assert done == n * work, f"the plugins did {done} units of work, expected {n * work}"
            print(f"peer=python-host callbacks={n} ns_per_emit={ns:.2f}", flush=True)
        for n in (1, 3, 10):
            with Host(manifest(folder, 0)) as host:
                for i in range(n):
                    def on_user_joined(name: str, email: str) -> None:
                        global total
                        total += len(name) + len(email)

                    host.callback("user_joined", name=f"py{i}")(on_user_joined)
                ns = timed(host, name, email)
            assert total == n * work, f"the callbacks did {total} units of work, expected {n * work}"
            total = 0
            print(f"peer=python-host-py callbacks={n} ns_per_emit={ns:.2f}", flush=True)


main()
