"""The orchestrator-neutral pieces: pool names per rate group and the stream dependency graph."""

from __future__ import annotations

from pipeline.orchestrate import rate_group, stream_deps, tables_written, windowed
from pipeline.settings import parse_settings


def settings(body: str) -> object:
    import tomllib
    from pathlib import Path

    return parse_settings(tomllib.loads(body), Path("t.toml"), {})


def source(kind: str, url: str, resources: list[str] | None = None, name: str = "s"):  # type: ignore[no-untyped-def]
    res = f"resources = {resources!r}\n" if resources is not None else ""
    s = settings(f'[sources.{name}]\nkind = "{kind}"\nbase_url = "{url}"\n{res}')
    return s.sources[name]  # type: ignore[attr-defined]


def test_pool_is_the_rate_group_in_pool_safe_characters() -> None:
    assert rate_group(source("kitsu", "https://kitsu.app/api/edge", name="kitsu")) == "kitsu.app_anonymous"
    assert rate_group(source("zou", "http://127.0.0.1:8703/api", name="b")) == "127.0.0.1_8703_anonymous"
    # Two sources on one host with one identity share the budget, so they share the pool.
    a, b = source("zou", "http://127.0.0.1:8703/api", name="a"), source("zou", "http://127.0.0.1:8703/api")
    assert rate_group(a) == rate_group(b)


def test_dependencies_follow_the_configured_order() -> None:
    zou = source("zou", "http://z/api")
    assert stream_deps(zou, "tasks") == ("entities", "task_types", "task_statuses")
    assert stream_deps(zou, "projects") == ()
    # A parent configured after its child is no dependency: the runner loads in configured order.
    reordered = source("zou", "http://z/api", ["tasks", "entities", "projects"])
    assert stream_deps(reordered, "tasks") == ()
    assert stream_deps(reordered, "entities") == ()
    kitsu = source("kitsu", "https://k/api/edge")
    assert stream_deps(kitsu, "episodes") == ("anime",)


def test_tables_written_and_windowed_kinds() -> None:
    kitsu = source("kitsu", "https://k/api/edge")
    assert tables_written(kitsu, "episodes") == ("catalog.episodes", "raw.records")
    assert tables_written(source("zou", "http://z/api"), "tasks")[0] == "production.tasks"
    assert windowed(source("anilist", "https://graphql.anilist.co"))
    assert not windowed(kitsu)
