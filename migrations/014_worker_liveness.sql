-- A worker holds a session advisory lock ('worker:' || its id) for as long as its process lives:
-- PostgreSQL releases it the moment the process's connection drops (kill -9, a crash, a machine
-- gone), so a job held by a registered worker whose lock is gone is taken over at once rather
-- than when its lease runs out. A worker that is only slow (paused, swapping) keeps its lock and
-- its jobs. Workers of earlier versions are not registered: for their jobs the lease alone counts.
CREATE TABLE workers (
    id         text PRIMARY KEY,
    started_at timestamptz NOT NULL DEFAULT now()
);

-- Whether the worker's lock is held now. A bigint advisory lock shows in pg_locks as its high
-- and low 32 bits (classid, objid) with objsubid 1 ("pg_locks", PostgreSQL documentation).
CREATE FUNCTION worker_alive(p_worker text) RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT EXISTS (
        SELECT 1
        FROM pg_locks l, (SELECT hashtextextended('worker:' || p_worker, 0) AS k) AS key
        WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
          AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND l.classid = ((key.k >> 32) & 4294967295)::oid
          AND l.objid = (key.k & 4294967295)::oid)
$$;
