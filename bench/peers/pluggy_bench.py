"""The reference workload on pluggy (pytest's hook system): a hookspec
user_joined(name, email) with 1, 3 and 10 hookimpls, each adding both lengths to a counter.

Prints one line per callback count:  peer=pluggy callbacks=N ns_per_emit=X
Usage: python3 pluggy_bench.py [emits per sample] [samples]
"""
import statistics
import sys
import time

import pluggy

EMITS = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
SAMPLES = int(sys.argv[2]) if len(sys.argv) > 2 else 9

hookspec = pluggy.HookspecMarker("bench")
hookimpl = pluggy.HookimplMarker("bench")

total = 0


class Spec:
    @hookspec
    def user_joined(self, name, email):
        """A user signed up."""


class Plugin:
    @hookimpl
    def user_joined(self, name, email):
        global total
        total += len(name) + len(email)


def main():
    global total
    for n in (1, 3, 10):
        manager = pluggy.PluginManager("bench")
        manager.add_hookspecs(Spec)
        for _ in range(n):
            manager.register(Plugin())
        hook = manager.hook.user_joined
        name, email = "Ann", "ann@example.com"
        for _ in range(EMITS):  # warm up
            hook(name=name, email=email)
        times = []
        for _ in range(SAMPLES):
            start = time.perf_counter_ns()
            for _ in range(EMITS):
                hook(name=name, email=email)
            times.append((time.perf_counter_ns() - start) / EMITS)
        expected = (SAMPLES + 1) * EMITS * n * (len(name) + len(email))
        assert total == expected, f"hookimpls did {total} units of work, expected {expected}"
        total = 0
        print(f"peer=pluggy callbacks={n} ns_per_emit={statistics.median(times):.2f}", flush=True)


main()
