"""Reads `peer=P callbacks=N ns_per_emit=X` lines (from compare.sh) and prints the tables:
ns per emit for every peer, and each peer's ratio to switchboard's pre-resolved path; and
`peer=P callbacks=N paired_ratio=R` lines (the C plugin timed in turn with the Rust one) as
a table of their own."""
import re
import sys

PEERS = [
    ("python", "Python loop"),
    ("python-host", "Python host.emit, native callbacks"),
    ("python-host-py", "Python host.emit, Python callbacks"),
    ("pluggy", "pluggy"),
    ("node", "Node EventEmitter"),
]


def table(results, title, base, columns):
    present = [(key, name) for key, name in columns if any(k[0] == key for k in results)]
    if base not in dict(present):
        return
    header = ["callbacks"] + [name for _, name in present]
    print(title)
    print()
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for n in sorted({k[1] for k in results}):
        ours = results.get((base, n))
        row = [str(n)]
        for key, _ in present:
            ns = results.get((key, n))
            if ns is None:
                row.append("-")
            elif key == base or ours is None:
                row.append(f"**{ns:,.1f}**" if key == base else f"{ns:,.1f}")
            else:
                row.append(f"{ns:,.1f} ({ns / ours:.2f}x)")
        print("| " + " | ".join(row) + " |")
    print()


def main():
    results = {}
    paired = {}
    for line in sys.stdin:
        match = re.fullmatch(r"peer=(\S+) callbacks=(\d+) ns_per_emit=([\d.]+)\s*", line)
        if match:
            peer, n, ns = match.groups()
            results[(peer, int(n))] = float(ns)
        match = re.fullmatch(r"peer=(\S+) callbacks=(\d+) paired_ratio=([\d.]+)\s*", line)
        if match:
            peer, n, ratio = match.groups()
            paired[(peer, int(n))] = float(ratio)

    table(
        results,
        "ns per emit of user_joined (median; (Nx) = that column / switchboard)",
        "switchboard",
        [
            ("switchboard", "switchboard"),
            ("switchboard-c", "C plugin"),
            ("switchboard-by-name", "switchboard by name"),
            ("raw-abi", "raw ABI"),
            ("rust-fn-pointer", "Rust fn pointer"),
        ]
        + PEERS,
    )
    table(
        results,
        "the same with `fetch_add` in every Rust callback (exact under concurrent calls)",
        "switchboard-rmw",
        [
            ("switchboard-rmw", "switchboard"),
            ("switchboard-c-rmw", "C plugin"),
            ("switchboard-by-name-rmw", "switchboard by name"),
            ("raw-abi-rmw", "raw ABI"),
            ("rust-fn-pointer-rmw", "Rust fn pointer"),
        ]
        + PEERS,
    )
    table(
        results,
        "from Python: ns per emit ((Nx) = that column / the Python loop)",
        "python",
        [
            ("python", "Python loop"),
            ("python-host", "host.emit, native callbacks"),
            ("python-host-py", "host.emit, Python callbacks"),
            ("pluggy", "pluggy"),
        ],
    )

    paired_table(paired)


def paired_table(paired):
    """The C plugin's time over the Rust SDK's, batch by batch (the two timed in turn)."""
    peers = sorted({peer for peer, _ in paired})
    if not peers:
        return
    print("C plugin / Rust plugin, timed in turn batch by batch (median of the batch ratios)")
    print()
    print("| callbacks | " + " | ".join(peers) + " |")
    print("|---|" + "|".join("---" for _ in peers) + "|")
    for n in sorted({n for _, n in paired}):
        row = [f"{paired[(p, n)]:.2f}x" if (p, n) in paired else "-" for p in peers]
        print(f"| {n} | " + " | ".join(row) + " |")
    print()


main()
