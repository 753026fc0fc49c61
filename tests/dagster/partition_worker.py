"""One Dagster run worker: ``python -m tests.dagster.partition_worker CONFIG DB_URL JOB PARTITION``.

Runs one partition of ``JOB`` in-process on the instance of ``$DAGSTER_HOME`` (shared storage and
pools), prints ``{"success": …, "requests": …}``. Two of these side by side are two run workers.
"""

from __future__ import annotations

import json
import sys

import dagster as dg

from pipeline.dagster_assets import build_defs
from pipeline.settings import load_settings


def main(config: str, db_url: str, job: str, partition: str) -> int:
    defs = build_defs(load_settings(config), db_url)
    with dg.DagsterInstance.get() as instance:
        result = defs.resolve_job_def(job).execute_in_process(
            instance=instance, partition_key=partition, raise_on_error=False
        )
    requests = sum(
        e.materialization.metadata["requests"].value for e in result.get_asset_materialization_events()
    )
    print(json.dumps({"success": result.success, "requests": requests}))
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:5]))
