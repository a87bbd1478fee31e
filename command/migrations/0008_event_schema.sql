-- Events can evolve (workflows/upcast.py): each row records the schema version of its
-- type when it was written, so a reader knows which upcasters to apply before it
-- validates the data against today's model. Rows written before this are version 1.
-- A constant default is a catalogue-only change: no rewrite of the table.
ALTER TABLE events ADD COLUMN schema_version integer NOT NULL DEFAULT 1
    CHECK (schema_version >= 1);
