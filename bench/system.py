"""Start-up and end-to-end numbers of the real binary: loading 1 and 100 plugins (distinct
copies of the bench library) with `switchboard check`, and `switchboard run` over 200,000
JSON lines with 1 and 2 workers. Wall time is the median of several runs; peak RSS is the
child's own maximum resident set (from wait4).

Usage: python3 bench/system.py  (from the workspace root, after a release build)
"""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RELEASE = os.path.join(ROOT, "target", "release")
BINARY = os.path.join(RELEASE, "switchboard")
LIBRARY = os.path.join(RELEASE, "libbench.so")
EVENTS = """
[events.user_joined]
args = { name = "string", email = "string" }
[events.user_lookup]
args = { email = "string" }
result = "first"
[events.bench_total]
[events.bench_allocations]
"""


def measure(args, cwd, stdin_path=None):
    """Runs the binary once; returns (seconds, peak RSS in MiB)."""
    stdin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL
    start = time.perf_counter()
    child = subprocess.Popen([BINARY, "--quiet", *args], cwd=cwd, stdin=stdin,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - start
    if stdin_path:
        stdin.close()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"switchboard {' '.join(args)} failed in {cwd}")
    return elapsed, usage.ru_maxrss / 1024


def median_of(runs, args, cwd, stdin_path=None):
    results = [measure(args, cwd, stdin_path) for _ in range(runs)]
    return statistics.median(r[0] for r in results), max(r[1] for r in results)


def plugins_folder(n):
    folder = tempfile.mkdtemp(prefix=f"switchboard-{n}-")
    os.mkdir(os.path.join(folder, "lib"))
    manifest = '[host]\nplugin_dir = "lib"\n' + EVENTS
    for i in range(1, n + 1):
        shutil.copy(LIBRARY, os.path.join(folder, "lib", f"libcopy{i}.so"))
        manifest += f'[[plugins]]\nname = "copy{i}"\n'
    with open(os.path.join(folder, "events.toml"), "w") as f:
        f.write(manifest)
    return folder


def main():
    print("| start-up (`switchboard check`) | wall time | peak RSS |")
    print("|---|---|---|")
    for n in (1, 100):
        folder = plugins_folder(n)
        seconds, rss = median_of(15, ["check"], folder)
        print(f"| {n} plugin{'s' if n > 1 else ''} | {seconds * 1000:.1f} ms | {rss:.1f} MiB |")
        shutil.rmtree(folder)

    folder = plugins_folder(3)
    lines = os.path.join(folder, "events.jsonl")
    count = 200_000
    with open(lines, "w") as f:
        for i in range(count):
            f.write('{"event":"user_joined","args":{"name":"user%d","email":"user%d@example.com"}}\n' % (i, i))
    print()
    print(f"| `switchboard run`, {count:,} events, 3 callbacks | events per second | peak RSS |")
    print("|---|---|---|")
    for workers in (1, 2):
        seconds, rss = median_of(5, ["run", "--workers", str(workers)], folder, lines)
        print(f"| {workers} worker{'s' if workers > 1 else ''} | {count / seconds:,.0f} | {rss:.1f} MiB |")
    shutil.rmtree(folder)


main()
