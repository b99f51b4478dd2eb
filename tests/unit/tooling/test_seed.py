"""The synthetic platform: valid, unique, deterministic recipients and balanced earnings."""

from __future__ import annotations

import warnings

import polars as pl
import pytest

from payouts.core import money
from payouts_tooling import seed

N = 50_000


@pytest.fixture(scope="module")
def recipients() -> pl.DataFrame:
    return seed.generate_recipients(N, seed=7)


@pytest.fixture(scope="module")
def sample(recipients) -> pl.DataFrame:
    """Up to 40 rows of every (country, dest_kind, network): a few thousand rows, all covered."""
    return (
        recipients.with_columns(k=pl.int_range(pl.len()).over("country", "dest_kind", "network"))
        .filter(pl.col("k") < 40)
        .drop("k")
    )


def test_columns_are_the_table_columns(recipients):
    assert recipients.columns == seed.RECIPIENT_COLUMNS
    assert recipients.height == N
    assert recipients["recipient_id"][0] == "U00000001"
    for col in ("recipient_id", "name", "country", "currency", "dest_kind", "kyc_status"):
        assert recipients[col].null_count() == 0, col


def test_deterministic_and_prefix_stable(recipients):
    again = seed.generate_recipients(N, seed=7)
    assert again.equals(recipients)
    small = seed.generate_recipients(1_000, seed=7)
    assert small.equals(recipients.head(1_000))
    other = seed.generate_recipients(1_000, seed=8)
    assert not other.equals(small)


def test_destinations_are_unique(recipients):
    for col in ("iban", "wallet_address"):
        values = recipients[col].drop_nulls()
        assert values.n_unique() == values.len(), col
    local = recipients.filter(pl.col("dest_kind") == "local")
    assert local["account_number"].n_unique() == local.height
    assert local.select("routing_code", "account_number").n_unique() == local.height
    assert recipients["recipient_id"].n_unique() == N


def test_destination_columns_match_kind(recipients):
    kinds = dict(recipients["dest_kind"].value_counts().iter_rows())
    assert set(kinds) == {"iban", "local", "wallet"}
    assert 0.06 < kinds["wallet"] / N < 0.10
    iban = recipients.filter(pl.col("dest_kind") == "iban")
    assert iban["iban"].null_count() == 0 and iban["account_number"].null_count() == iban.height
    local = recipients.filter(pl.col("dest_kind") == "local")
    assert local["routing_code"].null_count() == 0 and local["iban"].null_count() == local.height
    wallet = recipients.filter(pl.col("dest_kind") == "wallet")
    assert wallet["network"].null_count() == 0 and wallet["iban"].null_count() == wallet.height
    assert set(wallet["currency"].unique()) == {"USDC", "USDT", "BTC"}


def test_country_spread_and_weights(recipients):
    counts = dict(recipients["country"].value_counts().iter_rows())
    assert len(counts) >= 80
    top = sorted(counts, key=counts.get, reverse=True)[:8]
    assert {"DE", "US", "FR", "GB"} <= set(top)
    assert all(len(c) == 2 and c.isupper() for c in counts)


def test_currencies_follow_countries(recipients):
    fiat = recipients.filter(pl.col("dest_kind") != "wallet")
    pairs = set(fiat.select("country", "currency").unique().iter_rows())
    for country, currency in [("DE", "EUR"), ("FR", "EUR"), ("GB", "GBP"), ("CH", "CHF"), ("SE", "SEK"),
                              ("PL", "PLN"), ("US", "USD"), ("CA", "CAD"), ("AU", "AUD"), ("IN", "INR"),
                              ("JP", "JPY"), ("MX", "MXN"), ("HR", "EUR"), ("BG", "EUR")]:
        assert (country, currency) in pairs
    assert all(currency in money.EXPONENTS for _, currency in pairs)
    assert {c for c in recipients["currency"].unique()} <= set(money.EXPONENTS)


def test_names_and_kyc(recipients):
    names = recipients["name"]
    assert names.str.contains("[^\\x00-\\x7F]").sum() > N * 0.1  # accents where natural
    assert names.str.contains(" (GmbH|Ltd|SARL|LLC|S\\.L\\.|B\\.V\\.)$").sum() > N * 0.02
    kyc = dict(recipients["kyc_status"].value_counts().iter_rows())
    assert kyc["verified"] > kyc["unverified"] > kyc["expired"] > 0


def test_ibans_are_valid_with_national_check_digits(sample, recipients):
    from schwifty import IBAN
    from schwifty.exceptions import NationalChecksumNotVerified
    from stdnum import iban as stdnum_iban

    rows = sample.filter(pl.col("dest_kind") == "iban")
    countries = set(rows["country"].unique())
    assert len(countries) >= 70
    resolved = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NationalChecksumNotVerified)
        for value, bic, country in rows.select("iban", "bic", "country").iter_rows():
            iban = IBAN(value, validate_bban=True)
            assert iban.country_code == country
            assert stdnum_iban.is_valid(value), value
            if bic is not None:
                assert iban.bic is not None and str(iban.bic) == bic, value
                resolved += 1
    assert resolved > 0
    # Most recipients bank where schwifty's registry names the bank: the BIC resolves.
    all_ibans = recipients.filter(pl.col("dest_kind") == "iban")
    assert all_ibans["bic"].null_count() < all_ibans.height * 0.15


@pytest.mark.parametrize("country", ["DE", "FR", "ES", "IT", "BE", "PT", "NO", "FI", "EE", "CZ", "SK",
                                     "PL", "IS", "SI", "MC", "BA", "ME", "RS", "GB", "NL"])
def test_national_checksums_by_country(recipients, country):
    """Every IBAN of the countries whose national check digits schwifty verifies."""
    from schwifty import IBAN

    values = recipients.filter(pl.col("country") == country, pl.col("dest_kind") == "iban")["iban"]
    assert values.len() > 0
    for value in values.head(3_000):
        IBAN(value, validate_bban=True)


def test_local_details_are_valid(sample, recipients):
    from stdnum.nz import bankaccount
    from stdnum.us import rtn

    local = recipients.filter(pl.col("dest_kind") == "local")
    us = local.filter(pl.col("country") == "US")
    assert all(rtn.is_valid(r) for r in us["routing_code"].head(5_000))
    assert us["account_number"].str.len_chars().min() >= 10
    nz = local.filter(pl.col("country") == "NZ")
    assert nz.height > 0 and all(bankaccount.is_valid(r + a) for r, a in zip(nz["routing_code"], nz["account_number"]))
    mx = local.filter(pl.col("country") == "MX")
    for clabe in mx["account_number"]:
        assert len(clabe) == 18
        total = sum((int(d) * w) % 10 for d, w in zip(clabe[:17], [3, 7, 1] * 6))
        assert (10 - total % 10) % 10 == int(clabe[17])
    ng = local.filter(pl.col("country") == "NG")
    for bank, nuban in ng.select("routing_code", "account_number").iter_rows():
        digits = bank + nuban[:9]
        total = sum(int(d) * w for d, w in zip(digits, [3, 7, 3, 3, 7, 3, 3, 7, 3, 3, 7, 3]))
        assert (10 - total % 10) % 10 == int(nuban[9])
    india = local.filter(pl.col("country") == "IN")
    assert india["routing_code"].str.contains("^[A-Z]{4}0[0-9A-Z]{6}$").all()
    ca = local.filter(pl.col("country") == "CA")
    assert ca["routing_code"].str.contains("^0[0-9]{8}$").all()
    au = local.filter(pl.col("country") == "AU")
    assert au["routing_code"].str.contains("^[0-9]{6}$").all()
    assert local["routing_code"].str.len_chars().max() <= 35
    assert local["account_number"].str.len_chars().max() <= 34
    assert local["country"].n_unique() >= 15


def test_wallet_addresses_are_valid_for_their_network(sample):
    import bip_utils as bu

    wallets = sample.filter(pl.col("dest_kind") == "wallet")
    seen = set()
    for currency, network, address in wallets.select("currency", "network", "wallet_address").iter_rows():
        seen.add((currency, network))
        if network in seed.EVM_NETWORKS:
            bu.EthAddrDecoder.DecodeAddr(address)  # checks the EIP-55 checksum
            assert address != address.lower() and currency in ("USDC", "USDT")
        elif network == "solana":
            assert len(bu.SolAddrDecoder.DecodeAddr(address)) == 32
        elif network == "tron":
            assert address.startswith("T") and currency == "USDT"
            bu.TrxAddrDecoder.DecodeAddr(address)
        elif network == "bitcoin":
            assert currency == "BTC"
            if address.startswith("bc1q"):
                bu.P2WPKHAddrDecoder.DecodeAddr(address, hrp="bc", wit_ver=0)
            elif address.startswith("bc1p"):
                bu.P2TRAddrDecoder.DecodeAddr(address, hrp="bc")
            else:
                assert address.startswith("1")
                bu.P2PKHAddrDecoder.DecodeAddr(address, net_ver=b"\x00")
        else:  # pragma: no cover
            pytest.fail(f"unexpected network {network}")
    assert {(c, n) for c, n, _ in seed.WALLET_MIX} == seen
    kinds = {a[:4] for a in wallets.filter(pl.col("network") == "bitcoin")["wallet_address"]}
    assert {"bc1q", "bc1p"} <= kinds and any(k.startswith("1") for k in kinds)


def test_earnings_are_integers_balanced_and_in_exponent(recipients):
    transactions, postings = seed.generate_earnings(recipients, "2026-01-31", seed=7)
    assert transactions.columns == ["txn_id", "kind"]
    assert postings.columns == seed.POSTING_COLUMNS
    assert transactions.height == N and postings.height == 2 * N
    assert transactions["txn_id"][0] == "earn:2026-01-31:U00000001"
    assert transactions["txn_id"].n_unique() == N
    assert set(transactions["kind"].unique()) == {"earning"}
    assert postings["amount_minor"].dtype == pl.Int64
    sums = postings.group_by("txn_id", "currency").agg(pl.col("amount_minor").sum())
    assert (sums["amount_minor"] == 0).all()
    earn = postings.filter(pl.col("account") == "earnings")
    assert (earn["amount_minor"] > 0).all()
    assert (postings.filter(pl.col("account") == "payable")["amount_minor"] < 0).all()
    # Currency of each posting is its recipient's.
    joined = earn.join(recipients.select("recipient_id", cur="currency"), on="recipient_id")
    assert (joined["currency"] == joined["cur"]).all()
    # Major-unit ranges per currency, through exact Decimal conversion.
    eur = earn.filter(pl.col("currency") == "EUR")["amount_minor"]
    assert 500 <= eur.min() and eur.max() <= 500_000
    median = eur.median()
    assert 3_000 < median < 30_000
    jpy = earn.filter(pl.col("currency") == "JPY")["amount_minor"]
    assert jpy.min() >= 500  # at least ~5 EUR in whole yen
    usdc = earn.filter(pl.col("currency").is_in(["USDC", "USDT"]))["amount_minor"]
    assert (usdc % 10_000 == 0).all()  # whole cents of a 6-decimal token
    btc = earn.filter(pl.col("currency") == "BTC")["amount_minor"]
    assert btc.len() > 0 and btc.max() < 10_000_000  # below 0.1 BTC
    for currency, amount in earn.select("currency", "amount_minor").head(2_000).iter_rows():
        decimal = money.to_decimal(amount, currency)
        assert money.to_minor(decimal, currency) == amount


def test_earnings_are_deterministic_per_period(recipients):
    head = recipients.head(100)
    a = seed.generate_earnings(head, "2026-02-01", seed=1)[1]
    b = seed.generate_earnings(head, "2026-02-01", seed=1)[1]
    c = seed.generate_earnings(head, "2026-02-02", seed=1)[1]
    assert a.equals(b)
    assert not a["amount_minor"].equals(c["amount_minor"])


@pytest.mark.parametrize("n", [0, 1, 2, 3, 5, 10, 12])
def test_a_small_platform_has_every_column_and_the_same_rows(recipients, n):
    """No payee in a country with local accounts (or with IBANs, or wallets) is no error."""
    small = seed.generate_recipients(n, seed=7)
    assert small.columns == seed.RECIPIENT_COLUMNS
    assert small.equals(recipients.head(n))
    priced = seed.with_payout_currencies(small, 7)
    transactions, postings = seed.generate_earnings(priced, "2026-01-05", 7)
    assert transactions.height == n
