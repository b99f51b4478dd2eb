"""Sanctions screening of payees: names, countries, regions and wallet addresses.

`load_lists()` builds (and caches) a `SanctionsIndex` over OFAC SDN, OFAC
consolidated non-SDN and the UN consolidated list (loaders in sanctions_lists.py).
`SanctionsIndex.screen_name` / `screen_frame` match normalised names (names.py)
through a token index with rare-token blocking and one-edit typo correction, then
score the few candidates with rapidfuzz; `screen_wallet` looks an address up in the
digital currency addresses of the SDN remarks. Decisions: clear | review | block.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from payouts.checks import names as names_mod
from payouts.checks.names import normalise_name
from payouts.checks.sanctions_lists import (
    SOURCES,
    ListEntry,
    ListSource,
    WalletListing,
    load_sources,
    source_files,
)

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

# Bump when the index layout or the matching rules change: it keys the cache.
INDEX_VERSION = "3"

DEFAULT_LISTS_DIR = Path(__file__).resolve().parents[3] / "include" / "sanctions"

CLEAR, REVIEW, BLOCK = "clear", "review", "block"
_SEVERITY = {CLEAR: 0, REVIEW: 1, BLOCK: 2}

# Comprehensively embargoed jurisdictions (US/EU programmes). Configurable per call.
DEFAULT_EMBARGOED_COUNTRIES: frozenset[str] = frozenset({"KP", "IR", "SY", "CU"})

# Embargoed regions that a country code cannot express (they sit inside UA), found
# in free address text. Latin, Ukrainian and Russian spellings.
EMBARGOED_REGIONS: dict[str, str] = {
    "crimea": r"crimea|krym|крим|крым|sevastopol|sebastopol|севастополь|simferopol|"
              r"симферополь|сімферополь|kerch|yalta|ялта|feodosi|evpatori|yevpatori|dzhankoi",
    "donetsk": r"donetsk|донецк|донецьк|\bdpr\b|\bdnr\b|\bднр\b|horlivka|gorlovka|"
               r"makiivka|makeevka",
    "luhansk": r"luhansk|lugansk|луганск|луганськ|\blpr\b|\blnr\b|\bлнр\b|alchevsk|"
               r"sievierodonetsk|severodonetsk",
}
_REGION_PATTERNS = {region: re.compile(pattern, re.IGNORECASE) for region, pattern in EMBARGOED_REGIONS.items()}
_ANY_REGION = "(?i)" + "|".join(f"(?:{pattern})" for pattern in EMBARGOED_REGIONS.values())


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Name-match score (0-100) at or above which a match is reviewed or blocked."""

    review: float = 88.0
    block: float = 95.0


@dataclass(slots=True)
class ScreeningResult:
    decision: str
    matches: list[dict[str, Any]] = field(default_factory=list)  # list_entry_id, name, score
    reasons: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"decision": self.decision, "matches": self.matches}


def _worst(*decisions: str) -> str:
    return max(decisions, key=_SEVERITY.__getitem__, default=CLEAR)


def normalise_wallet(address: str) -> str:
    """EVM hex and bech32 addresses compare case-insensitively; base58 does not."""
    address = address.strip().rstrip(".")
    lowered = address.lower()
    if lowered.startswith("0x") or lowered.startswith(("bc1", "tb1", "ltc1")):
        return lowered
    return address


def embargoed_region(address: str | None) -> str | None:
    """The embargoed region named in free address text ("Simferopol, Crimea"), if any."""
    if not address:
        return None
    for region, pattern in _REGION_PATTERNS.items():
        if pattern.search(address):
            return region
    return None


def _deletions(token: str) -> set[str]:
    return {token[:i] + token[i + 1:] for i in range(len(token))}


class SanctionsIndex:
    """The screening index: entries, their names as normalised keys, token postings."""

    # Blocking: a query is compared only with names sharing its rarest token (and its
    # second-rarest when that is rare too). One-edit typo correction applies to
    # tokens of at least this many letters.
    SECOND_TOKEN_MAX_DF = 40
    TYPO_MIN_LEN = 4
    # The subset path (query tokens all inside a longer list name, or the reverse)
    # only counts when the query carries a rare token: "ahmad hasan" is inside many
    # listed names and says little; "haniya ismail" is not.
    SUBSET_MAX_DF = 15
    SUBSET_PENALTY_PER_TOKEN = 3.0
    # A name one typo away from a listed name (5+ letters) is at least reviewed, however
    # short: one substituted letter in a 5-letter name is a ratio of only 80.
    ONE_EDIT_SCORE = 90.0
    ONE_EDIT_MIN_LEN = 5
    CHUNK = 200_000

    def __init__(self, entries: Sequence[ListEntry], wallets: Sequence[WalletListing]):
        import polars as pl

        self.entries = list(entries)
        self.entry_pos = {entry.list_entry_id: i for i, entry in enumerate(self.entries)}
        name_entry: list[int] = []
        name_text: list[str] = []
        name_key: list[str] = []
        seen: set[tuple[int, str]] = set()
        for i, entry in enumerate(self.entries):
            for text in (entry.name, *entry.aliases):
                key = normalise_name(text)
                if key and (i, key) not in seen:
                    seen.add((i, key))
                    name_entry.append(i)
                    name_text.append(text)
                    name_key.append(key)
        self.names = pl.DataFrame(
            {"name_idx": range(len(name_key)), "entry_idx": name_entry,
             "list_name": name_text, "name_key": name_key},
            schema={"name_idx": pl.UInt32, "entry_idx": pl.UInt32, "list_name": pl.String,
                    "name_key": pl.String},
        ).with_columns(ntok=pl.col("name_key").str.count_matches(" ").cast(pl.Int32) + 1)
        self.postings = (
            self.names.select("name_idx", vtoken=pl.col("name_key").str.split(" "))
            .explode("vtoken")
            .unique()
            .with_columns(df=pl.len().over("vtoken").cast(pl.UInt32))
        )
        vocab = self.postings.select("vtoken", "df").unique()
        self.token_df = dict(zip(vocab["vtoken"].to_list(), vocab["df"].to_list()))
        self.deletion_index: dict[str, list[str]] = {}
        for token in self.token_df:
            if len(token) >= self.TYPO_MIN_LEN:
                for key in _deletions(token) | {token}:
                    self.deletion_index.setdefault(key, []).append(token)
        self.wallets: dict[str, list[WalletListing]] = {}
        for wallet in wallets:
            self.wallets.setdefault(normalise_wallet(wallet.address), []).append(wallet)

    # --- name matching core ---------------------------------------------------

    def _vocab_matches(self, token: str) -> list[str]:
        """The token itself when indexed, else index tokens one edit away (a typo)."""
        if token in self.token_df:
            return [token]
        if len(token) < self.TYPO_MIN_LEN:
            return []
        from rapidfuzz.distance import OSA

        found: set[str] = set()
        for key in _deletions(token) | {token}:
            found.update(self.deletion_index.get(key, ()))
        # Deletion keys also pair tokens two edits apart; keep one edit (or a swap).
        return sorted(t for t in found if OSA.distance(t, token) <= 1)

    def match_keys(self, keys: pl.Series, thresholds: Thresholds = Thresholds()) -> pl.DataFrame:
        """Scored candidate names for normalised query keys.

        Returns (qid, name_idx, entry_idx, score) with score >= thresholds.review, where
        qid is the position in `keys`.
        """
        import polars as pl

        parts = []
        for start in range(0, len(keys), self.CHUNK):
            parts.append(self._match_chunk(keys.slice(start, self.CHUNK), start, thresholds))
        if not parts:
            return pl.DataFrame(schema={"qid": pl.UInt32, "name_idx": pl.UInt32,
                                        "entry_idx": pl.UInt32, "score": pl.Float64})
        return pl.concat(parts)

    def _match_chunk(self, keys: pl.Series, offset: int, thresholds: Thresholds) -> pl.DataFrame:
        import numpy as np
        import polars as pl
        from rapidfuzz import fuzz, process
        from rapidfuzz.distance import OSA

        queries = pl.DataFrame({"qkey": keys}).with_row_index("qid", offset=offset).with_columns(
            nq=pl.col("qkey").str.count_matches(" ").cast(pl.Int32) + 1
        ).filter(pl.col("qkey").str.len_bytes() > 0)
        query_tokens = queries.select("qid", "nq", token=pl.col("qkey").str.split(" ")).explode("token")
        distinct = query_tokens.select(pl.col("token").unique())["token"].to_list()
        corrections = pl.DataFrame(
            [(token, vtoken) for token in distinct for vtoken in self._vocab_matches(token)],
            schema={"token": pl.String, "vtoken": pl.String}, orient="row",
        )
        vocab_df = pl.DataFrame(
            {"vtoken": list(self.token_df), "df": list(self.token_df.values())},
            schema={"vtoken": pl.String, "df": pl.UInt32},
        )
        hits = (
            query_tokens.join(corrections, on="token")
            .join(vocab_df, on="vtoken")
            .with_columns(exact=pl.col("token") == pl.col("vtoken"))
        )
        # Rarest exact token of each query: gates the subset path.
        rarest_exact = hits.filter("exact").group_by("qid").agg(min_df=pl.col("df").min())
        # A query token's weight is the postings it would pull in (all its corrections).
        token_df = hits.group_by("qid", "token").agg(df=pl.col("df").sum(), nq=pl.col("nq").first())
        ranked = token_df.with_columns(rank=pl.col("df").rank("ordinal").over("qid"))
        blocking = ranked.filter(
            (pl.col("rank") == 1)
            | ((pl.col("rank") == 2) & ((pl.col("df") <= self.SECOND_TOKEN_MAX_DF) | (pl.col("nq") >= 3)))
        )
        pairs = (
            blocking.select("qid", "token")
            .join(hits.select("qid", "token", "vtoken"), on=["qid", "token"])
            .join(self.postings.select("vtoken", "name_idx"), on="vtoken")
            .select("qid", "name_idx")
            .unique()
            .join(queries, on="qid")
            .join(self.names.select("name_idx", "entry_idx", "name_key", "ntok"), on="name_idx")
            .filter((pl.col("ntok") - pl.col("nq")).abs() <= 3)
            .join(rarest_exact, on="qid", how="left")
        )
        if pairs.height == 0:
            return pl.DataFrame(schema={"qid": pl.UInt32, "name_idx": pl.UInt32,
                                        "entry_idx": pl.UInt32, "score": pl.Float64})
        qkeys = pairs["qkey"].to_list()
        ckeys = pairs["name_key"].to_list()
        sort_score = process.cpdist(qkeys, ckeys, scorer=fuzz.ratio, workers=-1, dtype=np.float32)
        set_score = process.cpdist(qkeys, ckeys, scorer=fuzz.token_set_ratio, workers=-1,
                                   dtype=np.float32)
        edits = process.cpdist(qkeys, ckeys, scorer=OSA.distance, workers=-1, dtype=np.int32)
        qlen = pairs["qkey"].str.len_chars().to_numpy()
        one_edit = (edits == 1) & (qlen >= self.ONE_EDIT_MIN_LEN)
        nq = pairs["nq"].to_numpy()
        nc = pairs["ntok"].to_numpy()
        min_df = pairs["min_df"].fill_null(1 << 30).to_numpy()
        subset_ok = (nq >= 2) & (nc >= 2) & (min_df <= self.SUBSET_MAX_DF)
        subset_score = set_score - self.SUBSET_PENALTY_PER_TOKEN * np.abs(nc - nq)
        score = np.where(subset_ok, np.maximum(sort_score, subset_score), sort_score)
        score = np.where(one_edit, np.maximum(score, self.ONE_EDIT_SCORE), score)
        return (
            pairs.select("qid", "name_idx", "entry_idx")
            .with_columns(score=pl.Series(score, dtype=pl.Float64).round(1))
            .filter(pl.col("score") >= thresholds.review)
        )

    # --- public API -------------------------------------------------------------

    def screen_name(
        self,
        name: str,
        country: str | None = None,
        address: str | None = None,
        recipient_id: str | None = None,
        *,
        allow: Iterable[tuple[str, str]] = (),
        thresholds: Thresholds = Thresholds(),
        embargoed: Iterable[str] = DEFAULT_EMBARGOED_COUNTRIES,
        limit: int = 5,
    ) -> ScreeningResult:
        """Screen one payee by name, country (ISO alpha-2) and free address text."""
        import polars as pl

        allowed = {entry_id for rid, entry_id in allow if rid == recipient_id} if recipient_id else set()
        scored = self.match_keys(pl.Series([normalise_name(name)]), thresholds)
        best: dict[str, dict[str, Any]] = {}
        for row in scored.join(self.names.select("name_idx", "list_name"), on="name_idx").iter_rows(named=True):
            entry = self.entries[row["entry_idx"]]
            if entry.list_entry_id not in best or row["score"] > best[entry.list_entry_id]["score"]:
                best[entry.list_entry_id] = {"list_entry_id": entry.list_entry_id,
                                             "name": row["list_name"], "score": row["score"]}
        reasons: list[str] = []
        matches = []
        for match in sorted(best.values(), key=lambda m: (-m["score"], m["list_entry_id"])):
            if match["list_entry_id"] in allowed:
                reasons.append(f"allow_listed:{match['list_entry_id']}")
            else:
                matches.append(match)
        decision = CLEAR
        if matches:
            decision = BLOCK if matches[0]["score"] >= thresholds.block else REVIEW
            reasons.insert(0, f"name_match:{matches[0]['list_entry_id']}:{matches[0]['score']}")
        if country and country.strip().upper() in {c.upper() for c in embargoed}:
            decision = BLOCK
            reasons.append(f"embargoed_country:{country.strip().upper()}")
        if region := embargoed_region(address):
            decision = BLOCK
            reasons.append(f"embargoed_region:{region}")
        return ScreeningResult(decision, matches[:limit], reasons)

    def screen_wallet(self, address: str, network: str | None = None) -> ScreeningResult:
        """Block an address published in the SDN remarks. EVM addresses compare
        case-insensitively (and on every EVM chain: the same key controls them)."""
        listings = self.wallets.get(normalise_wallet(address), [])
        if not listings:
            return ScreeningResult(CLEAR)
        matches = []
        for listing in listings:
            entry_pos = self.entry_pos.get(listing.list_entry_id)
            name = self.entries[entry_pos].name if entry_pos is not None else ""
            matches.append({"list_entry_id": listing.list_entry_id, "name": name, "score": 100.0})
        reasons = [f"listed_wallet:{listing.currency}:{listing.list_entry_id}" for listing in listings]
        return ScreeningResult(BLOCK, matches, reasons)

    def screen_frame(
        self,
        payees: pl.DataFrame,
        *,
        allow: Iterable[tuple[str, str]] = (),
        thresholds: Thresholds = Thresholds(),
        embargoed: Iterable[str] = DEFAULT_EMBARGOED_COUNTRIES,
    ) -> pl.DataFrame:
        """Screen payees (recipient_id, name, country, address?) in bulk.

        Returns (recipient_id, decision, top_entry_id, top_name, top_score), one row per
        input row, in input order. Names are normalised and deduplicated first.
        """
        import polars as pl

        payees = payees.with_row_index("_row")
        if "country" not in payees.columns:
            payees = payees.with_columns(country=pl.lit(None, pl.String))
        if "address" not in payees.columns:
            payees = payees.with_columns(address=pl.lit(None, pl.String))
        payees = payees.with_columns(qkey=names_mod.normalise_expr("name"))
        keys = payees.select(pl.col("qkey").unique(maintain_order=True))["qkey"]
        scored = self.match_keys(keys, thresholds).join(
            pl.DataFrame({"qkey": keys}).with_row_index("qid"), on="qid"
        )
        entry_ids = pl.DataFrame(
            {"entry_idx": range(len(self.entries)),
             "top_entry_id": [e.list_entry_id for e in self.entries]},
            schema={"entry_idx": pl.UInt32, "top_entry_id": pl.String},
        )
        matched = (
            payees.select("_row", "recipient_id", "qkey")
            .join(scored, on="qkey")
            .join(entry_ids, on="entry_idx")
        )
        allow_rows = list(allow)
        if allow_rows:
            allow_frame = pl.DataFrame(
                allow_rows, schema={"recipient_id": payees.schema["recipient_id"],
                                    "top_entry_id": pl.String}, orient="row")
            matched = matched.join(allow_frame, on=["recipient_id", "top_entry_id"], how="anti")
        top = (
            matched.sort("score", "top_entry_id", descending=[True, False])
            .unique("_row", keep="first")
            .join(self.names.select("name_idx", top_name="list_name"), on="name_idx")
            .select("_row", "top_entry_id", "top_name", top_score="score")
        )
        embargoed_set = sorted({c.upper() for c in embargoed})
        return (
            payees.select("_row", "recipient_id", "country", "address")
            .join(top, on="_row", how="left")
            .sort("_row")
            .with_columns(
                decision=pl.when(
                    pl.col("country").str.strip_chars().str.to_uppercase().is_in(embargoed_set)
                    | pl.col("address").str.contains(_ANY_REGION).fill_null(False)
                    | (pl.col("top_score") >= thresholds.block)
                )
                .then(pl.lit(BLOCK))
                .when(pl.col("top_score") >= thresholds.review)
                .then(pl.lit(REVIEW))
                .otherwise(pl.lit(CLEAR))
            )
            .select("recipient_id", "decision", "top_entry_id", "top_name", "top_score")
        )


# --- loading and caching ---------------------------------------------------------


def _cache_dir() -> Path:
    if configured := os.environ.get("PAYOUTS_SANCTIONS_CACHE_DIR"):
        return Path(configured)
    from payouts import settings

    return settings.data_dir() / "cache" / "sanctions"


def _cache_key(files: Sequence[Path]) -> str:
    digest = hashlib.sha256(INDEX_VERSION.encode())
    rules = (sorted(names_mod.VARIANTS.items()), sorted(names_mod.STOPWORDS))
    digest.update(repr(rules).encode())
    for path in files:
        digest.update(path.name.encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:32]


def load_lists(
    folder: Path | str = DEFAULT_LISTS_DIR,
    sources: Sequence[ListSource] = SOURCES,
    *,
    cache_dir: Path | str | None = None,
    use_cache: bool = True,
) -> SanctionsIndex:
    """The screening index over the lists in `folder`, cached by the files' hashes."""
    folder = Path(folder)
    files = source_files(folder, sources)
    if not files:
        raise FileNotFoundError(f"no sanctions list files in {folder}")
    cache_path = Path(cache_dir or _cache_dir()) / f"index-{_cache_key(files)}.pickle"
    if use_cache and cache_path.exists():
        try:
            with cache_path.open("rb") as handle:
                return pickle.load(handle)
        except Exception:  # a corrupt or incompatible cache is rebuilt, never trusted
            pass
    loaded = load_sources(folder, sources)
    index = SanctionsIndex(loaded.entries, loaded.wallets)
    if use_cache:
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_path.with_suffix(f".{os.getpid()}.tmp")
        with tmp.open("wb") as handle:
            pickle.dump(index, handle, protocol=pickle.HIGHEST_PROTOCOL)
        tmp.replace(cache_path)
    return index


# --- labelled evaluation -----------------------------------------------------------


def labelled_variants(index: SanctionsIndex, n: int, seed: int = 7) -> list[tuple[str, str, str]]:
    """(variant, list_entry_id, variant kind) for n listed primary names, one variant
    each, the kinds taken in turn (case, accents, order, middle name dropped, typo,
    transliteration, honorific or legal suffix)."""
    import random

    rng = random.Random(seed)
    sample = rng.sample(index.entries, min(n, len(index.entries)))
    variants = []
    for i, entry in enumerate(sample):
        kinds = list(names_mod.VARIANT_KINDS[i % len(names_mod.VARIANT_KINDS):]) + list(
            names_mod.VARIANT_KINDS[: i % len(names_mod.VARIANT_KINDS)])
        for kind in kinds:
            variant = names_mod.name_variant(entry.name, kind, rng, person=entry.kind == "individual")
            if variant:
                variants.append((variant, entry.list_entry_id, kind))
                break
    return variants


def common_names(index: SanctionsIndex, n: int, seed: int = 11) -> list[str]:
    """n common given + family name pairs across cultures, none listed as such."""
    import random

    rng = random.Random(seed)
    listed = set(index.names["name_key"].to_list())
    given = sorted(set(names_mod.COMMON_GIVEN_NAMES))
    family = sorted(set(names_mod.COMMON_FAMILY_NAMES))
    pairs = [f"{g.title()} {f.title()}" for g in given for f in family]
    rng.shuffle(pairs)
    if len(pairs) < n:  # add a middle name for more
        pairs += [f"{rng.choice(given).title()} {p}" for p in pairs[: n - len(pairs)]]
    return [p for p in pairs if normalise_name(p) not in listed][:n]


def evaluate(index: SanctionsIndex, n_variants: int = 2000, n_common: int = 10000,
             seed: int = 7, thresholds: Thresholds = Thresholds()) -> dict[str, Any]:
    """Recall on listed-name variants and false positive rate on common names."""
    import polars as pl

    variants = labelled_variants(index, n_variants, seed)
    commons = common_names(index, n_common, seed + 1)
    names = [v for v, _, _ in variants] + commons
    frame = pl.DataFrame({"recipient_id": [str(i) for i in range(len(names))], "name": names})
    screened = index.screen_frame(frame, thresholds=thresholds)
    flagged = (screened["decision"] != CLEAR).to_list()
    top = screened["top_entry_id"].to_list()
    hit = flagged[: len(variants)]
    by_kind: dict[str, list[bool]] = {}
    for (_, _, kind), found in zip(variants, hit):
        by_kind.setdefault(kind, []).append(found)
    false_positives = [(commons[i], top[len(variants) + i]) for i, f in enumerate(flagged[len(variants):]) if f]
    return {
        "variants": len(variants),
        "recall": sum(hit) / len(variants),
        "recall_by_kind": {k: round(sum(v) / len(v), 4) for k, v in sorted(by_kind.items())},
        "missed": [v for v, found in zip(variants, hit) if not found],
        "common_names": len(commons),
        "false_positive_rate": len(false_positives) / len(commons),
        "false_positives": false_positives,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """`payouts screen NAME [--country CC] [--address TEXT]`: one JSON object on stdout."""
    parser = argparse.ArgumentParser(prog="payouts screen", description="Screen a name against sanctions lists.")
    parser.add_argument("name")
    parser.add_argument("--country", default=None, help="ISO 3166 alpha-2")
    parser.add_argument("--address", default=None, help="free address text")
    parser.add_argument("--lists", default=str(DEFAULT_LISTS_DIR), help="folder of list files")
    args = parser.parse_args(argv)
    result = load_lists(args.lists).screen_name(args.name, country=args.country, address=args.address)
    sys.stdout.write(json.dumps(result.to_json(), ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
