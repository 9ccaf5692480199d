-- kubemedic schema, version 2: the audit trail.
--
-- Every mutating call and every refused call: who (the identity and how it
-- was established), from where, which method, which object, and the
-- outcome (the gRPC status code it was answered with). A change's row is
-- committed before the change is acknowledged (docs/SECURITY.md).
CREATE TABLE audit (
	id       INTEGER PRIMARY KEY,
	at       INTEGER NOT NULL,  -- epoch microseconds
	identity TEXT    NOT NULL,  -- the caller's user; '' when anonymous
	auth     TEXT    NOT NULL,  -- how it was identified: cert, token, local, none
	peer     TEXT    NOT NULL,  -- its address, e.g. ipv4:10.1.2.3:51234
	method   TEXT    NOT NULL,  -- /kubemedic.v1.ProbeService/CreateProbe
	object   TEXT    NOT NULL,  -- the probe or target it named; '' if none
	code     INTEGER NOT NULL,  -- gRPC status code: 0 OK, 7 PERMISSION_DENIED, ...
	message  TEXT    NOT NULL   -- the error message; '' on success
);
-- Newest first, by time; retention deletes from the oldest.
CREATE INDEX audit_at ON audit (at, id);
-- "What did alice do", "who called DeleteProbe".
CREATE INDEX audit_identity ON audit (identity, at, id);
CREATE INDEX audit_method ON audit (method, at, id);
