"""One Dagster run worker: ``python -m tests.dagster.partition_worker CONFIG DB_URL JOB PARTITION``.

Runs one partition of ``JOB`` in-process on the instance of ``$DAGSTER_HOME`` (shared storage and
pools), prints ``{"success": …, "requests": …, "step": [start, end]}``. Two of these side by side
are two run workers.
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
        # When the op held the API: from its step start to its step end, as the instance recorded them.
        logs = instance.all_logs(result.run_id)
        starts = [
            e.timestamp for e in logs if e.dagster_event and e.dagster_event.event_type_value == "STEP_START"
        ]
        ends = [
            e.timestamp
            for e in logs
            if e.dagster_event and e.dagster_event.event_type_value == "STEP_SUCCESS"
        ]
    requests = sum(
        e.materialization.metadata["requests"].value for e in result.get_asset_materialization_events()
    )
    step = [min(starts), max(ends)] if starts and ends else None
    print(json.dumps({"success": result.success, "requests": requests, "step": step}))
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:5]))
