"""The evm connector: ERC-20 stablecoin payouts signed with the hot wallet's key, one nonce
at a time, confirmed by receipts and proven by the token's Transfer logs."""
