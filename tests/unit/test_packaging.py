"""The package ships everything it reads: every subpackage listed, the migrations and queries as
``pipeline.sql`` resources (the top-level ``sql/`` folder is their source)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from pipeline import db

ROOT = Path(__file__).resolve().parents[2]


def test_every_subpackage_and_the_sql_folder_are_in_the_wheel() -> None:
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    on_disk = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "pipeline").rglob("__init__.py")}
    assert set(tool["packages"]) == on_disk | {"pipeline.sql"}
    assert tool["package-dir"] == {"pipeline.sql": "sql"}
    assert set(tool["package-data"]["pipeline.sql"]) == {"*.sql", "queries/*.sql"}


def test_migrations_and_queries_are_read_as_package_resources() -> None:
    assert [m.name for m in db.discover()] == sorted(p.name for p in (ROOT / "sql").glob("*.sql"))
    queries = sorted(p.name for p in db.QUERIES_DIR.iterdir() if p.name.endswith(".sql"))
    assert queries == sorted(p.name for p in (ROOT / "sql" / "queries").glob("*.sql"))
    assert queries


def test_an_installed_package_keeps_its_data_outside_site_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PIPELINE_DATA_DIR", raising=False)
    monkeypatch.setattr(db, "ROOT", Path("/usr/lib/python3.11/site-packages"))
    monkeypatch.setenv("XDG_DATA_HOME", "/var/lib/etl")
    assert db.default_data_dir() == Path("/var/lib/etl/pipeline")
    monkeypatch.setattr(db, "ROOT", ROOT)
    assert db.default_data_dir() == ROOT / ".data"
    monkeypatch.setenv("PIPELINE_DATA_DIR", "/srv/pg")
    assert db.default_data_dir() == Path("/srv/pg")
