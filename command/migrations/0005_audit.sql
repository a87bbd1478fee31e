-- The audit log: every console command and every refusal, who, what, when, from
-- where and the outcome; consoles opening (console.open) and being shut out
-- (unauthorized, forbidden, busy, revoked) too. Append-only: the database itself refuses to change or
-- delete a row (only the owner's TRUNCATE, for a test database, gets past it).
CREATE TABLE audit_log (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor       text NOT NULL,          -- the token's name
    role        text NOT NULL,
    agency      text,
    peer        text,                   -- the console's address
    command     text NOT NULL,
    incident_id text,
    args        jsonb NOT NULL,
    outcome     text NOT NULL CHECK (outcome IN ('ok', 'forbidden', 'rejected', 'invalid',
                                                 'not_found', 'error', 'unauthorized',
                                                 'busy')),
    reason      text NOT NULL DEFAULT '',
    seqs        bigint[] NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_incident_idx ON audit_log (incident_id, id);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END $$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
