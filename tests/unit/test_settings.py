"""Config: the public TOML shape, env interpolation, and one clear message per problem."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from pipeline import cli, log
from pipeline.errors import ConfigError
from pipeline.settings import load_settings

GOOD = """
[sources.kitsu]
kind = "kitsu"
base_url = "https://kitsu.app/api/edge"
resources = ["anime", "manga"]
rate = { requests = 4, per_seconds = 1.0 }
max_in_flight = 4
page_size = 20
auth = { kind = "oauth_password", username = "me", password = "${KITSU_PASSWORD}" }
"""

SECRET = "hunter2-very-secret-value"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pipeline.toml"
    path.write_text(text)
    return path


def test_good_config_loads_with_defaults(tmp_path: Path) -> None:
    """A valid file loads; per-kind defaults fill what it leaves out; secrets come from env."""
    settings = load_settings(write(tmp_path, GOOD), env={"KITSU_PASSWORD": SECRET})
    kitsu = settings.sources["kitsu"]
    assert kitsu.kind == "kitsu"
    assert kitsu.resources == ("anime", "manga")
    assert kitsu.rate.per_second == 4.0
    assert kitsu.auth.kind == "oauth_password"
    assert kitsu.auth.password.get_secret_value() == SECRET  # type: ignore[union-attr]
    assert SECRET not in repr(settings)
    assert SECRET not in str(settings)


def test_repo_config_is_valid() -> None:
    """config/pipeline.toml loads on a machine without any secret set (its secret sources are disabled)."""
    settings = load_settings("config/pipeline.toml", env={})
    assert [s.name for s in settings.enabled_sources()] == ["kitsu"]
    assert settings.sources["nekos"].violation_budget == 2
    assert settings.warnings == ()  # nothing deprecated in the shipped config


def test_deprecated_rate_limit_reset_loads_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """rate_limit_reset is ignored (the reset header is read by magnitude): the file still loads, the
    warning names the line and the fix, and check-config prints it."""
    path = write(tmp_path, GOOD + 'rate_limit_reset = "epoch"\n')
    settings = load_settings(path, env={"KITSU_PASSWORD": SECRET})
    (warning,) = settings.warnings
    assert f"{path}: [sources.kitsu].rate_limit_reset = 'epoch' is ignored" in warning
    assert "read by its magnitude" in warning
    assert "remove the line" in warning
    assert not hasattr(settings.sources["kitsu"], "rate_limit_reset")
    monkeypatch.setenv("KITSU_PASSWORD", SECRET)
    code = cli.main(["--config", str(path), "check-config", "--offline"])
    assert code == 0
    assert f"warning: {warning}" in capsys.readouterr().out


BAD_CONFIGS = {
    "unknown kind": (
        '[sources.x]\nkind = "myspace"\nbase_url = "https://a"\n',
        ["[sources.x].kind = 'myspace'", "use one of kitsu"],
    ),
    "missing base_url": ('[sources.k]\nkind = "kitsu"\n', ["[sources.k]: missing 'base_url'"]),
    "negative rate": (
        '[sources.k]\nkind = "kitsu"\nbase_url = "https://a"\nrate = { requests = -4, per_seconds = 1.0 }\n',
        ["[sources.k].rate.requests = -4", "greater than 0"],
    ),
    "unknown key": (
        '[sources.k]\nkind = "kitsu"\nbase_url = "https://a"\npage_sise = 20\n',
        ["unknown key 'page_sise'", "known keys:"],
    ),
    "missing env var": (
        '[sources.n]\nkind = "nekos"\nbase_url = "https://a"\n'
        'auth = { kind = "bearer", token = "${NEKOS_TOKEN_X}" }\n',
        ["${NEKOS_TOKEN_X}", "sources.n.auth.token", "export NEKOS_TOKEN_X"],
    ),
    "bad toml": ('[sources.k\nkind = "kitsu"\n', ["not valid TOML", "fix the syntax"]),
    "wrong type": (
        '[sources.k]\nkind = "kitsu"\nbase_url = "https://a"\nmax_in_flight = "four"\n',
        ["[sources.k].max_in_flight = 'four'", "integer"],
    ),
    "duplicate source": (
        '[sources.k]\nkind = "kitsu"\nbase_url = "https://a"\n[sources.k]\nkind = "nekos"\n',
        ["not valid TOML"],
    ),
    "unknown resource": (
        '[sources.k]\nkind = "kitsu"\nbase_url = "https://a"\nresources = ["animu"]\n',
        ["unknown resource(s) ['animu']", "use some of anime"],
    ),
    "page size above the API maximum": (
        '[sources.k]\nkind = "kitsu"\nbase_url = "https://a"\npage_size = 500\n',
        ["page_size = 500", "maximum 20"],
    ),
    "not a URL": (
        '[sources.k]\nkind = "kitsu"\nbase_url = "kitsu.app"\n',
        ["base_url = 'kitsu.app'", "http"],
    ),
    "bad auth kind": (
        '[sources.k]\nkind = "kitsu"\nbase_url = "https://a"\nauth = { kind = "magic" }\n',
        ["[sources.k].auth", "magic"],
    ),
}


@pytest.mark.parametrize("name", sorted(BAD_CONFIGS))
def test_bad_config_exits_2_with_a_message_naming_file_and_key(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each bad config gives exit 2 and a message with the file, the key and the fix."""
    text, expected = BAD_CONFIGS[name]
    path = write(tmp_path, text)
    code = cli.main(["--config", str(path), "check-config"])
    err = capsys.readouterr().err
    assert code == 2
    assert str(path) in err
    for fragment in expected:
        assert fragment in err, f"{name}: {fragment!r} not in {err!r}"


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    """Several problems in one file are all listed, not only the first."""
    text = (
        '[sources.a]\nkind = "kitsu"\nbase_url = "https://a"\nbogus = 1\n'
        '[sources.b]\nkind = "nekos"\nbase_url = "https://b"\nmax_in_flight = 0\n'
        '[sources.c]\nkind = "zou"\n'
    )
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, text), env={})
    problems = info.value.problems
    assert any("unknown key 'bogus'" in p for p in problems)
    assert any("[sources.b].max_in_flight" in p for p in problems)
    assert any("[sources.c]: missing 'base_url'" in p for p in problems)


def test_missing_config_file_names_the_remedy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A config path that does not exist exits 2 and says how to point at one."""
    code = cli.main(["--config", str(tmp_path / "nope.toml"), "check-config"])
    assert code == 2
    assert "--config PATH" in capsys.readouterr().err


def test_secret_never_in_errors_or_logs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A secret given in a config shows up in no error message and no log line."""
    text = (
        '[sources.n]\nkind = "nekos"\nbase_url = "https://a"\n'
        f'auth = {{ kind = "bearer", token = "{SECRET}" }}\nmax_in_flight = -1\n'
        '[sources.z]\nkind = "zou"\nbase_url = "https://z"\n'
        f'auth = {{ kind = "zou_jwt", email = "a@b", password = 12 }}\n'
    )
    path = write(tmp_path, text)
    assert cli.main(["--config", str(path), "check-config"]) == 2
    out = capsys.readouterr()
    assert SECRET not in out.err + out.out
    buffer = io.StringIO()
    log.configure("debug", json=True, stream=buffer)
    settings = load_settings(write(tmp_path, GOOD), env={"KITSU_PASSWORD": SECRET})
    log.get_logger().info("settings_loaded", settings=settings, note=f"password={SECRET}")
    line = json.loads(buffer.getvalue())
    assert line["event"] == "settings_loaded"
    assert SECRET not in buffer.getvalue()


def test_database_url_env_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """DATABASE_URL overrides [database] url; the URL's password never appears in a repr."""
    path = write(tmp_path, '[database]\nurl = "postgresql://u:pw-secret@h/db"\n' + GOOD)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    settings = load_settings(path, env={"KITSU_PASSWORD": "x"})
    assert settings.database_url() == "postgresql://u:pw-secret@h/db"
    assert "pw-secret" not in repr(settings.database)
    monkeypatch.setenv("DATABASE_URL", "postgresql://other/db")
    assert settings.database_url() == "postgresql://other/db"
