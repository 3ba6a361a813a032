"""Fixtures: manifests in a temporary folder that load the real plugins built by cargo
(`cargo build --release --workspace`, which the README's test command runs first)."""

from __future__ import annotations

import pathlib

import pytest

WORKSPACE = pathlib.Path(__file__).resolve().parents[2]
PLUGINS = WORKSPACE / "target" / "release"

# The probe fixture's events (tests/integration/util.rs, PROBE_EVENTS).
PROBE_EVENTS = """
[events.ping]
[events.ask]
result = "first"
[events.fail]
[events.boom]
[events.echo]
args = { name = "string", age = "int?" }
[events.nest]
[events.cycle]
args = { n = "int" }
[events.config]
[events.whoami]
args = { nest = "bool?" }
"""


# The faulty fixture's events, as the Rust tests declare them.
FAULTY_EVENTS = (WORKSPACE / "tests" / "fixtures" / "faulty" / "events.toml").read_text()


def _require(name: str) -> None:
    if not (PLUGINS / f"lib{name}.so").exists():
        pytest.fail(f"{PLUGINS}/lib{name}.so is not built; run `cargo build --release --workspace`")


@pytest.fixture
def probe_manifest(tmp_path: pathlib.Path) -> pathlib.Path:
    """A manifest with the probe's events and one probe plugin, `p`."""
    _require("probe")
    path = tmp_path / "events.toml"
    path.write_text(
        f"[host]\nplugin_dir = {str(PLUGINS)!r}\nmax_depth = 8\n{PROBE_EVENTS}\n"
        '[[plugins]]\nname = "p"\nlibrary = "probe"\nconfig = { label = "p" }\n'
    )
    return path


@pytest.fixture
def faulty_manifest(tmp_path: pathlib.Path) -> pathlib.Path:
    """A manifest with the faulty fixture's events and one faulty plugin, `f` (a plugin
    that misbehaves on purpose: see tests/fixtures/faulty)."""
    _require("faulty")
    path = tmp_path / "events.toml"
    path.write_text(
        f"[host]\nplugin_dir = {str(PLUGINS)!r}\n{FAULTY_EVENTS}\n"
        '[[plugins]]\nname = "f"\nlibrary = "faulty"\n'
    )
    return path


@pytest.fixture
def signup_folder(tmp_path: pathlib.Path) -> pathlib.Path:
    """The repository's own `events.toml` (the sign-up scenario: database, greeter,
    mailer, notifier), copied into a fresh folder so that its database starts empty."""
    for name in ("database", "greeter", "emails", "notify"):
        _require(name)
    text = (WORKSPACE / "events.toml").read_text()
    text = text.replace('plugin_dir = "target/release"', f"plugin_dir = {str(PLUGINS)!r}")
    (tmp_path / "events.toml").write_text(text)
    return tmp_path


@pytest.fixture
def nats_url(tmp_path: pathlib.Path):
    """A real `nats-server -js` on a free loopback port (Debian's package; scripts/setup
    installs it), stopped after the test."""
    import os
    import shutil
    import socket
    import subprocess
    import time

    server = shutil.which("nats-server")
    if server is None:
        if os.environ.get("CI"):
            pytest.fail("CI must have nats-server")
        pytest.skip("no nats-server on this machine (apt-get install nats-server)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    child = subprocess.Popen(
        [server, "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(tmp_path / "nats")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("nats-server did not start within 10 s")
                time.sleep(0.05)
        yield f"nats://127.0.0.1:{port}"
    finally:
        child.kill()
        child.wait(timeout=10)
