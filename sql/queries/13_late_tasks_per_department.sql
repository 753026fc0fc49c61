-- Zou: late tasks per department of each project (every configured studio): tasks done after
-- their due date, open tasks already past it, and how late the done ones were on average. A task's
-- department is its task type's; types without one are listed under a NULL department.
SELECT p.source                        AS studio,
       p.name                          AS project,
       d.name                          AS department,
       count(*)                        AS tasks,
       count(*) FILTER (WHERE s.is_done AND t.done_date > t.due_date)               AS done_late,
       count(*) FILTER (WHERE NOT coalesce(s.is_done, false) AND t.due_date < now()) AS open_overdue,
       round((avg(extract(epoch FROM t.done_date - t.due_date) / 86400)
              FILTER (WHERE s.is_done AND t.done_date > t.due_date))::numeric, 1)   AS avg_days_late
  FROM production.tasks t
  JOIN production.projects p ON p.id = t.project_id
  JOIN production.task_types tt ON tt.id = t.task_type_id
  LEFT JOIN production.departments d ON d.id = tt.department_id AND d.deleted_at IS NULL
  LEFT JOIN production.task_statuses s ON s.id = t.task_status_id
 WHERE t.deleted_at IS NULL AND p.deleted_at IS NULL AND t.due_date IS NOT NULL
 GROUP BY p.source, p.name, d.name
 ORDER BY p.source, p.name, done_late DESC, open_overdue DESC, d.name NULLS LAST;
