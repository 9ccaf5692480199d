-- kubemedic schema, version 5: storms (issue 11).
--
-- A storm is the storm guard at work: more than a configured share of a
-- group's members (a policy's matched targets, or a zone's nodes) were
-- UNHEALTHY at once, and automatic recoveries in that group stopped until
-- the share fell back. One row per storm, written when it starts and again
-- when it ends, so "what stopped the policies last Tuesday" has an answer.
-- group_kind holds kubemedic.v1.StormGroup (1 policy, 2 zone).
CREATE TABLE storms (
	id          INTEGER PRIMARY KEY,   -- given in start order
	group_kind  INTEGER NOT NULL,
	name        TEXT    NOT NULL,      -- the policy, or the zone
	cluster     TEXT    NOT NULL DEFAULT '',
	-- At its start: how many were unhealthy, of how many, against which
	-- share (a storm is MORE than share_pct percent), in words.
	unhealthy   INTEGER NOT NULL,
	total       INTEGER NOT NULL,
	share_pct   INTEGER NOT NULL,
	why         TEXT    NOT NULL DEFAULT '',
	-- Automatic recoveries the storm refused (written at its end).
	refused     INTEGER NOT NULL DEFAULT 0,
	-- Epoch microseconds; ended_at 0 = still on.
	started_at  INTEGER NOT NULL,
	ended_at    INTEGER NOT NULL DEFAULT 0,
	-- How it ended: '' (the share fell back), or what cut it short
	-- ("kubemedicd stopped").
	end_note    TEXT    NOT NULL DEFAULT ''
);
-- Lists are newest first, paged by id (ids follow start order).
CREATE INDEX storms_started ON storms (started_at, id);
CREATE INDEX storms_cluster ON storms (cluster, id);
-- The storms on now: small however long the history grows.
CREATE INDEX storms_on ON storms (id) WHERE ended_at = 0;
