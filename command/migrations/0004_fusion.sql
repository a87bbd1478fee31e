-- Fusion: where open incidents are, so a signal finds its candidates by grid cell
-- (command/fusion.py) through an index instead of reading every incident.
ALTER TABLE incidents
    ADD COLUMN category text,
    ADD COLUMN lat double precision,
    ADD COLUMN lon double precision,
    ADD COLUMN cell text,
    ADD COLUMN last_signal_at timestamptz;
CREATE INDEX incidents_open_cell_idx ON incidents (cell) WHERE is_open;
