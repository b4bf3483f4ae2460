-- An X-Request-Id is bound to what its request asked for (a hash of the record id, the CIN and
-- refresh): the same id with another request is refused, not answered with the first one's job
-- (which dropped the second trigger). Rows stored before this have none and are taken as before.
ALTER TABLE webhook_requests ADD COLUMN asked text;
