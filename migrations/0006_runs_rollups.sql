-- kubemedic schema, version 6: history at fleet scale (issue 12).
--
-- A probe result is no longer a row. Consecutive results of one target
-- with one outcome are one run (storage/km_run.h), and every result is
-- counted in its target's minute and hour rollups (storage/km_rollup.h):
-- a steady target costs a few hundred bytes an hour instead of some
-- 180 kB. The writer keeps each target's open run and open rollups in
-- memory and writes them when the run ends (another outcome, the target
-- deleted) and at the flush interval (10 s: what a crash can lose).
--
-- `results` stays for the rows written before this version: the writer
-- converts them into runs and rollups in small batches, oldest first,
-- deleting each batch in the transaction that stores its conversion (so a
-- daemon killed midway resumes where it stopped), while serving. Readers
-- show what is left of it as runs of one.

-- One run: the results of one target from first_at to last_at (each a
-- result's start, epoch µs) with one outcome (success, error_class,
-- status_code), count of them. Durations: min, max, sum (µs), and hist,
-- their histogram (km_lat_pack: a bucket mask, then the non-empty
-- buckets' counts, varints). A failure run keeps its first and last
-- message (NULL for a success run, or a failure without one; last_message
-- NULL too when it equals the first: stored once). A run's
-- row is written when it opens (at its first flush) and updated until it
-- ends; a target's runs follow each other in time and do not overlap.
CREATE TABLE runs (
	id            INTEGER PRIMARY KEY,
	target_id     INTEGER NOT NULL,
	first_at      INTEGER NOT NULL,
	last_at       INTEGER NOT NULL,
	count         INTEGER NOT NULL,
	success       INTEGER NOT NULL,
	error_class   INTEGER NOT NULL,
	status_code   INTEGER NOT NULL,
	dur_min       INTEGER NOT NULL,
	dur_max       INTEGER NOT NULL,
	dur_sum       INTEGER NOT NULL,
	hist          BLOB    NOT NULL,
	first_message TEXT,
	last_message  TEXT
);
-- History of one target in a time range, either direction.
CREATE INDEX runs_target_time ON runs (target_id, first_at);
-- "Only failures" without walking the successes.
CREATE INDEX runs_target_failures ON runs (target_id, first_at)
	WHERE success = 0;

-- A target's results counted per minute, one row per target-hour: hour is
-- hours since the epoch (UTC), blob the hour's non-empty minutes packed
-- (km_rollup_pack: per minute its delta from the previous one, count,
-- failures and histogram, varints).
CREATE TABLE rollup_minutes (
	target_id INTEGER NOT NULL,
	hour      INTEGER NOT NULL,
	blob      BLOB    NOT NULL,
	PRIMARY KEY (target_id, hour)
) WITHOUT ROWID;

-- The same per hour, one row per target-day: day is days since the epoch
-- (UTC), blob the day's non-empty hours (0..23) packed the same way.
CREATE TABLE rollup_hours (
	target_id INTEGER NOT NULL,
	day       INTEGER NOT NULL,
	blob      BLOB    NOT NULL,
	PRIMARY KEY (target_id, day)
) WITHOUT ROWID;

-- A target's transitions in (at, seq) order with their new state, from the
-- index alone: GetAvailability over a year reads some 20,000 of them, and
-- a seek into the table for each was most of its time (bench/RESULTS.md,
-- "GetAvailability"). Same name, same leading columns: every query of
-- transitions_target_time keeps it.
DROP INDEX transitions_target_time;
CREATE INDEX transitions_target_time ON transitions (target_id, at, seq,
	to_state);
