"""``defs`` for Dagster: ``dagster dev -m pipeline.dagster``, ``dagster asset materialize``.

Built from ``$PIPELINE_CONFIG`` (else ``config/pipeline.toml``) and ``DATABASE_URL`` (else
``[database] url``, else the embedded server) when Dagster loads the module; see
``pipeline.dagster_assets`` for what it holds and docs/OPERATIONS.md for running it.
"""

from __future__ import annotations

from pipeline.dagster_assets import build_defs

defs = build_defs()
