-- Zou removes a deleted task's comments and time spent with it, without emitting events for them.
-- Mirror that: when a task is soft-deleted, its comments and time spent are soft-deleted too (and
-- their raw records, so that a replay keeps them retired). They come back if a later full scan
-- sees them again.

CREATE FUNCTION production.retire_task_children() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE production.comments SET deleted_at = NEW.deleted_at
     WHERE task_id = NEW.id AND deleted_at IS NULL;
    UPDATE production.time_spents SET deleted_at = NEW.deleted_at
     WHERE task_id = NEW.id AND deleted_at IS NULL;
    UPDATE raw.records r SET deleted_at = NEW.deleted_at
     WHERE r.source = NEW.source AND r.deleted_at IS NULL
       AND ((r.resource = 'comments' AND r.source_id IN
                (SELECT c.source_id FROM production.comments c WHERE c.task_id = NEW.id))
         OR (r.resource = 'time_spents' AND r.source_id IN
                (SELECT t.source_id FROM production.time_spents t WHERE t.task_id = NEW.id)));
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION production.retire_task_children() IS
    'Soft-deletes the comments and time spent of a task that was just soft-deleted (Zou deletes them silently).';

CREATE TRIGGER tasks_retire_children
    AFTER UPDATE OF deleted_at ON production.tasks
    FOR EACH ROW
    WHEN (OLD.deleted_at IS NULL AND NEW.deleted_at IS NOT NULL)
    EXECUTE FUNCTION production.retire_task_children();
COMMENT ON TRIGGER tasks_retire_children ON production.tasks IS
    'Cascades a task''s soft delete to its comments and time spent.';
