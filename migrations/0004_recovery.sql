-- kubemedic schema, version 4: recoveries (issue 11).
--
-- A recovery is one action on one Kubernetes object: what was asked (the
-- target as it was then, the action, why, by whom) and where it stands
-- (its phase, attempts, the API server's last answer). A request is
-- committed before it is acknowledged. Every change of a recovery appends
-- one row to recovery_events in the same transaction: its history, and
-- the sequence WatchRecoveries resumes from. Enum columns hold the numbers
-- of kubemedic.v1.RecoveryAction and RecoveryPhase (common/km_model.h).
CREATE TABLE recoveries (
	id              INTEGER PRIMARY KEY,  -- given in creation order
	target_id       INTEGER NOT NULL REFERENCES targets (id),
	target_name     TEXT    NOT NULL,     -- targets.name: [cluster:]kind/ns/name
	cluster         TEXT    NOT NULL DEFAULT '',
	-- The object the action applies to, and only it: a replacement made
	-- under the same name has another uid and is never acted on.
	target_uid      TEXT    NOT NULL DEFAULT '',
	action          INTEGER NOT NULL,     -- 1 restart pod 2 rollout restart
	                                      -- 3 cordon 4 uncordon 5 drain
	phase           INTEGER NOT NULL,     -- 1 requested 2 queued 3 dispatched
	                                      -- 4 succeeded 5 failed 6 verified
	                                      -- 7 not recovered 8 cancelled
	                                      -- 9 skipped 10 dry run
	reason          TEXT    NOT NULL DEFAULT '',
	requester       TEXT    NOT NULL DEFAULT '',  -- an identity, or 'policy:<name>'
	policy          TEXT    NOT NULL DEFAULT '',  -- '' for a manual request
	idempotency_key TEXT    NOT NULL DEFAULT '',  -- '' = none
	dry_run         INTEGER NOT NULL DEFAULT 0,
	force           INTEGER NOT NULL DEFAULT 0,
	attempts        INTEGER NOT NULL DEFAULT 0,
	skip_rule       TEXT    NOT NULL DEFAULT '',  -- the rule that refused it
	last_error      TEXT    NOT NULL DEFAULT '',  -- the last answer's words
	http_status     INTEGER NOT NULL DEFAULT 0,   -- of the last answer; 0 none
	cause_seq       INTEGER NOT NULL DEFAULT 0,   -- transitions.seq; 0 none
	-- Epoch microseconds; 0 = not yet.
	created_at      INTEGER NOT NULL,
	updated_at      INTEGER NOT NULL,
	dispatched_at   INTEGER NOT NULL DEFAULT 0,   -- the last attempt sent
	finished_at     INTEGER NOT NULL DEFAULT 0,   -- succeeded or failed
	verified_at     INTEGER NOT NULL DEFAULT 0,   -- verified or not recovered
	not_before      INTEGER NOT NULL DEFAULT 0    -- the next attempt's earliest
);
-- A repeated request (its idempotency key) finds the first; '' is no key.
CREATE UNIQUE INDEX recoveries_idempotency ON recoveries (idempotency_key)
	WHERE idempotency_key <> '';
-- ListRecoveries is newest first, paged by id: ids follow creation, so
-- the primary key is the time order, and each filter's index ends in id.
CREATE INDEX recoveries_created ON recoveries (created_at, id);
CREATE INDEX recoveries_target ON recoveries (target_name, id);
CREATE INDEX recoveries_cluster ON recoveries (cluster, id);
CREATE INDEX recoveries_phase ON recoveries (phase, id);
CREATE INDEX recoveries_requester ON recoveries (requester, id);
CREATE INDEX recoveries_action ON recoveries (action, id);
-- What a restart must pick up again: every recovery in a phase that is
-- not final (requested, queued, dispatched, succeeded awaiting
-- verification). Small however long the history grows.
CREATE INDEX recoveries_open ON recoveries (id) WHERE phase IN (1, 2, 3, 4);

-- Every change of a recovery, as of that change. seq is never reused
-- (AUTOINCREMENT): WatchRecoveries resumes by it. The row says what the
-- change made of the recovery's phase, attempts, last answer (http_status)
-- and last_error (message); the rest is the recovery's own row.
CREATE TABLE recovery_events (
	seq         INTEGER PRIMARY KEY AUTOINCREMENT,
	recovery_id INTEGER NOT NULL REFERENCES recoveries (id),
	at          INTEGER NOT NULL,  -- epoch microseconds
	phase       INTEGER NOT NULL,
	attempts    INTEGER NOT NULL,
	http_status INTEGER NOT NULL DEFAULT 0,
	message     TEXT    NOT NULL DEFAULT ''
);
-- One recovery's history, and its newest event (a recovery's seq).
CREATE INDEX recovery_events_recovery ON recovery_events (recovery_id, seq);
