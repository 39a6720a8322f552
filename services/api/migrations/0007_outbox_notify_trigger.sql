-- The relay is woken by the database itself: one NOTIFY per inserting statement, sent at
-- commit like any other, instead of a `SELECT pg_notify(...)` round trip from every
-- transaction that queues a message. PostgreSQL folds identical notifications of one
-- transaction into one.
CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('atelier_outbox', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();
