-- Workflows: units on the live picture, and durable timers.

CREATE TABLE units (
    unit_id     text PRIMARY KEY,
    agency      text NOT NULL,
    status      text NOT NULL,
    version     integer NOT NULL,
    last_seq    bigint NOT NULL,
    view        jsonb NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Timers the deciders scheduled and have not cancelled or fired. The scheduler
-- claims due rows with FOR UPDATE SKIP LOCKED and deletes each in the same
-- transaction as the events its firing causes: a timer fires once, or never
-- if it was cancelled first.
CREATE TABLE timers (
    timer_id    text PRIMARY KEY,
    stream_id   text NOT NULL,
    kind        text NOT NULL,
    due_at      timestamptz NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX timers_due_idx ON timers (due_at);

-- Open escalations are part of the incident view; this index serves "what needs
-- a supervisor now".
CREATE INDEX incidents_updated_idx ON incidents (updated_at) WHERE is_open;
