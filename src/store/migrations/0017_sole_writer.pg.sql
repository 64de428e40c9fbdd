-- The sole-writer lease (docs/storage.md "The sole-writer lease"). An
-- instance that is the only writer of the database holds the session
-- advisory lock below exclusively and its row here, and answers repeat
-- reads of a branch from memory; every other write transaction, of any
-- process, first calls oms_write_guard(), which waits while that lock is
-- held and, when a holder vanished without giving its lease back (its row
-- is still here), until the holder's lease has certainly ended: two
-- seconds after its last heartbeat, by the server's clock.
CREATE TABLE oms_sole_writer (
    holder TEXT PRIMARY KEY,
    heartbeat TIMESTAMPTZ NOT NULL
);

-- 5714315119480816897 = 0x4F4D53534F4C4501 ("OMSSOLE" and 1): the lock's key.
CREATE FUNCTION oms_write_guard() RETURNS void LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    hb TIMESTAMPTZ;
BEGIN
    PERFORM pg_advisory_xact_lock_shared(5714315119480816897);
    LOOP
        -- each statement of a VOLATILE function reads a new snapshot: a
        -- holder that gave its lease back deleted its row before unlocking
        SELECT max(heartbeat) INTO hb FROM oms_sole_writer;
        EXIT WHEN hb IS NULL OR clock_timestamp() >= hb + interval '2 seconds';
        PERFORM pg_sleep(greatest(0.01, extract(epoch FROM hb + interval '2 seconds' - clock_timestamp())));
    END LOOP;
END $$;
