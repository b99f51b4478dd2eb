-- Stablecoin payouts on EVM chains (payouts.providers.evm): nonces allocated
-- per (chain, wallet), every signed transaction stored before it is broadcast,
-- the Transfer logs read back from the chain, and the native coins gas is paid in.

INSERT INTO ledger.currencies (code, exponent, kind) VALUES
    ('ETH', 18, 'crypto'), ('POL', 18, 'crypto')
ON CONFLICT (code) DO NOTHING;

-- The next nonce of a hot wallet on a chain. Raised to the node's pending nonce
-- when the wallet sent transactions of its own; never lowered.
CREATE TABLE IF NOT EXISTS payouts.evm_nonces (
    chain_id    bigint NOT NULL,
    wallet      text NOT NULL,
    next_nonce  bigint NOT NULL CHECK (next_nonce >= 0),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (chain_id, wallet)
);

-- Every transaction signed for a payment (and every filler of an abandoned
-- nonce), stored with its raw bytes before it leaves: a retry broadcasts these
-- bytes again, never a new signature. A replacement (same nonce, higher fees)
-- is one more row naming the row it replaces. Token amounts in the token's own
-- decimals and wei amounts are numeric: they do not fit a bigint.
CREATE TABLE IF NOT EXISTS payouts.evm_transactions (
    tx_hash                   text PRIMARY KEY,
    chain_id                  bigint NOT NULL,
    wallet                    text NOT NULL,
    nonce                     bigint NOT NULL CHECK (nonce >= 0),
    purpose                   text NOT NULL CHECK (purpose IN ('payment', 'filler')),
    provider                  text NOT NULL,
    idempotency_key           text,
    item_id                   text,
    asset                     text,
    token                     text,
    to_address                text,
    token_amount              numeric(78, 0),
    raw_tx                    text NOT NULL,
    max_fee_per_gas           numeric(78, 0) NOT NULL,
    max_priority_fee_per_gas  numeric(78, 0) NOT NULL,
    gas_limit                 bigint NOT NULL,
    replaces                  text REFERENCES payouts.evm_transactions (tx_hash),
    signed_at                 timestamptz NOT NULL DEFAULT now(),
    signed_block              bigint,      -- the node's latest block when signed: stuck is counted in blocks
    broadcasts                integer NOT NULL DEFAULT 0,
    last_broadcast_at         timestamptz,
    last_broadcast_error      text,
    -- From the receipt once mined (cleared again when a reorg drops its block).
    block_number              bigint,
    block_hash                text,
    receipt_status            smallint,
    revert_reason             text,
    gas_used                  numeric(78, 0),
    effective_gas_price       numeric(78, 0),
    fee_wei                   numeric(78, 0),
    l1_fee_wei                numeric(78, 0),
    CHECK ((purpose = 'payment') = (idempotency_key IS NOT NULL))
);
CREATE INDEX IF NOT EXISTS evm_transactions_key_idx ON payouts.evm_transactions (idempotency_key);
CREATE INDEX IF NOT EXISTS evm_transactions_nonce_idx ON payouts.evm_transactions (chain_id, wallet, nonce);
-- A nonce belongs to one payment (its replacements share it) or to one filler.
CREATE UNIQUE INDEX IF NOT EXISTS evm_transactions_one_key_per_nonce
    ON payouts.evm_transactions (chain_id, wallet, nonce) WHERE replaces IS NULL;

-- The Transfer logs of the hot wallet read from the chain, with the block they
-- came in: a log whose block is no longer canonical is withdrawn.
CREATE TABLE IF NOT EXISTS payouts.evm_transfer_logs (
    provider      text NOT NULL,
    tx_hash       text NOT NULL,
    log_index     integer NOT NULL,
    block_number  bigint NOT NULL,
    block_hash    text NOT NULL,
    block_time    timestamptz NOT NULL,
    token         text NOT NULL,
    asset         text NOT NULL,
    from_address  text NOT NULL,
    to_address    text NOT NULL,
    token_amount  numeric(78, 0) NOT NULL,
    item_id       text,
    withdrawn_at  timestamptz,
    PRIMARY KEY (provider, block_hash, tx_hash, log_index)
);
CREATE INDEX IF NOT EXISTS evm_transfer_logs_tx_idx ON payouts.evm_transfer_logs (tx_hash);

-- A statement line read from a Transfer log whose block left the chain is
-- withdrawn: it no longer settles anything, and its match is taken back.
ALTER TABLE recon.statement_lines DROP CONSTRAINT IF EXISTS statement_lines_status_check;
ALTER TABLE recon.statement_lines ADD CONSTRAINT statement_lines_status_check
    CHECK (status IN ('booked', 'pending', 'withdrawn'));
