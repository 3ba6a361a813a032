"""The reference workload as the plain Python pattern: a defaultdict(list) of callbacks
and a loop calling each with *args. Each callback adds both lengths to a counter.

Prints one line per callback count:  peer=python callbacks=N ns_per_emit=X
Usage: python3 python_loop.py [emits per sample] [samples]
"""
import statistics
import sys
import time
from collections import defaultdict

EMITS = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
SAMPLES = int(sys.argv[2]) if len(sys.argv) > 2 else 9

total = 0


def make_callback():
    # A distinct function per callback, as separate modules would register.
    def on_user_joined(name, email):
        global total
        total += len(name) + len(email)

    return on_user_joined


def run_callbacks(callbacks, event, *args):
    for callback in callbacks[event]:
        callback(*args)


def main():
    global total
    for n in (1, 3, 10):
        callbacks = defaultdict(list)
        for _ in range(n):
            callbacks["user_joined"].append(make_callback())
        name, email = "Ann", "ann@example.com"
        # Timed inline, as in pluggy_bench.py: a shared helper would add a Python call per
        # emit (60-90 ns) to what is measured.
        for _ in range(EMITS):  # warm up
            run_callbacks(callbacks, "user_joined", name, email)
        times = []
        for _ in range(SAMPLES):
            start = time.perf_counter_ns()
            for _ in range(EMITS):
                run_callbacks(callbacks, "user_joined", name, email)
            times.append((time.perf_counter_ns() - start) / EMITS)
        expected = (SAMPLES + 1) * EMITS * n * (len(name) + len(email))
        assert total == expected, f"callbacks did {total} units of work, expected {expected}"
        total = 0
        print(f"peer=python callbacks={n} ns_per_emit={statistics.median(times):.2f}", flush=True)


main()
