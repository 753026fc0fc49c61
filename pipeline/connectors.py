"""One declaration per API kind: what the engine knows about a connector, read from the connector.

Each connector module (``pipeline.sources.<kind>``) exports ``SPEC = ConnectorSpec(...)``: its
resources (in default order), per-kind source defaults, the API's page-size maximum, the options it
accepts with their types and bounds, the streams that load after others, and whether its backfills
are time windows. Settings validation, the orchestrator's stream graph and the sandbox's config
writer read these specs; nothing else keeps a per-kind table.

The built-in kinds are found by module name. Another connector (a plugin, a test's toy API) plugs
in with ``register_connector(spec)``: its module provides ``build_stream`` (and optionally
``client_options``, ``main_tables``, ``NO_TIME_WINDOW``) like the built-in ones, its transforms
register with ``pipeline.transform.register`` and its tables with ``pipeline.tables.register``.

This module imports nothing of the engine, so ``pipeline.settings`` can read specs without a cycle;
a built-in spec is loaded (its connector module imported) the first time it is asked for.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

BUILTIN_KINDS = ("kitsu", "anilist", "anilist_v1", "zou", "nekos")  # modules of pipeline.sources

OptionType = type | tuple[type, ...]
OptionCheck = Callable[[Any], "str | None"]  # why a value (of the right type) would break a run


@dataclass(frozen=True, slots=True)
class ConnectorSpec:
    """What the engine needs to know about one API kind before any request is made."""

    kind: str
    resources: tuple[str, ...]  # every resource it can sync; also the default list, in this order
    defaults: Mapping[str, Any]  # source keys' per-kind defaults (rate, max_in_flight, page_size, ...)
    max_page_size: int  # the API's largest page: a larger page_size is a config error
    module: str = ""  # where build_stream lives (default: pipeline.sources.<kind>)
    options: Mapping[str, OptionType] = field(default_factory=dict)  # connector keys + their types
    option_ranges: Mapping[str, tuple[int | None, int | None]] = field(default_factory=dict)
    option_checks: Mapping[str, OptionCheck] = field(default_factory=dict)
    # Streams of one source that must load after others (their rows point at the parents').
    stream_deps: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    windowed: bool = False  # a since/until backfill selects records by update time

    @property
    def module_name(self) -> str:
        return self.module or f"pipeline.sources.{self.kind}"

    def option_problem(self, key: str, value: Any) -> str | None:
        """Why an option's value (its type is already right) would break a run, or None."""
        check = self.option_checks.get(key)
        if check is not None:
            return check(value)
        low, high = self.option_ranges.get(key, (None, None))
        if isinstance(value, int) and low is not None and value < low:
            return f"is below {low}; use a value of at least {low}" + (f" and at most {high}" if high else "")
        if isinstance(value, int) and high is not None and value > high:
            return f"is above {high}; use a value of at most {high}"
        return None


_REGISTERED: dict[str, ConnectorSpec] = {}


def register_connector(spec: ConnectorSpec) -> None:
    """Make a connector kind known (a plugin's or a test's; built-in kinds need no registration)."""
    _REGISTERED[spec.kind] = spec


def unregister_connector(kind: str) -> None:
    _REGISTERED.pop(kind, None)


def kinds() -> tuple[str, ...]:
    """Every kind a config may name: the built-in ones, then the registered ones."""
    return (*BUILTIN_KINDS, *(k for k in _REGISTERED if k not in BUILTIN_KINDS))


def connector_spec(kind: str) -> ConnectorSpec:
    """The declaration of ``kind``; KeyError for a kind no one declared."""
    found = _REGISTERED.get(kind)
    if found is not None:
        return found
    if kind not in BUILTIN_KINDS:
        raise KeyError(f"unknown connector kind {kind!r}; known: {', '.join(kinds())}")
    spec = importlib.import_module(f"pipeline.sources.{kind}").SPEC
    if not isinstance(spec, ConnectorSpec) or spec.kind != kind:
        raise TypeError(f"pipeline.sources.{kind}.SPEC must be the ConnectorSpec of kind {kind!r}")
    _REGISTERED[kind] = spec
    return spec


__all__ = [
    "BUILTIN_KINDS",
    "ConnectorSpec",
    "connector_spec",
    "kinds",
    "register_connector",
    "unregister_connector",
]
