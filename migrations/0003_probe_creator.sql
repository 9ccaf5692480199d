-- kubemedic schema, version 3: who created a probe.
--
-- The identity (its user name) whose CreateProbe made the probe, for the
-- quota limits.maxProbesPerIdentity; NULL for probes of the config file
-- and for probes made before this version (they count for no one).
-- UpdateProbe does not change it.
ALTER TABLE probes ADD COLUMN created_by TEXT;
CREATE INDEX probes_created_by ON probes (created_by)
	WHERE created_by IS NOT NULL;
