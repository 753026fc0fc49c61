-- Rejects of the last run, per stream: how many records failed to transform and one example error.
-- Every stream of the run is listed (0 = clean), so a cron mail shows at a glance what was rejected.
WITH last_run AS (
    SELECT max(id) AS run_id FROM etl.runs WHERE command IN ('sync', 'backfill', 'replay')
)
SELECT sr.source,
       sr.resource,
       sr.status,
       count(r.id)                 AS rejects,
       min(r.error)                AS example_error,
       min(r.source_id)            AS example_source_id
  FROM etl.stream_runs sr
  JOIN last_run l ON sr.run_id = l.run_id
  LEFT JOIN etl.rejects r ON r.run_id = sr.run_id AND r.source = sr.source AND r.resource = sr.resource
 GROUP BY sr.source, sr.resource, sr.status
 ORDER BY rejects DESC, sr.source, sr.resource;
