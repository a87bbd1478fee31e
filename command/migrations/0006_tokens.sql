-- Tokens that end, adapter tokens that open only their own doors, and console commands
-- that are applied once per request id. See docs/consoles.md (tokens) and
-- docs/protocol.md (request ids).

-- The HTTP ingress doors an adapter token may post to (hotline, video, cap, eido); NULL
-- for every other role. Adapter tokens made before this migration keep all four doors
-- (so an upgrade does not shut a platform out mid-shift) and are narrowed by
-- `ecc token rotate --name NAME --kinds ...`.
ALTER TABLE tokens ADD COLUMN kinds text[];
UPDATE tokens SET kinds = ARRAY['hotline', 'video', 'cap', 'eido'] WHERE role = 'adapter';

-- Every token ends. Rows made before this migration get the role's default from now
-- (a shift for console roles, 90 days for adapters and field units): nothing stays
-- valid for ever.
ALTER TABLE tokens ADD COLUMN expires_at timestamptz;
UPDATE tokens SET expires_at = now() + CASE WHEN role IN ('adapter', 'field_unit')
                                            THEN interval '90 days'
                                            ELSE interval '12 hours' END
    WHERE expires_at IS NULL;
ALTER TABLE tokens ALTER COLUMN expires_at SET NOT NULL;
CREATE INDEX tokens_name_idx ON tokens (name) WHERE revoked_at IS NULL;

-- The first answer to each console command, by (token, request id), written in the
-- command's own transaction: a repeat of the request gets this answer and changes
-- nothing. ``fingerprint`` is a hash of the command, incident and arguments, so a request
-- id reused for a different command is refused rather than answered wrongly. Rows older
-- than a day are of no use (a console retries within seconds) and are deleted.
CREATE TABLE command_results (
    token_hash   bytea NOT NULL,
    request_id   text NOT NULL,
    fingerprint  bytea NOT NULL,
    result       jsonb NOT NULL,
    at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (token_hash, request_id)
);
CREATE INDEX command_results_at_idx ON command_results (at);
