-- Zou: hours logged per person per ISO week (time spent is stored in minutes by the Kitsu UI;
-- see the COMMENT on production.time_spents.duration if your server stores hours).
SELECT ts.source                                         AS studio,
       coalesce(pe.full_name, pe.email, ts.person_source_id) AS person,
       date_trunc('week', ts.date)::date                 AS week,
       round(sum(ts.duration) / 60.0, 1)                 AS hours,
       count(DISTINCT ts.task_id)                        AS tasks
  FROM production.time_spents ts
  LEFT JOIN production.persons pe ON pe.id = ts.person_id
 WHERE ts.deleted_at IS NULL
 GROUP BY 1, 2, 3
 ORDER BY week DESC, hours DESC
 LIMIT 100;
