-- Stops: a kill switch per run or per rail (cancel what is queued), and rail
-- pauses for funding (hold what is queued until treasury tops the account up).
CREATE TABLE IF NOT EXISTS payouts.stops (
    stop_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    scope       text NOT NULL CHECK (scope IN ('run', 'rail')),
    target      text NOT NULL,                 -- a run id or a rail name
    kind        text NOT NULL CHECK (kind IN ('kill', 'funding')),
    reason      text NOT NULL,
    set_by      text NOT NULL,
    set_at      timestamptz NOT NULL DEFAULT now(),
    lifted_by   text,
    lifted_at   timestamptz
);
CREATE UNIQUE INDEX IF NOT EXISTS stops_active_uq ON payouts.stops (scope, target, kind) WHERE lifted_at IS NULL;

-- Batches belong to a wave: 1 for the primary rails, 2 for fallbacks after a rail-level rejection.
ALTER TABLE payouts.batches ADD COLUMN IF NOT EXISTS wave smallint NOT NULL DEFAULT 1;
ALTER TABLE payouts.batches ADD COLUMN IF NOT EXISTS execution_date date;
