"""Sanctions screening against the real OFAC and UN list files in include/sanctions."""

from __future__ import annotations

import json
import time
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from payouts.checks import sanctions, sanctions_lists
from payouts.checks.names import normalise_expr, normalise_name
from payouts.checks.sanctions import BLOCK, CLEAR, REVIEW, evaluate, load_lists


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("sanctions-cache")


@pytest.fixture(scope="module")
def index(cache_dir):
    return load_lists(cache_dir=cache_dir)


# --- names ---------------------------------------------------------------------


def test_normalise_folds_case_accents_order_variants_and_honorifics():
    assert normalise_name("Sheikh Mohamed AL-HASSAN") == normalise_name("hasan el Muhammad")
    assert normalise_name("Dr. José Müller") == "jose muller"
    assert normalise_name("Yousef Abdel Husain") == normalise_name("HUSAYN, Yusuf Abdul")
    assert normalise_name("GAZPROM NEFT, OOO") == normalise_name("Gazprom-Neft LLC")


def test_normalise_expr_matches_normalise_name():
    samples = ["Sheikh Mohamed AL-HASSAN", "Dr. José Müller", "O'BRIEN, Seán", "", "Straße GmbH",
               "HANIYA, Ismail Abdul Salah", "  Łukasz   Żółć  "]
    got = pl.DataFrame({"name": samples}).select(key=normalise_expr("name"))["key"].to_list()
    assert got == [normalise_name(s) for s in samples]


# --- loading -------------------------------------------------------------------


def test_loader_parses_sdn_consolidated_and_un_lists(index):
    lists = {e.list for e in index.entries}
    assert lists == {"ofac_sdn", "ofac_cons", "un"}
    cuba_bank = index.entries[index.entry_pos["OFAC-SDN:306"]]
    assert cuba_bank.name == "BANCO NACIONAL DE CUBA"
    assert cuba_bank.kind == "entity" and cuba_bank.programs == ("CUBA",)
    assert "NATIONAL BANK OF CUBA" in cuba_bank.aliases
    assert {"CH", "ES", "JP", "PA"} <= set(cuba_bank.countries)
    badege = index.entries[index.entry_pos["UN:CDi.001"]]
    assert (badege.name, badege.kind, badege.countries) == ("ERIC BADEGE", "individual", ("CD", "RW"))
    houthis = index.entries[index.entry_pos["UN:YEe.001"]]
    assert "ANSARALLAH" in houthis.aliases
    kinds = {e.kind for e in index.entries}
    assert kinds == {"individual", "entity", "vessel", "aircraft"}


def test_wallets_come_from_sdn_remarks_and_the_overflow_file(index):
    currencies = {w.currency for ws in index.wallets.values() for w in ws}
    assert {"XBT", "ETH"} <= currencies
    assert len(index.wallets) >= 200
    # An address published only in the remarks overflow file (sdn_comments.csv).
    assert "0x67d40ee1a85bf4a4bb7ffae16de985e8427b6b45" in index.wallets


def test_index_is_cached_by_file_hashes(cache_dir, index):
    assert list(cache_dir.glob("index-*.pickle"))
    started = time.perf_counter()
    cached = load_lists(cache_dir=cache_dir)
    assert time.perf_counter() - started < 2
    assert len(cached.entries) == len(index.entries)


def test_a_new_list_format_plugs_in_through_the_registry(tmp_path):
    (tmp_path / "demo.txt").write_text("D-1|Zebulon Quackenbush|individual|XX\n")

    @sanctions_lists.register_format("demo_pipe")
    def load_demo(folder, files, list_name):
        loaded = sanctions_lists.LoadedList()
        for line in (folder / files["rows"]).read_text().splitlines():
            ref, name, kind, _ = line.split("|")
            loaded.entries.append(sanctions_lists.ListEntry(f"DEMO:{ref}", list_name, name, kind))
        return loaded

    try:
        source = sanctions_lists.ListSource("demo", "demo_pipe", {"rows": "demo.txt"})
        demo = load_lists(tmp_path, [source], use_cache=False)
        result = demo.screen_name("Quackenbush Zebulon")
        assert result.decision == BLOCK
        assert result.matches[0]["list_entry_id"] == "DEMO:D-1"
    finally:
        del sanctions_lists.LIST_FORMATS["demo_pipe"]


# --- screening: concrete cases ---------------------------------------------------


def _ids(result):
    return [m["list_entry_id"] for m in result.matches]


def test_real_sdn_name_blocks(index):
    result = index.screen_name("Banco Nacional de Cuba")
    assert result.decision == BLOCK
    assert result.matches[0] == {"list_entry_id": "OFAC-SDN:306", "name": "BANCO NACIONAL DE CUBA",
                                 "score": 100.0}


def test_real_un_name_blocks(index):
    result = index.screen_name("Eric Badege")
    assert result.decision == BLOCK
    assert "UN:CDi.001" in _ids(result)


def test_alias_is_found(index):
    assert _ids(index.screen_name("National Bank of Cuba")) == ["OFAC-SDN:306"]
    assert _ids(index.screen_name("Ansarallah")) == ["UN:YEe.001"]


def test_word_order_swap_is_found(index):
    assert "UN:CDi.001" in _ids(index.screen_name("BADEGE Eric"))
    assert "OFAC-SDN:306" in _ids(index.screen_name("Cuba Nacional Banco"))


def test_typo_and_transliteration_are_reviewed_or_blocked(index):
    typo = index.screen_name("Banko Nacional de Cuba")
    assert typo.decision in (REVIEW, BLOCK) and _ids(typo)[0] == "OFAC-SDN:306"
    assert "OFAC-CONS:9639" in _ids(index.screen_name("Ismaeel Abdel Salah Haniyya"))


def test_crimea_address_blocks(index):
    result = index.screen_name("Anna Petrenko", country="UA", address="vul. Pushkina 5, Simferopol, Crimea")
    assert result.decision == BLOCK
    assert "embargoed_region:crimea" in result.reasons
    assert index.screen_name("Anna Petrenko", country="UA", address="Kyiv").decision == CLEAR
    assert sanctions.embargoed_region("Donetsk People's Republic") == "donetsk"
    assert sanctions.embargoed_region("LNR, Alchevsk") == "luhansk"


def test_embargoed_country_blocks(index):
    result = index.screen_name("Anna Petrenko", country="kp")
    assert result.decision == BLOCK and result.reasons == ["embargoed_country:KP"]
    assert index.screen_name("Anna Petrenko", country="KP", embargoed={"IR"}).decision == CLEAR


def test_listed_wallet_from_sdn_remarks_blocks(index):
    # sdn.csv, ent_num 26137 (KHORASHADIZADEH, Ali): "Digital Currency Address - XBT 149w62rY..."
    btc = index.screen_wallet("149w62rY42aZBox8fGcmqNsXUzSStKeq8C")
    assert btc.decision == BLOCK and _ids(btc) == ["OFAC-SDN:26137"]
    # sdn_comments.csv: an ETH address, compared case-insensitively.
    eth = index.screen_wallet("0x67D40EE1A85BF4A4BB7FFAE16DE985E8427B6B45", network="polygon")
    assert eth.decision == BLOCK
    # base58 is case-sensitive: another case is another address.
    assert index.screen_wallet("149W62RY42AZBOX8FGCMQNSXUZSSTKEQ8C").decision == CLEAR
    assert index.screen_wallet("0x0000000000000000000000000000000000000001").decision == CLEAR


def test_allow_listed_recipient_clears(index):
    allow = {("rcp-1", "OFAC-SDN:306")}
    cleared = index.screen_name("Banco Nacional de Cuba", recipient_id="rcp-1", allow=allow)
    assert cleared.decision == CLEAR and cleared.reasons == ["allow_listed:OFAC-SDN:306"]
    other = index.screen_name("Banco Nacional de Cuba", recipient_id="rcp-2", allow=allow)
    assert other.decision == BLOCK


def test_common_names_clear(index):
    for name in ("Emily Johnson", "Anna Kowalski", "Hiroshi Tanaka", "Thomas Müller"):
        assert index.screen_name(name).decision == CLEAR, name


def test_screen_frame(index):
    payees = pl.DataFrame({
        "recipient_id": ["r1", "r2", "r3", "r4", "r5", "r6"],
        "name": ["Emily Johnson", "BADEGE, Eric", "Emily Johnson", "Banco Nacional de Cuba",
                 "Banco Nacional de Cuba", "Banko Nacional de Cuba"],
        "country": ["DE", "DE", "IR", "DE", "DE", None],
        "address": [None, None, None, None, None, "Sevastopol"],
    })
    got = index.screen_frame(payees, allow={("r5", "OFAC-SDN:306")})
    expected = pl.DataFrame({
        "recipient_id": ["r1", "r2", "r3", "r4", "r5", "r6"],
        "decision": [CLEAR, BLOCK, BLOCK, BLOCK, CLEAR, BLOCK],
        "top_entry_id": [None, "OFAC-SDN:15718", None, "OFAC-SDN:306", None, "OFAC-SDN:306"],
        "top_name": [None, "BADEGE, Eric", None, "BANCO NACIONAL DE CUBA", None, "BANCO NACIONAL DE CUBA"],
    })
    assert_frame_equal(got.drop("top_score"), expected)
    assert got["top_score"].to_list()[:2] == [None, 100.0]


def test_cli_prints_one_json_object(capsys):
    assert sanctions.main(["Eric Badege", "--country", "DE"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["decision"] == BLOCK
    assert set(out) == {"decision", "matches"}
    assert {"list_entry_id": "UN:CDi.001", "name": "ERIC BADEGE", "score": 100.0} in out["matches"]


# --- labelled evaluation ------------------------------------------------------------


def test_recall_and_false_positive_rate_on_a_sample(index):
    report = evaluate(index, n_variants=500, n_common=2000, seed=21)
    assert report["variants"] >= 490 and report["common_names"] == 2000
    assert report["recall"] >= 0.98, report["missed"]
    assert report["false_positive_rate"] <= 0.005, report["false_positives"]
