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
def signup_folder(tmp_path: pathlib.Path) -> pathlib.Path:
    """The repository's own `events.toml` (the sign-up scenario: database, greeter,
    mailer, notifier), copied into a fresh folder so that its database starts empty."""
    for name in ("database", "greeter", "emails", "notify"):
        _require(name)
    text = (WORKSPACE / "events.toml").read_text()
    text = text.replace('plugin_dir = "target/release"', f"plugin_dir = {str(PLUGINS)!r}")
    (tmp_path / "events.toml").write_text(text)
    return tmp_path
