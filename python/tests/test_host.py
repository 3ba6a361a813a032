"""The Python package against the real host and real plugins: emit, decorators, order
among native callbacks, errors and exceptions, bad values, nested emits, threads,
reload, and a Python callback that raises while native ones succeed."""

from __future__ import annotations

import os
import pathlib
import re
import threading
import time
from typing import Any, Optional

import pytest

import switchboard
from switchboard import Host

WORKSPACE = pathlib.Path(__file__).resolve().parents[2]


def summary(outcomes: switchboard.Outcomes) -> list[str]:
    return [
        f"{o.plugin}.{o.callback} = {o.value!r}" if o.ok else f"{o.plugin}.{o.callback} ! {o.error}"
        for o in outcomes
    ]


def test_emit_reaches_native_callbacks_with_keyword_arguments(probe_manifest):
    with Host(probe_manifest) as host:
        outcomes = host.emit("echo", name="Ann", age=41)
        assert len(outcomes) == 1
        [echo] = outcomes
        assert echo.plugin == "p" and echo.callback == "echo" and echo.ok and echo.kind == "value"
        assert echo.value == {"name": "Ann", "age": 41}
        assert outcomes.ok and outcomes.values == [{"name": "Ann", "age": 41}]
        assert outcomes.request_id > 0
        assert "Outcomes('echo', 1 calls, 0 failed)" == repr(outcomes)
        assert repr(echo) == "Outcome(p.echo, ok, value={'name': 'Ann', 'age': 41})"


def test_python_callbacks_run_in_priority_order_among_native_ones(probe_manifest):
    with Host(probe_manifest) as host:
        @host.callback("ping", priority=200)
        def first() -> str:
            return "py.first"

        @host.callback("ping", priority=50, name="middle")
        def some_function() -> str:
            return "py.middle"

        @host.callback("ping")
        def last() -> None:
            return None

        assert summary(host.emit("ping")) == [
            "app.first = 'py.first'",
            "p.ping_urgent = 'p.ping_urgent'",
            "app.middle = 'py.middle'",
            "p.ping = 'p.ping'",
            "p.ping_again = 'p.ping_again'",
            "app.last = None",
        ]
        assert ("app", "middle", "ping", 50) in host.callbacks("ping")
        app = [p for p in host.plugins() if p["name"] == "app"][0]
        assert app["kind"] == "application" and app["calls"] == 3 and app["breaker"] == "closed"


def test_a_python_callback_gets_the_arguments_it_names_with_defaults_kept(probe_manifest):
    seen: list[Any] = []
    with Host(probe_manifest) as host:
        @host.callback("echo")
        def only_name(name: str) -> None:
            seen.append(("only_name", name))

        @host.callback("echo")
        def with_default(name: str, age: int = 7) -> None:
            seen.append(("with_default", name, age))

        @host.callback("echo")
        def optional(age: Optional[int]) -> None:
            seen.append(("optional", age))

        @host.callback("echo")
        def everything(**kwargs: Any) -> None:
            seen.append(("everything", kwargs))

        assert host.emit("echo", name="Ann").ok
        assert seen == [
            ("only_name", "Ann"),
            ("with_default", "Ann", 7),
            ("optional", None),
            ("everything", {"name": "Ann", "age": None}),
        ]


def test_a_python_callback_that_does_not_fit_the_manifest_is_refused(probe_manifest):
    with Host(probe_manifest) as host:
        with pytest.raises(switchboard.LoadError, match="did you mean `ping`") as refused:
            @host.callback("pnig")
            def typo() -> None: ...
        assert refused.value.kind == "load.undeclared_event"
        with pytest.raises(switchboard.LoadError, match="reads `name` as int") as refused:
            @host.callback("echo")
            def wrong(name: int) -> None: ...
        assert refused.value.kind == "load.args_mismatch"
        with pytest.raises(switchboard.LoadError, match="declares name, age"):
            @host.callback("echo")
            def unknown(nmae: str) -> None: ...
        with pytest.raises(switchboard.LoadError, match="optional"):
            @host.callback("echo")
            def required(age: int) -> None: ...
        with pytest.raises(TypeError, match="not a type switchboard hands over"):
            @host.callback("echo")
            def odd(name: set) -> None: ...
        @host.callback("ping")
        def twice() -> None: ...
        with pytest.raises(switchboard.LoadError, match="two callbacks are named `twice`"):
            host.callback("ping", name="twice")(lambda: None)
        # None of the refusals changed anything.
        assert [c for c in host.callbacks() if c[0] == "app"] == [("app", "twice", "ping", 0)]


def test_a_python_callback_that_raises_is_its_own_error_and_native_ones_succeed(probe_manifest):
    with Host(probe_manifest) as host:
        @host.callback("ping", priority=300)
        def audit() -> None:
            raise ValueError("the audit log is full")

        outcomes = host.emit("ping")
        assert not outcomes.ok
        failed = outcomes[0]
        assert failed.plugin == "app" and failed.kind == "error" and not failed.ok
        assert failed.error == "ValueError: the audit log is full"
        assert re.fullmatch(r"raised at .*test_host\.py:\d+ in audit", failed.help), failed.help
        assert [o.ok for o in outcomes] == [False, True, True, True]
        assert outcomes.values == ["p.ping_urgent", "p.ping", "p.ping_again"]
        assert outcomes.errors[0].callback == "audit"
        with pytest.raises(switchboard.CallbackError, match="app.audit failed on `ping`"):
            outcomes.check()
        # A native callback that fails or panics is an outcome too, never an exception.
        assert host.emit("fail")[0].error == "probe p refuses"
        assert host.emit("boom")[0].kind == "panic"


def test_a_python_callback_returning_what_cannot_cross_is_its_error(probe_manifest):
    with Host(probe_manifest) as host:
        @host.callback("ping")
        def returns_a_set() -> Any:
            return {1, 2}

        [*_, bad] = host.emit("ping")
        assert not bad.ok
        assert "TypeError" in bad.error and "returns_a_set" in bad.error and "set" in bad.error


def test_bad_values_and_arguments_raise_before_any_callback_runs(probe_manifest):
    calls: list[str] = []
    with Host(probe_manifest) as host:
        @host.callback("echo")
        def record(name: str) -> None:
            calls.append(name)

        with pytest.raises(switchboard.UnknownEventError, match="did you mean `echo`") as error:
            host.emit("ecoh", name="Ann")
        assert isinstance(error.value, LookupError) and error.value.kind == "emit.unknown_event"
        with pytest.raises(switchboard.ArgumentError, match="needs argument `name`") as error:
            host.emit("echo")
        assert isinstance(error.value, TypeError)
        with pytest.raises(switchboard.ArgumentError, match="has no argument `nmae`"):
            host.emit("echo", nmae="Ann")
        with pytest.raises(switchboard.ArgumentError, match="expected string"):
            host.emit("echo", name=3)
        with pytest.raises(OverflowError, match="argument `age` of event `echo`: the int does not fit in 64 bits"):
            host.emit("echo", name="Ann", age=2**64)
        with pytest.raises(TypeError, match=r'argument `name` of event `echo` at \[1\]\["x"\]: a `object`' ):
            host.emit("echo", name=["ok", {"x": object()}])
        with pytest.raises(TypeError, match="dict keys must be str, not `int`"):
            host.emit("echo", name={1: "one"})
        deep: Any = "leaf"
        for _ in range(200):
            deep = [deep]
        with pytest.raises(ValueError, match="nested deeper than 100 levels"):
            host.emit("echo", name=deep)
        assert calls == []


def test_values_cross_both_ways_unchanged(probe_manifest):
    with Host(probe_manifest) as host:
        returned: list[Any] = []

        @host.callback("echo")
        def back(name: Any, age: Any) -> Any:
            returned.append(name)
            return name

        value = {"s": "é", "i": -(2**63), "f": 1.5, "b": True, "n": None, "bytes": b"\x00\xff",
                 "list": [1, [2, 3]], "tuple": (4, 5), "map": {"k": {"j": False}}}
        # `any`-typed reads accept anything the host carries.
        manifest = probe_manifest.read_text().replace(
            'args = { name = "string", age = "int?" }', 'args = { name = "any", age = "int?" }')
        probe_manifest.write_text(manifest)
        host.reload()
        [echo, mine] = host.emit("echo", name=value)
        expected = dict(value, tuple=[4, 5])
        assert echo.value == {"name": expected, "age": None}
        assert mine.value == expected and returned == [expected]
        assert isinstance(mine.value["bytes"], bytes)


def test_a_python_callback_can_emit_again_nested(probe_manifest):
    with Host(probe_manifest) as host:
        @host.callback("echo")
        def relay(name: str) -> list[Any]:
            return [name] + host.emit("ping").values

        @host.callback("whoami")
        def ids(nest: Optional[bool]) -> Any:
            return "nested" if not nest else host.emit("whoami", nest=False).values

        [_, relayed] = host.emit("echo", name="Ann")
        assert relayed.value == ["Ann", "p.ping_urgent", "p.ping", "p.ping_again"], relayed
        # The nested emit carries the outer event's id: the probe answers the same id
        # in the outer emit and in the one the Python callback nested.
        [outer_probe, outer_app] = host.emit("whoami", nest=True)
        event_id = outer_probe.value[0]
        assert event_id.startswith("sb-")
        assert outer_app.value == [event_id, "nested"]

        @host.callback("cycle")
        def again(n: int) -> None:
            host.emit("cycle", n=n + 1).check()

        outcomes = host.emit("cycle", n=0)
        assert not outcomes.ok
        assert "deeper than max_depth = 8" in summary(outcomes)[-1] or any(
            "max_depth" in (o.error or "") for o in outcomes)


def test_threads_emitting_at_once_get_every_call_counted(probe_manifest):
    threads, per_thread = 8, 500
    counter = {"n": 0}
    lock = threading.Lock()
    with Host(probe_manifest) as host:
        @host.callback("ping")
        def count() -> None:
            with lock:
                counter["n"] += 1

        errors: list[BaseException] = []

        def work() -> None:
            try:
                for _ in range(per_thread):
                    outcomes = host.emit("ping")
                    assert outcomes.ok and len(outcomes) == 4
            except BaseException as error:  # handed to the main thread
                errors.append(error)

        pool = [threading.Thread(target=work) for _ in range(threads)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join(timeout=120)
        assert not any(t.is_alive() for t in pool), "an emitting thread hung"
        assert errors == []
        assert counter["n"] == threads * per_thread
        [p, app] = host.plugins()
        assert p["calls"] == 3 * threads * per_thread
        assert app["calls"] == threads * per_thread


def test_reload_keeps_python_callbacks_and_a_bad_manifest_changes_nothing(probe_manifest):
    with Host(probe_manifest) as host:
        @host.callback("echo")
        def typed(name: str) -> str:
            return "py:" + name

        before = host.generation
        reloaded = host.reload()
        assert reloaded["carried"] == ["p", "app"] and reloaded["generation"] > before
        assert host.emit("echo", name="Ann").values[-1] == "py:Ann"
        text = probe_manifest.read_text()
        probe_manifest.write_text(text.replace('name = "string"', 'name = "int"'))
        with pytest.raises(switchboard.LoadError, match="app.typed"):
            host.reload()
        probe_manifest.write_text("[events\n")
        with pytest.raises(switchboard.ManifestError) as error:
            host.reload()
        assert error.value.kind == "manifest.syntax" and "events.toml" in str(error.value)
        assert host.emit("echo", name="Bo").values[-1] == "py:Bo"
        assert host.unregister("typed") and not host.unregister("typed")
        assert host.emit("echo", name="Cy").values == [{"name": "Cy", "age": None}]


def test_a_long_native_callback_lets_the_programs_other_threads_run(faulty_manifest):
    # A single-threaded program's emits may keep the GIL (no one else could use it); once
    # another thread runs, the next emit, at the same call site, releases it again.
    with Host(faulty_manifest) as host:
        def slow(ms: int) -> switchboard.Outcomes:
            return host.emit("slow", ms=ms)

        for _ in range(5):
            assert slow(1).ok
        # The longest the other thread went without running: held for the whole callback,
        # the GIL would stop it for a second; released, it runs on, handed the GIL back and
        # forth every few milliseconds (CPython's switch interval).
        longest = [0.0]
        stop, started = threading.Event(), threading.Event()

        def spin() -> None:
            last = time.monotonic()
            started.set()
            while not stop.is_set():
                now = time.monotonic()
                longest[0] = max(longest[0], now - last)
                last = now

        spinner = threading.Thread(target=spin)
        spinner.start()
        started.wait(5)
        try:
            assert slow(1000).ok
        finally:
            stop.set()
            spinner.join(5)
        assert longest[0] < 0.5, f"the other thread stood still for {longest[0]:.3f} s"


def test_a_reload_shuts_a_removed_plugin_down_though_call_sites_kept_their_outcomes(
    tmp_path, probe_manifest
):
    # A call site keeps the outcomes it returned last (to refill them), and outcomes name
    # their generation: a reload must not leave the previous one, and the plugins it
    # removed, up behind them.
    log = tmp_path / "shutdown.log"
    base = probe_manifest.read_text()
    removed = f'[[plugins]]\nname = "q"\nlibrary = "probe"\nconfig = {{ label = "q", shutdown_log = {str(log)!r} }}\n'
    probe_manifest.write_text(base + removed)
    with Host(probe_manifest) as host:
        for i in range(3):
            host.emit("echo", name=f"n{i}")
        probe_manifest.write_text(base)
        assert host.reload()["removed"] == ["q"]
        assert log.read_text() == "q\n"
        assert host.emit("echo", name="Ann").values == [{"name": "Ann", "age": None}]


def test_a_host_that_cannot_start_raises_and_a_shut_down_host_refuses(tmp_path, probe_manifest):
    with pytest.raises(switchboard.ManifestError, match="no-such.toml"):
        Host(tmp_path / "no-such.toml")
    (tmp_path / "bad.toml").write_text(
        f"[host]\nplugin_dir = {str(tmp_path)!r}\n[events.ping]\n[[plugins]]\nname = \"ghost\"\n")
    with pytest.raises(switchboard.LoadError, match="ghost") as error:
        Host(tmp_path / "bad.toml")
    assert error.value.kind == "load.missing"
    host = Host(probe_manifest)
    host.shutdown()
    with pytest.raises(switchboard.ShutDownError):
        host.emit("ping")
    with pytest.raises(switchboard.ShutDownError):
        host.callback("ping")(lambda: None)


def test_control_reaches_a_plugin_and_a_refusal_is_a_control_error(probe_manifest):
    with Host(probe_manifest) as host:
        with pytest.raises(switchboard.ControlError, match="no plugin named `q`"):
            host.control("q", "health")
        with pytest.raises(switchboard.ControlError):
            host.control("app", "health")


def test_the_readme_example_runs_as_written(signup_folder, capsys, monkeypatch):
    readme = (WORKSPACE / "README.md").read_text()
    section = readme.split("## From Python", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(signup_folder)
    exec(compile(code, "README.md", "exec"), {"__name__": "readme"})
    printed = capsys.readouterr().out
    assert "audit: Ann <ann@example.com>" in printed
    assert re.search(r"database\.add_user ok", printed), printed
    assert re.search(r"app\.audit ok", printed), printed
    assert list((signup_folder / "outbox").iterdir()), "the mailer wrote no mail"


def test_a_call_site_repeated_keeps_every_check_and_follows_reloads(probe_manifest):
    # The second and later emits of one call site go by the shape the first one learned.
    with Host(probe_manifest) as host:
        for i in range(3):
            assert host.emit("echo", name=f"n{i}").values == [{"name": f"n{i}", "age": None}]
        for i in range(3):
            assert host.emit("echo", name="x", age=i).values == [{"name": "x", "age": i}]
        with pytest.raises(switchboard.ArgumentError, match="argument `name` of event `echo`"):
            for value in ["ok", "ok", 3]:
                host.emit("echo", name=value)
        with pytest.raises(OverflowError, match="argument `age`"):
            for age in [1, 1, 2**70]:
                host.emit("echo", name="x", age=age)

        @host.callback("echo")
        def added(name: str) -> str:
            return "py:" + name

        # A new generation: the shape is learned again, and the new callback runs.
        for _ in range(3):
            assert host.emit("echo", name="Ann").values[-1] == "py:Ann"
        manifest = probe_manifest.read_text().replace('age = "int?"', 'age = "int?", city = "string?"')
        probe_manifest.write_text(manifest)
        host.reload()
        for _ in range(3):
            assert host.emit("echo", name="Bo").values == [{"name": "Bo", "age": None, "city": None}, "py:Bo"]


def test_outcomes_kept_by_the_program_are_never_refilled_by_later_emits(probe_manifest):
    # A call site refills the Outcomes object it returned last once nothing else refers
    # to it; one the program holds (a name, a list, an iterator) must never change.
    with Host(probe_manifest) as host:
        kept = [host.emit("echo", name=f"n{i}", age=i) for i in range(20)]
        assert len({id(o) for o in kept}) == 20
        assert [o.values for o in kept] == [[{"name": f"n{i}", "age": i}] for i in range(20)]
        ids = [o.request_id for o in kept]
        assert len(set(ids)) == 20 and all(i > 0 for i in ids)
        iterator = iter(host.emit("echo", name="held", age=1))
        # Dropped unread: these may share one object, refilled each time.
        seen = [host.emit("echo", name=f"m{i}", age=i).values for i in range(20)]
        assert seen == [[{"name": f"m{i}", "age": i}] for i in range(20)]
        assert next(iterator).value == {"name": "held", "age": 1}
        assert [o.values for o in kept] == [[{"name": f"n{i}", "age": i}] for i in range(20)]
        # Kept once its emit returned: the next emit at the site makes a new object.
        last = None
        for i in range(5):
            previous, last = last, host.emit("echo", name=f"k{i}", age=i)
            assert previous is None or previous.values == [{"name": f"k{i - 1}", "age": i - 1}]
            assert last.values == [{"name": f"k{i}", "age": i}]
        # From other threads at the same call site, each with its own outcomes.
        results: dict[int, list[Any]] = {}

        def emit_many(thread: int) -> None:
            results[thread] = [host.emit("echo", name=f"t{thread}", age=i).values for i in range(200)]

        threads = [threading.Thread(target=emit_many, args=(t,)) for t in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for t in range(4):
            assert results[t] == [[{"name": f"t{t}", "age": i}] for i in range(200)]


def test_every_way_of_calling_emit_gives_the_same_outcomes_and_checks(probe_manifest):
    # host.emit is a vectorcall function that reads the caller's keywords in place; the
    # class's method takes a dict. `**arguments` makes a new tuple of names per call.
    from switchboard._native import Host as NativeHost

    with Host(probe_manifest) as host:
        expected = [{"name": "Ann", "age": 3}]
        arguments = {"name": "Ann", "age": 3}
        for _ in range(3):
            assert host.emit("echo", name="Ann", age=3).values == expected
            assert host.emit("echo", age=3, name="Ann").values == expected
            assert host.emit("echo", age=None, name="Ann").values == [{"name": "Ann", "age": None}]
            assert host.emit("echo", **arguments).values == expected
            assert host.emit("echo", **dict(arguments)).values == expected
            assert NativeHost.emit(host, "echo", name="Ann", age=3).values == expected
        with pytest.raises(TypeError, match="by keyword"):
            host.emit("echo", "Ann")
        with pytest.raises(TypeError, match="by keyword"):
            host.emit()
        with pytest.raises(TypeError, match="event's name must be a str, not `int`"):
            host.emit(3, name="Ann")
        # A str that is not valid text, at a call site whose shape is known by now.
        raised = []
        for name in ["a", "b", "\ud800"]:
            try:
                host.emit("echo", name=name)
            except ValueError as error:
                raised.append((name, str(error)))
        assert len(raised) == 1 and raised[0][0] == "\ud800", raised
        assert "argument `name` of event `echo`" in raised[0][1] and "lone surrogate" in raised[0][1]
        # Nothing was left half-raised: the next emit answers.
        assert host.emit("echo", name="é").values == [{"name": "é", "age": None}]
        # The function keeps the host's state alive on its own.
        emit = host.emit
    assert emit.__name__ == "emit" and "keyword" in emit.__doc__
    with pytest.raises(switchboard.ShutDownError):
        emit("echo", name="Ann")


def test_a_python_callback_gets_the_callers_own_str_objects_back(probe_manifest):
    # Once a call site's shape is known, its str arguments are read in place, and a
    # Python callback is handed the very objects (no copy), equal to what a copy holds.
    with Host(probe_manifest) as host:
        seen: list[Any] = []

        @host.callback("echo")
        def keep(name: str) -> None:
            seen.append(name)

        texts = ["".join(["An", "n", str(i)]) for i in range(3)] + ["".join(["é", "ü"])]
        for text in texts:
            host.emit("echo", name=text)
        assert seen == texts
        assert all(a is b for a, b in zip(seen[1:], texts[1:]))
        # A value built by a plugin (echo's map) is a new object with the same text.
        [echo, _] = host.emit("echo", name=texts[0])
        assert echo.value["name"] == texts[0]


def test_python_callbacks_of_every_width_get_their_arguments_in_order(probe_manifest):
    # Up to four arguments are passed from the stack, more through a tuple; both ways
    # give each parameter its argument, and a raise is that callback's error.
    with probe_manifest.open("a") as manifest:
        manifest.write('[events.wide]\nargs = { a = "int", b = "int", c = "int", d = "int", e = "int", f = "string?" }\n')
    with Host(probe_manifest) as host:
        @host.callback("wide")
        def none() -> str:
            return "none"

        @host.callback("wide")
        def one(e: int) -> list:
            return [e]

        @host.callback("wide")
        def four(d: int, a: int, c: int, b: int) -> list:
            return [a, b, c, d]

        @host.callback("wide")
        def five(a: int, b: int, c: int, d: int, e: int) -> list:
            return [a, b, c, d, e]

        @host.callback("wide")
        def six(f: Optional[str], e: int, d: int, c: int, b: int, a: int) -> list:
            return [a, b, c, d, e, f]

        @host.callback("wide")
        def raises(a: int, b: int) -> None:
            raise KeyError(f"{a}-{b}")

        for _ in range(3):  # by name, then by the learned shape
            outcomes = host.emit("wide", a=1, b=2, c=3, d=4, e=5)
            assert outcomes.values == ["none", [5], [1, 2, 3, 4], [1, 2, 3, 4, 5], [1, 2, 3, 4, 5, None]]
            [failed] = outcomes.errors
            assert failed.callback == "raises" and "KeyError" in failed.error and "1-2" in failed.error
        assert host.emit("wide", a=1, b=2, c=3, d=4, e=5, f="x").values[-1] == [1, 2, 3, 4, 5, "x"]


def test_a_shut_down_host_lets_go_of_callbacks_that_refer_back_to_it(probe_manifest):
    # A callback that closes over its host (to emit again) and the host refer to each
    # other through the host's Rust half, which Python's collector cannot see: the host
    # lets go of its callbacks when it shuts down, so both can be collected.
    import gc
    import weakref

    def run() -> "weakref.ref[Any]":
        with Host(probe_manifest) as host:
            @host.callback("echo")
            def again(name: str) -> Any:
                return host.emit("ping").values if name == "again" else None

            nested = host.emit("echo", name="again").values[-1]
            assert nested and isinstance(nested, list), nested
            return weakref.ref(again)

    callback = run()
    gc.collect()
    assert callback() is None, "the shut-down host still holds its Python callback"


def test_an_event_the_manifest_publishes_goes_to_nats_not_to_the_plugins(probe_manifest, nats_url):
    text = probe_manifest.read_text()
    probe_manifest.write_text(
        text.replace("max_depth = 8\n", f'max_depth = 8\n[nats]\nurl = "{nats_url}"\npublish = ["echo"]\n', 1))
    with Host(probe_manifest) as host:
        first = host.emit("echo", name="Ann", age=41)
        second = host.emit("echo", name="Bo")
        assert len(first) == 0 and first.ok
        assert first.published["stream"] == "SWITCHBOARD" and not first.published["duplicate"]
        assert second.published["seq"] == first.published["seq"] + 1
        assert first.published["id"] != second.published["id"]
        # Checked before publishing, as a dispatch is.
        with pytest.raises(switchboard.ArgumentError, match="expected string"):
            host.emit("echo", name=3)
        # Not dispatched here; events it does not publish still are.
        assert host.emit("ping").ok
        assert [p["calls"] for p in host.plugins()] == [3]
        assert host.emit("ping").published is None


def test_a_publish_to_a_server_that_is_gone_raises_nats_error(probe_manifest):
    text = probe_manifest.read_text()
    dead = "nats://127.0.0.1:1"
    probe_manifest.write_text(text.replace(
        "max_depth = 8\n", f'max_depth = 8\n[nats]\nurl = "{dead}"\npublish = ["echo"]\npublish_timeout_ms = 500\n', 1))
    with Host(probe_manifest) as host:
        with pytest.raises(switchboard.NatsError, match="127.0.0.1:1") as error:
            host.emit("echo", name="Ann")
        assert error.value.kind == "nats"
