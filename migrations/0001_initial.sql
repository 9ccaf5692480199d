-- kubemedic schema, version 1.
--
-- Times are Unix epoch microseconds. Enum columns hold the numbers of the
-- kubemedic.v1 API enums (storage/km_model.h). String lists are stored as
-- NUL-separated blobs ("key\0value\0key\0value\0", "arg0\0arg1\0").

-- Everything kubemedic has a verdict on: probes now, Kubernetes objects
-- later. A deleted target keeps its row (deleted_at > 0) so its history
-- stays queryable; re-creating it revives the row.
CREATE TABLE targets (
	id              INTEGER PRIMARY KEY,
	name            TEXT    NOT NULL UNIQUE,  -- [cluster:]kind/namespace/name
	cluster         TEXT    NOT NULL DEFAULT '',
	kind            INTEGER NOT NULL,
	namespace       TEXT    NOT NULL DEFAULT '',
	object_name     TEXT    NOT NULL,
	uid             TEXT    NOT NULL DEFAULT '',
	owner           TEXT    NOT NULL DEFAULT '',
	node            TEXT    NOT NULL DEFAULT '',
	labels          BLOB    NOT NULL DEFAULT x'',
	state           INTEGER NOT NULL DEFAULT 1,
	flapping        INTEGER NOT NULL DEFAULT 0,
	state_since     INTEGER NOT NULL,
	last_transition INTEGER NOT NULL DEFAULT 0,
	created_at      INTEGER NOT NULL,
	deleted_at      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX targets_kind ON targets (kind, id);

-- Active probe definitions, one per probe target.
CREATE TABLE probes (
	id                INTEGER PRIMARY KEY,
	name              TEXT    NOT NULL UNIQUE,
	target_id         INTEGER NOT NULL REFERENCES targets (id),
	source            INTEGER NOT NULL,       -- 1 api, 2 config
	generation        INTEGER NOT NULL,
	labels            BLOB    NOT NULL DEFAULT x'',
	type              INTEGER NOT NULL,       -- 1 http 2 tcp 3 grpc 4 exec 5 file
	host              TEXT    NOT NULL DEFAULT '',
	port              INTEGER NOT NULL DEFAULT 0,
	path              TEXT    NOT NULL DEFAULT '',
	https             INTEGER NOT NULL DEFAULT 0,
	tls_verify        INTEGER NOT NULL DEFAULT 0,
	ca_file           TEXT    NOT NULL DEFAULT '',
	headers           BLOB    NOT NULL DEFAULT x'',
	service           TEXT    NOT NULL DEFAULT '',
	argv              BLOB    NOT NULL DEFAULT x'',
	env               BLOB    NOT NULL DEFAULT x'',
	workdir           TEXT    NOT NULL DEFAULT '',
	min_size          INTEGER NOT NULL DEFAULT 0,
	max_age_s         INTEGER NOT NULL DEFAULT 0,
	initial_delay_ms  INTEGER NOT NULL,
	timeout_ms        INTEGER NOT NULL,
	period_ms         INTEGER NOT NULL,
	success_threshold INTEGER NOT NULL,
	failure_threshold INTEGER NOT NULL,
	created_at        INTEGER NOT NULL,
	updated_at        INTEGER NOT NULL
);

-- Every observation. The hot table: tens of millions of rows. No foreign
-- key (a per-row lookup would halve ingest); the writer only inserts
-- target ids it knows. Rows arrive in roughly started_at order, which the
-- retention sweep relies on (it deletes from the lowest ids).
CREATE TABLE results (
	id          INTEGER PRIMARY KEY,
	target_id   INTEGER NOT NULL,
	started_at  INTEGER NOT NULL,
	duration_us INTEGER NOT NULL,
	success     INTEGER NOT NULL,
	error_class INTEGER NOT NULL,
	status_code INTEGER NOT NULL,
	message     TEXT
);
-- History of one target in a time range, either direction.
CREATE INDEX results_target_time ON results (target_id, started_at);
-- "Only failures" without walking the successes.
CREATE INDEX results_target_failures ON results (target_id, started_at)
	WHERE success = 0;

-- State changes. seq is never reused (AUTOINCREMENT), even after retention
-- removes the newest rows' predecessors: WatchHealth resumes by it.
CREATE TABLE transitions (
	seq        INTEGER PRIMARY KEY AUTOINCREMENT,
	target_id  INTEGER NOT NULL,
	at         INTEGER NOT NULL,
	from_state INTEGER NOT NULL,
	to_state   INTEGER NOT NULL,
	flapping   INTEGER NOT NULL,
	cause      TEXT    NOT NULL
);
CREATE INDEX transitions_target_time ON transitions (target_id, at);
