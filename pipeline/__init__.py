"""Async sync/ETL pipeline: five source APIs into one unified Postgres schema."""

__version__ = "0.1.0"
