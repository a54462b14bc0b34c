-- Failing the jobs whose agent stopped reporting: every scheduler tick, on
-- every instance, looks for running jobs whose lease ended. Partial, so the
-- index holds only the few running rows, not the whole history.
-- Keep this file identical between migrations/sqlite/ and migrations/postgres/.

CREATE INDEX jobs_running_lease ON jobs (lease_expires_at) WHERE state = 'running';
