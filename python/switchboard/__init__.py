"""switchboard for Python: emit events to native plugins (Rust, C, C++, Zig, Go) and to
Python callbacks, through the switchboard plugin host.

    from switchboard import Host

    with Host("events.toml") as host:
        @host.callback("user_joined")
        def audit(name: str, email: str) -> None:
            print("joined", name, email)

        outcomes = host.emit("user_joined", name="Ann", email="ann@example.com")

A Python callback runs in this process, with the GIL, in dispatch order among the
plugins' callbacks; native callbacks run with the GIL released whenever another Python
thread could use it.
"""

from __future__ import annotations

import inspect
import sys
import typing
from typing import Any, Callable, Optional, TypeVar

from . import errors
from ._native import Outcome, Outcomes, __version__
from ._native import Host as _NativeHost
from .errors import (
    ArgumentError,
    CallbackError,
    ControlError,
    EmitError,
    LoadError,
    ManifestError,
    NatsError,
    ShutDownError,
    SwitchboardError,
    TooDeepError,
    UnknownEventError,
)

__all__ = [
    "Host",
    "Outcome",
    "Outcomes",
    "SwitchboardError",
    "ManifestError",
    "LoadError",
    "EmitError",
    "UnknownEventError",
    "ArgumentError",
    "TooDeepError",
    "ShutDownError",
    "ControlError",
    "NatsError",
    "CallbackError",
    "errors",
    "__version__",
]

F = TypeVar("F", bound=Callable[..., Any])

_TYPES = {
    str: "string",
    int: "int",
    float: "float",
    bool: "bool",
    bytes: "bytes",
    bytearray: "bytes",
    list: "list",
    tuple: "list",
    dict: "map",
    Any: "any",
}


def _type_of(annotation: Any, where: str) -> str:
    """The manifest type a parameter annotation reads (``Optional[str]`` is ``string?``)."""
    if annotation is inspect.Parameter.empty:
        return "any"
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    union_types = [typing.Union]
    if sys.version_info >= (3, 10):
        import types

        union_types.append(types.UnionType)
    if origin in union_types:
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1 and len(args) == 2:
            inner = _type_of(rest[0], where)
            return inner if inner.endswith("?") or inner == "any" else inner + "?"
        return "any"
    if origin is not None:
        annotation = origin
    found = _TYPES.get(annotation)
    if found is None:
        raise TypeError(
            f"{where}: annotation {annotation!r} is not a type switchboard hands over; "
            "use str, int, float, bool, bytes, list, tuple, dict, Any or Optional[...] of them"
        )
    return found


def _reads(
    func: Callable[..., Any], event: str
) -> "tuple[Optional[list[tuple[str, str]]], list[str], bool]":
    """What a callable reads, from its signature: ``(argument, type)`` pairs (``None``
    when it takes ``**kwargs``), its parameters that have defaults, and whether they can
    all be given by position."""
    signature = inspect.signature(func)
    try:
        hints = typing.get_type_hints(func)
    except Exception:  # annotations that do not resolve are read as written
        hints = {}
    reads: list[tuple[str, str]] = []
    defaults: list[str] = []
    takes_all = False
    positional = True
    name = getattr(func, "__qualname__", repr(func))
    for parameter in signature.parameters.values():
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            takes_all = True
            continue
        if parameter.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.POSITIONAL_ONLY):
            raise TypeError(
                f"callback {name} for `{event}`: parameter `{parameter.name}` cannot be "
                "given by keyword; callbacks receive the event's arguments by name"
            )
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY:
            positional = False
        kind = _type_of(hints.get(parameter.name, parameter.annotation),
                        f"callback {name}, parameter `{parameter.name}`")
        if parameter.default is not inspect.Parameter.empty:
            defaults.append(parameter.name)
            if not kind.endswith("?") and kind != "any":
                kind += "?"
        reads.append((parameter.name, kind))
    return (None if takes_all else reads), defaults, positional


class Host(_NativeHost):
    """A running switchboard host: the manifest's plugins loaded and started.

    ``Host(manifest="events.toml", *, application="app")``. Use it as a context manager
    (or call ``shutdown()``) so that plugins shut down when you are done. Python
    callbacks are shown and counted under ``application``.
    """

    def __init__(self, manifest: Any = "events.toml", *, application: str = "app") -> None:
        # The host was opened by the native __new__; `emit` becomes a vectorcall function
        # of this host, which reads the caller's keyword arguments in place, where the
        # method would get a new dict of them at every call.
        self.emit = self._emitter()

    def callback(
        self,
        event: str,
        *,
        name: Optional[str] = None,
        priority: int = 0,
    ) -> Callable[[F], F]:
        """Registers the decorated function as a callback for ``event``.

        It is called with the event's arguments it names as keyword arguments (all of
        them, if it takes ``**kwargs``); its annotations are the types it reads, checked
        against the manifest now, as a plugin's are at load. ``name`` defaults to the
        function's name, ``priority`` (higher runs earlier) to 0. What it returns is its
        value in the outcomes; what it raises is its error, and the other callbacks run.
        """

        def register(func: F) -> F:
            reads, defaults, positional = _reads(func, event)
            self._register(
                event, name or func.__name__, priority, reads, defaults, func, positional
            )
            return func

        return register
