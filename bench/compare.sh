#!/usr/bin/env bash
# Runs the reference workload (event `user_joined`, two string arguments; every callback
# adds both lengths to a counter) with 1, 3 and 10 callbacks in switchboard and its peers,
# in one go on this machine, and prints one table; then start-up and `run` numbers.
#
#   bench/compare.sh            # from anywhere; about two minutes
#
# Needs cargo, a C compiler (gcc), python3 and node. pluggy is installed into bench/.venv if
# missing, and the Python package (python/, built by maturin from PyPI) every run.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "building (release)..." >&2
cargo build --release --workspace --examples --quiet

if ! bench/.venv/bin/python -c 'import pluggy' 2>/dev/null; then
    echo "installing pluggy into bench/.venv..." >&2
    python3 -m venv bench/.venv
    bench/.venv/bin/pip install --quiet pluggy
fi

lines=$(mktemp)
trap 'rm -f "$lines"' EXIT
# The same workload in a C-ABI plugin (tests/c-abi/bench.c), built by the machine's C compiler.
mkdir -p target/release/c-abi
${CC:-gcc} -shared -fPIC -O2 -I plugin-api/include tests/c-abi/bench.c -o target/release/c-abi/libcbench.so
export PROBE_C_LIBRARY="$PWD/target/release/c-abi/libcbench.so"
echo "timing switchboard (Rust and C plugins), raw ABI and Rust function pointers..." >&2
target/release/examples/dispatch_probe 1000000 15 | tee -a "$lines" >&2
PROBE_RMW=1 target/release/examples/dispatch_probe 1000000 15 | tee -a "$lines" >&2
echo "timing the Python loop..." >&2
python3 bench/peers/python_loop.py 200000 9 | tee -a "$lines" >&2
echo "timing pluggy $(bench/.venv/bin/python -c 'import pluggy; print(pluggy.__version__)')..." >&2
bench/.venv/bin/python bench/peers/pluggy_bench.py 30000 9 | tee -a "$lines" >&2
echo "timing the switchboard Python package (host.emit to native and to Python callbacks)..." >&2
bench/.venv/bin/python -m pip install --quiet --force-reinstall --no-deps ./python
bench/.venv/bin/python bench/peers/python_host.py "$PWD/target/release" 100000 9 | tee -a "$lines" >&2
echo "timing Node $(node --version) EventEmitter..." >&2
node bench/peers/node_emitter.js 2000000 15 | tee -a "$lines" >&2

echo
echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores; $(rustc --version)"
echo
python3 bench/table.py < "$lines"
echo
python3 bench/system.py
