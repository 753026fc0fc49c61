-- Zou: open and done tasks per status for each project (every configured studio).
SELECT p.source                        AS studio,
       p.name                          AS project,
       s.name                          AS status,
       s.is_done,
       count(*)                        AS tasks
  FROM production.tasks t
  JOIN production.projects p ON p.id = t.project_id
  LEFT JOIN production.task_statuses s ON s.id = t.task_status_id
 WHERE t.deleted_at IS NULL AND p.deleted_at IS NULL
 GROUP BY p.source, p.name, s.name, s.is_done, s.priority
 ORDER BY p.source, p.name, s.priority NULLS LAST, s.name;
