"""Config values that used to validate and then break a run are refused at load, all at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline import cli
from pipeline.errors import ConfigError
from pipeline.settings import load_settings

KITSU = '[sources.k]\nkind = "kitsu"\nbase_url = "https://kitsu.test/api/edge"\n'

CASES = {
    "URL without a host": (
        '[sources.k]\nkind = "kitsu"\nbase_url = "http://"\n',
        ["[sources.k].base_url = 'http://'", "has no host", "https://host"],
    ),
    "URL with a bad port": (
        '[sources.k]\nkind = "kitsu"\nbase_url = "http://h:x/api"\n',
        ["[sources.k].base_url", "not a valid URL"],
    ),
    "infinite period": (
        KITSU + "rate = { requests = 4, per_seconds = inf }\n",
        ["rate.per_seconds = inf", "finite"],
    ),
    "nan period": (
        KITSU + "rate = { requests = 4, per_seconds = nan }\n",
        ["rate.per_seconds = nan", "finite"],
    ),
    "zero period": (
        KITSU + "rate = { requests = 4, per_seconds = 0 }\n",
        ["rate.per_seconds = 0", "above 0"],
    ),
    "negative period": (
        KITSU + "rate = { requests = 4, per_seconds = -2.5 }\n",
        ["per_seconds = -2.5", "above 0"],
    ),
    "infinite timeout": (KITSU + "timeout_seconds = inf\n", ["[sources.k].timeout_seconds = inf", "finite"]),
    "infinite backoff": (KITSU + "backoff_max_seconds = inf\n", ["backoff_max_seconds = inf", "finite"]),
    "nan safety margin": (KITSU + "safety_margin_seconds = nan\n", ["safety_margin_seconds = nan", "finite"]),
    "infinite rescan minutes": (KITSU + "min_rescan_minutes = inf\n", ["min_rescan_minutes = inf", "finite"]),
    "backoff max below base": (
        KITSU + "backoff_base_seconds = 10.0\nbackoff_max_seconds = 1.0\n",
        ["backoff_max_seconds = 1.0", "below backoff_base_seconds"],
    ),
    "nan reject share": (
        "[pipeline]\nmax_reject_share = nan\n" + KITSU,
        ["pipeline.max_reject_share = nan", "finite"],
    ),
    "resource listed twice": (
        KITSU + 'resources = ["anime", "manga", "anime"]\n',
        ["[sources.k].resources", "anime more than once", "list each once"],
    ),
    "no resource": (KITSU + "resources = []\n", ["[sources.k].resources", "is empty"]),
    "partition years not years": (
        '[sources.a]\nkind = "anilist"\nbase_url = "https://graphql.test"\npartition_years = ["x"]\n',
        ["[sources.a].partition_years = ['x']", "not years", "[2000, 2010, 2020]"],
    ),
    "partition years out of order": (
        '[sources.a]\nkind = "anilist"\nbase_url = "https://graphql.test"\npartition_years = [2010, 2000]\n',
        ["[sources.a].partition_years", "ascending"],
    ),
    "first year far off": (
        '[sources.a]\nkind = "anilist"\nbase_url = "https://graphql.test"\nfirst_year = 20\n',
        ["[sources.a].first_year = 20", "at least 1900"],
    ),
    "negative zou event limit": (
        '[sources.z]\nkind = "zou"\nbase_url = "https://zou.test/api"\nevent_limit = -5\n',
        ["[sources.z].event_limit = -5", "at least 1"],
    ),
    "zou event limit above the server's cap": (
        '[sources.z]\nkind = "zou"\nbase_url = "https://zou.test/api"\nevent_limit = 5000\n',
        ["[sources.z].event_limit = 5000", "at most 1000", "1,000"],
    ),
    "zero fetch batch": (
        '[sources.z]\nkind = "zou"\nbase_url = "https://zou.test/api"\nfetch_batch = 0\n',
        ["[sources.z].fetch_batch = 0", "at least 1"],
    ),
    "negative overlap": (
        '[sources.z]\nkind = "zou"\nbase_url = "https://zou.test/api"\nevents_overlap_seconds = -1\n',
        ["[sources.z].events_overlap_seconds = -1", "at least 0"],
    ),
    "zero parallel pages": (KITSU + "parallel_pages = 0\n", ["[sources.k].parallel_pages = 0", "at least 1"]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_value_that_breaks_a_run_is_refused_with_file_key_and_fix(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text, expected = CASES[name]
    path = tmp_path / "pipeline.toml"
    path.write_text(text)
    assert cli.main(["--config", str(path), "check-config"]) == 2
    err = capsys.readouterr().err
    assert str(path) in err
    for fragment in expected:
        assert fragment in err, f"{name}: {fragment!r} not in {err!r}"


def test_every_broken_value_is_reported_in_one_go(tmp_path: Path) -> None:
    """One load lists every problem of the file, across sources and sections."""
    path = tmp_path / "pipeline.toml"
    path.write_text(
        "[pipeline]\nmax_reject_share = nan\n"
        '[sources.k]\nkind = "kitsu"\nbase_url = "http://"\ntimeout_seconds = inf\n'
        'resources = ["anime", "anime"]\nrate = { requests = 4, per_seconds = inf }\n'
        '[sources.a]\nkind = "anilist"\nbase_url = "https://g.test"\npartition_years = ["x"]\n'
        '[sources.z]\nkind = "zou"\nbase_url = "https://z.test/api"\nevent_limit = -5\n'
    )
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    keys = [
        "max_reject_share",
        "[sources.k].base_url",
        "[sources.k].timeout_seconds",
        "[sources.k].resources",
        "[sources.k].rate.per_seconds",
        "[sources.a].partition_years",
        "[sources.z].event_limit",
    ]
    for key in keys:
        assert any(key in p for p in info.value.problems), (key, info.value.problems)
    assert len(info.value.problems) == len(keys)


def test_sensible_values_still_load(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.toml"
    path.write_text(
        '[sources.a]\nkind = "anilist"\nbase_url = "https://graphql.test:8443/"\n'
        "partition_years = [2000, 2010]\n"
        "rate = { requests = 30, per_seconds = 60.0 }\ntimeout_seconds = 12.5\n"
        '[sources.z]\nkind = "zou"\nbase_url = "http://127.0.0.1:8703/api"\nevent_limit = 1000\n'
    )
    settings = load_settings(path, env={})
    assert settings.sources["a"].base_url == "https://graphql.test:8443"
    assert settings.sources["z"].options["event_limit"] == 1000
