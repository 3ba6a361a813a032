"""The exceptions switchboard raises, named after the host's error kinds.

Every one is a ``SwitchboardError`` and carries the host's kind (``"emit.unknown_event"``,
``"load.args_mismatch"``...) as ``.kind``, the same names ``switchboard --format json``
prints. Where a built-in exception means the same thing, the class is one too: an
``ArgumentError`` is a ``TypeError``, an ``UnknownEventError`` a ``LookupError``.
"""

from __future__ import annotations


class SwitchboardError(Exception):
    """Something the host refused or could not do; ``.kind`` says what."""

    def __init__(self, message: str, kind: str = "") -> None:
        super().__init__(message)
        self.kind = kind


class ManifestError(SwitchboardError):
    """``events.toml`` could not be read, parsed or validated (the message names the line)."""


class LoadError(SwitchboardError):
    """A plugin (or a Python callback) does not fit: a library that cannot load, a
    callback for an undeclared event, arguments read with the wrong type."""


class EmitError(SwitchboardError):
    """An emit was refused before any callback ran."""


class UnknownEventError(EmitError, LookupError):
    """The manifest declares no such event (the message suggests the nearest)."""


class ArgumentError(EmitError, TypeError):
    """The arguments do not match the event's declaration: missing, unknown, given
    twice or of the wrong type."""


class TooDeepError(EmitError, RecursionError):
    """Callbacks emitting events nested deeper than the manifest's ``host.max_depth``."""


class ShutDownError(SwitchboardError):
    """The host is shut down (or shutting down) and takes no more events."""


class ControlError(SwitchboardError):
    """A control operation failed: no such plugin, or the plugin refused."""


class NatsError(SwitchboardError):
    """An event the manifest publishes (``[nats] publish``) could not be stored in the
    stream: the server cannot be reached, or did not acknowledge in time."""


class CallbackError(SwitchboardError):
    """Raised by ``Outcomes.check()``: a callback failed."""


_BY_KIND = {
    "emit.unknown_event": UnknownEventError,
    "emit.missing_argument": ArgumentError,
    "emit.unknown_argument": ArgumentError,
    "emit.duplicate_argument": ArgumentError,
    "emit.wrong_type": ArgumentError,
    "emit.wrong_arity": ArgumentError,
    "emit.too_deep": TooDeepError,
    "emit.shut_down": ShutDownError,
    "host.shutting_down": ShutDownError,
    "callback": CallbackError,
    "control": ControlError,
    "nats": NatsError,
}

_BY_PREFIX = {
    "manifest": ManifestError,
    "load": LoadError,
    "emit": EmitError,
}


def _class_of(kind: str) -> type:
    """The exception class for a host error kind (called by the native module)."""
    found = _BY_KIND.get(kind)
    if found is not None:
        return found
    return _BY_PREFIX.get(kind.split(".", 1)[0], SwitchboardError)
