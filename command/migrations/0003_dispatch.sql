-- Dispatch: the dispatcher's current proposals for tasks that wait for a person.
CREATE TABLE recommendations (
    incident_id  text NOT NULL,
    task_id      text NOT NULL,
    candidates   jsonb NOT NULL,
    computed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (incident_id, task_id)
);
