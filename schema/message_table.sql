-- A tablemq / Vitess message table. One table per queue; replace `orders` with the queue's name
-- (tablemq accepts names matching ^[a-z][a-z0-9_]{0,62}$).
--
-- Units follow Vitess so the tables stay interchangeable with Vitess messaging:
--   * the row times (time_next, time_acked) are NANOSECONDS since the Unix epoch, in BIGINT;
--   * the options in the COMMENT are SECONDS (fractions allowed, e.g. vt_ack_wait=0.5), counts are plain
--     integers. tablemq converts both to milliseconds at its edges.
--
-- COMMENT keys: vt_ack_wait (redelivery timeout after a send), vt_purge_after (how long acked rows are
-- kept), vt_batch_size (messages per push), vt_cache_size (rows held in memory per table),
-- vt_poller_interval (seconds between reads of due rows), vt_min_backoff / vt_max_backoff (exponential
-- redelivery backoff; max 0 = unbounded). tablemq may add vt_max_attempts, which Vitess ignores.
-- The first comma-separated item must be `vitess_message`; that is how tables are discovered.
--
-- Why poller_idx is ASCENDING on time_next (Vitess documents `time_next DESC`): the poller reads
--   WHERE time_acked IS NULL AND time_next <= ? ORDER BY priority, time_next, id LIMIT ?
-- With the ascending index the ORDER BY is exactly the index order after the `time_acked IS NULL`
-- prefix (InnoDB ends every secondary index with the primary key, id), so the read is an index ref/range
-- scan that stops after LIMIT rows, with no filesort.
-- With the DESC index MariaDB filesorts, and under FOR UPDATE SKIP LOCKED it then locks every scanned
-- row, so a second reader gets nothing. Keep the ORDER BY and this index in agreement.
CREATE TABLE orders (
  id         BIGINT UNSIGNED NOT NULL,              -- first column; what subscribers get as "id"
  priority   TINYINT UNSIGNED NOT NULL DEFAULT 50,  -- lower is delivered first
  epoch      BIGINT NOT NULL DEFAULT 0,             -- deliveries so far; drives the backoff
  time_next  BIGINT DEFAULT 0,                      -- ns: when (re)delivery is due; NULL once acked
  time_acked BIGINT DEFAULT NULL,                   -- ns: when it was acked; NULL while pending
  message    JSON,                                  -- the payload, passed through as JSON text
  PRIMARY KEY (id),
  INDEX poller_idx (time_acked, priority, time_next)
) COMMENT 'vitess_message,vt_ack_wait=30,vt_purge_after=86400,vt_batch_size=10,vt_cache_size=10000,vt_poller_interval=30,vt_min_backoff=30,vt_max_backoff=0';
