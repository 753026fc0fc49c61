-- The expected total of the last completed full scan, next to the ids it saw (etl.checkpoints.scan_seen),
-- so "did the last scan see everything?" can be answered after the scan's progress is cleared.

ALTER TABLE etl.checkpoints ADD COLUMN scan_expected integer;
COMMENT ON COLUMN etl.checkpoints.scan_expected IS 'Records the source said the last completed scan should see (its total); NULL when the source gives no total. Complete when scan_seen >= scan_expected.';
