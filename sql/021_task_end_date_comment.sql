-- production.tasks.end_date as zou 1.0.97 keeps it (what the compatibility suite sees the real server do):
-- set when the task is sent for review, kept when it goes on to done; 019's comment said it was cleared.
COMMENT ON COLUMN production.tasks.end_date IS 'When the task was last sent for review (a feedback-request status); kept when it then goes on to done (UTC).';
