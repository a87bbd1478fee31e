-- The event store: the source of truth. See docs/store.md.

-- One row per stream: its current version. Appends lock this row and check it,
-- so two writers with the same expected version cannot both win.
CREATE TABLE streams (
    stream_id   text PRIMARY KEY,
    version     integer NOT NULL CHECK (version >= 0),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Every event ever. seq is the global order, assigned under a transaction-level
-- advisory lock so that seq order is commit order (a reader that has seen seq N
-- has seen every event below N).
CREATE TABLE events (
    seq             bigserial PRIMARY KEY,
    event_id        uuid NOT NULL UNIQUE,
    stream_id       text NOT NULL REFERENCES streams (stream_id),
    version         integer NOT NULL CHECK (version >= 1),
    type            text NOT NULL,
    data            jsonb NOT NULL,
    causation_id    text,
    correlation_id  text,
    actor           text NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, version)
);

-- Handled messages, per consumer: a redelivery finds its id and has no effect.
CREATE TABLE inbox (
    consumer    text NOT NULL,
    message_id  text NOT NULL,
    handled_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, message_id)
);

-- Messages to publish after commit. The relay publishes in id order with
-- Nats-Msg-Id = msg_id and deletes what the broker acknowledged.
CREATE TABLE outbox (
    id          bigserial PRIMARY KEY,
    subject     text NOT NULL,
    msg_id      text NOT NULL,
    payload     bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Projection: the live picture of incidents, updated in the event's transaction.
CREATE TABLE incidents (
    incident_id text PRIMARY KEY,
    is_open     boolean NOT NULL,
    version     integer NOT NULL,
    last_seq    bigint NOT NULL,
    view        jsonb NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX incidents_open_idx ON incidents (last_seq) WHERE is_open;

-- Access tokens, stored hashed (sha256). The token itself is shown once.
CREATE TABLE tokens (
    token_hash  bytea PRIMARY KEY,
    name        text NOT NULL,
    role        text NOT NULL,
    agency      text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
