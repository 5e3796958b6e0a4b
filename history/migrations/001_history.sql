-- dagflow's long-term history: every run, task instance and try the active server recorded,
-- with the full logs of each try. Names are compared byte by byte (COLLATE "C"), as Consul
-- and the API order them.

-- fence holds the epoch of the leader allowed to write. A write raises it to its own epoch
-- or is refused, and holds its row lock until it commits, so a deposed leader's late writes
-- are rejected once its successor wrote. See history.DB.Record.
CREATE TABLE fence (
	id         boolean PRIMARY KEY DEFAULT true CHECK (id),
	epoch      bigint      NOT NULL,
	session    text        NOT NULL,
	updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE runs (
	dag                 text COLLATE "C" NOT NULL,
	run_id              text COLLATE "C" NOT NULL,
	-- The order of run lists and their paging token: see state.PageKey.
	page_key            text COLLATE "C" NOT NULL,
	type                text        NOT NULL,
	version             text        NOT NULL,
	state               text        NOT NULL,
	logical_date        timestamptz NOT NULL,
	data_interval_start timestamptz NOT NULL,
	data_interval_end   timestamptz NOT NULL,
	params              jsonb,
	created_at          timestamptz NOT NULL,
	started_at          timestamptz,
	ended_at            timestamptz,
	canceled_at         timestamptz,
	-- A digest of the run as last recorded: a leader taking over skips runs it already holds.
	digest              text        NOT NULL,
	PRIMARY KEY (dag, run_id)
);
CREATE INDEX runs_page ON runs (page_key);
CREATE INDEX runs_dag_page ON runs (dag, page_key);

CREATE TABLE task_instances (
	dag           text COLLATE "C" NOT NULL,
	run_id        text COLLATE "C" NOT NULL,
	task          text COLLATE "C" NOT NULL,
	state         text        NOT NULL,
	retry_at      timestamptz,
	cleared_tries integer     NOT NULL DEFAULT 0,
	PRIMARY KEY (dag, run_id, task),
	FOREIGN KEY (dag, run_id) REFERENCES runs ON DELETE CASCADE
);

-- One row per try: (run, task, try) is the key, so recording a try again updates it.
CREATE TABLE tries (
	dag          text COLLATE "C" NOT NULL,
	run_id       text COLLATE "C" NOT NULL,
	task         text COLLATE "C" NOT NULL,
	try          integer     NOT NULL,
	job_id       text        NOT NULL,
	state        text        NOT NULL,
	scheduled_at timestamptz,
	queued_at    timestamptz,
	started_at   timestamptz,
	ended_at     timestamptz,
	alloc_id     text,
	node         text,
	exit_code    integer,
	message      text,
	PRIMARY KEY (dag, run_id, task, try),
	FOREIGN KEY (dag, run_id, task) REFERENCES task_instances ON DELETE CASCADE
);

-- The output of a finished try, written once. source says where it was read: "nomad" (the
-- whole output, up to the history's log limit) or "consul" (the tail kept in Consul, when
-- the allocation was gone from Nomad by the time history was written).
CREATE TABLE try_logs (
	dag       text COLLATE "C" NOT NULL,
	run_id    text COLLATE "C" NOT NULL,
	task      text COLLATE "C" NOT NULL,
	try       integer NOT NULL,
	stream    text    NOT NULL CHECK (stream IN ('stdout', 'stderr')),
	data      bytea   NOT NULL,
	truncated boolean NOT NULL,
	source    text    NOT NULL CHECK (source IN ('nomad', 'consul')),
	PRIMARY KEY (dag, run_id, task, try, stream),
	FOREIGN KEY (dag, run_id, task, try) REFERENCES tries ON DELETE CASCADE
);

-- Every state a run (task '' and try 0) or a try reached, and when: an audit trail that
-- recording again never duplicates.
CREATE TABLE transitions (
	dag    text COLLATE "C" NOT NULL,
	run_id text COLLATE "C" NOT NULL,
	task   text COLLATE "C" NOT NULL,
	try    integer     NOT NULL,
	state  text        NOT NULL,
	at     timestamptz NOT NULL,
	PRIMARY KEY (dag, run_id, task, try, state, at),
	FOREIGN KEY (dag, run_id) REFERENCES runs ON DELETE CASCADE
);
