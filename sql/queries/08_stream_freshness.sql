-- Freshness of every stream: when it last succeeded and whether its data is older than 48 hours
-- (stale streams first). Feed this to your alerting.
SELECT source,
       resource,
       max(finished_at) FILTER (WHERE status = 'succeeded')                       AS last_success,
       round(extract(epoch FROM now() - max(finished_at) FILTER (WHERE status = 'succeeded')) / 3600, 1)
                                                                                   AS age_hours,
       coalesce(max(finished_at) FILTER (WHERE status = 'succeeded') < now() - interval '48 hours',
                true)                                                              AS stale
  FROM etl.stream_runs
 WHERE mode <> 'replay'
 GROUP BY source, resource
 ORDER BY stale DESC, age_hours DESC NULLS FIRST, source, resource;
