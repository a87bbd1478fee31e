-- Desk alerts (workflows/alert.py): what the supervisors must see that belongs to no
-- incident. The projection of the alert:<id> streams, written in each command's own
-- transaction like incidents and units; `ecc rebuild` rebuilds it from the events.
CREATE TABLE desk_alerts (
    alert_id    text PRIMARY KEY,
    kind        text NOT NULL,
    is_open     boolean NOT NULL,
    version     integer NOT NULL,
    last_seq    bigint NOT NULL,
    view        jsonb NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX desk_alerts_open_idx ON desk_alerts (last_seq) WHERE is_open;

-- A retraction held for a supervisor's confirmation is audited as such.
ALTER TABLE audit_log DROP CONSTRAINT audit_log_outcome_check;
ALTER TABLE audit_log ADD CONSTRAINT audit_log_outcome_check
    CHECK (outcome IN ('ok', 'forbidden', 'rejected', 'invalid', 'not_found', 'error',
                       'unauthorized', 'busy', 'held'));

-- A retraction naming a CAP alert (its origin) reaches the alert's signals: found by
-- the origin recorded on their evidence, not by a prefix of their ids.
CREATE INDEX events_signal_origin_idx ON events ((data->>'source'), (data->>'origin'))
    WHERE type = 'signal.received' AND data->>'origin' IS NOT NULL;
