"""structlog set-up in one place: JSON lines when stderr is not a terminal, the console otherwise.

``run_id``, ``source`` and ``stream`` are bound per task through contextvars
(``bind_stream``), so every line a stream's task writes carries them.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any

import orjson
import structlog

from pipeline.redact import redact_value

LEVELS = ("debug", "info", "warning", "error")


def _redact_strings(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Last line of defence: mask every known secret and credential-shaped text in every value."""
    for key, value in event.items():
        if isinstance(value, str | dict | list | tuple):
            event[key] = redact_value(value)
        elif isinstance(value, BaseException):
            event[key] = redact_value(f"{type(value).__name__}: {value}")
    return event


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is *now*: under live progress bars rich swaps in a proxy
    that prints each line above the bars instead of over them."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()


def _dumps(obj: Any, **_: Any) -> str:
    return orjson.dumps(obj, default=str).decode()


def configure(level: str = "info", *, json: bool | None = None, stream: Any = None) -> None:
    """Configure structlog for the process; ``json=None`` picks JSON unless stderr is a terminal."""
    out: Any = stream if stream is not None else _CurrentStderr()
    use_json = (not out.isatty()) if json is None else json
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_dumps)
        if use_json
        else structlog.dev.ConsoleRenderer(colors=out.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _redact_strings,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name) if name else structlog.get_logger()


@contextmanager
def bind_stream(**values: Any) -> Iterator[None]:
    """Bind ``run_id``/``source``/``stream`` (or any keys) for the current task, then restore."""
    tokens = structlog.contextvars.bind_contextvars(**values)
    try:
        yield
    finally:
        structlog.contextvars.reset_contextvars(**tokens)
