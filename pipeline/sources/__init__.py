"""Connectors: one module per API kind, each turning (source, resource) into a runner ``Stream``.

A connector module ``pipeline.sources.<kind>`` exposes::

    SPEC: pipeline.connectors.ConnectorSpec                            # resources, defaults, options, …
    def build_stream(source: SourceSettings, resource: str, client: ServiceClient) -> streams.Stream
    def client_options(source: SourceSettings) -> dict[str, Any]     # optional: ServiceClient kwargs
    def main_tables(resource: str) -> tuple[str, ...]                 # what a stream's counts count

``build_stream`` and ``open_client`` below are what the runner is given as its stream and client
factories.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import ModuleType
from typing import Any

from pipeline.connectors import connector_spec
from pipeline.http import ServiceClient
from pipeline.settings import SourceSettings


def connector(kind: str) -> ModuleType:
    """The connector module of a kind: ``pipeline.sources.<kind>`` for the built-in ones, the module
    a registered ``ConnectorSpec`` names for the others (``pipeline.connectors``)."""
    return importlib.import_module(connector_spec(kind).module_name)


def build_stream(source: SourceSettings, resource: str, client: ServiceClient) -> Any:
    """The runner's stream factory: dispatch on the source's kind."""
    return connector(source.kind).build_stream(source, resource, client)


@asynccontextmanager
async def open_client(source: SourceSettings) -> AsyncIterator[ServiceClient]:
    """The runner's client factory: one ServiceClient per source, shared by its streams."""
    module = connector(source.kind)
    options: dict[str, Any] = module.client_options(source) if hasattr(module, "client_options") else {}
    async with ServiceClient(source, **options) as client:
        yield client


def main_tables(kind: str, resource: str) -> tuple[str, ...]:
    """The tables a ``kind``/``resource`` stream's inserted/updated/unchanged count (its connector's
    ``main_tables``; rows written elsewhere are its ``other_rows``)."""
    found: tuple[str, ...] = connector(kind).main_tables(resource)
    return found


def window_refusal(source: SourceSettings) -> str | None:
    """Why a since/until backfill cannot be honoured for ``source`` (its connector's
    ``NO_TIME_WINDOW``), or None when the connector selects records by update time."""
    reason: str | None = getattr(connector(source.kind), "NO_TIME_WINDOW", None)
    return reason
