"""Type stubs for switchboard: what editors complete and type checkers check."""

from os import PathLike
from typing import Any, Callable, Iterator, Optional, TypeVar, Union

from . import errors as errors
from .errors import (
    ArgumentError as ArgumentError,
    CallbackError as CallbackError,
    ControlError as ControlError,
    EmitError as EmitError,
    LoadError as LoadError,
    ManifestError as ManifestError,
    NatsError as NatsError,
    ShutDownError as ShutDownError,
    SwitchboardError as SwitchboardError,
    TooDeepError as TooDeepError,
    UnknownEventError as UnknownEventError,
)

__version__: str

F = TypeVar("F", bound=Callable[..., Any])

#: What crosses to callbacks and back: None, bool, int (64 bits), float, str, bytes,
#: and lists, tuples and str-keyed dicts of them.
Arg = Any

class Outcome:
    """One callback's outcome."""

    @property
    def plugin(self) -> str:
        """The plugin (or application) whose callback ran."""
    @property
    def callback(self) -> str:
        """The callback's name."""
    @property
    def ok(self) -> bool:
        """Whether it returned a value rather than an error."""
    @property
    def value(self) -> Any:
        """What it returned (None when it failed)."""
    @property
    def error(self) -> Optional[str]:
        """Its error message, or None."""
    @property
    def help(self) -> Optional[str]:
        """What to do about the error, when the callback said."""
    @property
    def kind(self) -> str:
        """"value", or "error", "panic", "skipped", "crashed", "timed_out"."""

class Outcomes:
    """The outcomes of one emit, in dispatch order."""

    def __len__(self) -> int: ...
    def __getitem__(self, index: int) -> Outcome: ...
    def __iter__(self) -> Iterator[Outcome]: ...
    @property
    def event(self) -> str: ...
    @property
    def ok(self) -> bool:
        """Whether every callback succeeded."""
    @property
    def values(self) -> list[Any]:
        """The values of the callbacks that succeeded."""
    @property
    def errors(self) -> list[Outcome]:
        """The outcomes of the callbacks that failed."""
    @property
    def request_id(self) -> int: ...
    @property
    def published(self) -> Optional[dict[str, Any]]:
        """{"id", "stream", "seq", "duplicate"} when the manifest publishes the event
        to NATS instead of dispatching it here; None when it was dispatched."""
    def check(self) -> "Outcomes":
        """Raises CallbackError for the first failed callback; else returns self."""

class Host:
    """A running switchboard host: the manifest's plugins loaded and started."""

    def __init__(
        self, manifest: Union[str, "PathLike[str]"] = "events.toml", *, application: str = "app"
    ) -> None: ...
    def emit(self, event: str, /, **kwargs: Arg) -> Outcomes:
        """Emits `event` with keyword arguments; returns every callback's outcome."""
    def callback(
        self, event: str, *, name: Optional[str] = None, priority: int = 0
    ) -> Callable[[F], F]:
        """Registers the decorated function as a callback for `event`."""
    def unregister(self, name: str) -> bool:
        """Removes this application's callback `name`; whether there was one."""
    def reload(self) -> dict[str, Any]:
        """Reads the manifest again and swaps in its plugins; raises on error (nothing changes)."""
    def plugins(self) -> list[dict[str, Any]]:
        """Every plugin (and the application) with kind, breaker and counts."""
    def callbacks(self, event: Optional[str] = None) -> list[tuple[str, str, str, int]]:
        """(plugin, callback, event, priority) in dispatch order."""
    def events(self) -> dict[str, dict[str, str]]:
        """The declared events and their argument types."""
    def control(self, plugin: str, operation: str, argument: Arg = None) -> Any:
        """Sends a plugin a control operation and returns its answer."""
    def shutdown(self) -> list[tuple[str, str]]:
        """Shuts every plugin down once; returns (plugin, message) failures."""
    def __enter__(self) -> "Host": ...
    def __exit__(self, *exc: object) -> bool: ...
    @property
    def manifest(self) -> str: ...
    @property
    def application(self) -> str: ...
    @property
    def generation(self) -> int: ...
