-- Units' tracks (AVL): every position a unit reported, kept for ECC_TRACK_RETENTION and
-- then deleted by the service in batches (command/tracks.py). Not events: positions are
-- best effort, latest wins on the bus; this is the record playback draws units from.
-- (unit_id, at) is the key, so a position delivered twice is stored once.
CREATE TABLE unit_positions (
    unit_id     text NOT NULL,
    at          timestamptz NOT NULL,
    lat         double precision NOT NULL,
    lon         double precision NOT NULL,
    heading     double precision,
    speed_mps   double precision,
    PRIMARY KEY (unit_id, at)
);
-- pruning by time, and a period's tracks for playback
CREATE INDEX unit_positions_at ON unit_positions (at);
