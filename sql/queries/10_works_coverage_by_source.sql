-- How well sources cover each other: per kind, works seen by one source only vs by several.
SELECT kind,
       member_sources,
       count(*) AS works
  FROM (SELECT work_id, kind, string_agg(DISTINCT source_kind, '+' ORDER BY source_kind) AS member_sources
          FROM catalog.works GROUP BY work_id, kind) w
 GROUP BY kind, member_sources
 ORDER BY kind, works DESC;
