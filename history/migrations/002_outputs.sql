-- Task outputs and mapped tasks. outputs is the JSON object a successful try published,
-- kept as written (json, not jsonb, which would reorder its keys); Consul keeps only the latest
-- successful try's, history every try's. map_keys are the instance keys of a mapped task's
-- expansion, in order; message why a task instance ended without a try.
ALTER TABLE tries ADD COLUMN outputs json;
ALTER TABLE task_instances ADD COLUMN map_keys text[];
ALTER TABLE task_instances ADD COLUMN message text;
