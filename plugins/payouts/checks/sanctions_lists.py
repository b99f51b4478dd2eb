"""Sanctions list loaders: publishers' files -> `ListEntry` records and wallet listings.

Each list format has one loader function in `LIST_FORMATS`, keyed by format name;
`SOURCES` says which files of a folder are read by which format. OFAC's legacy
CSV set (SDN and consolidated non-SDN) and the UN Security Council XML are
implemented. Another publisher plugs in the same way:

    @register_format("eu_fsf_xml")            # EU Financial Sanctions Files
    def load_eu_fsf(folder: Path, files: Mapping[str, str], list_name: str) -> LoadedList:
        ...  # <sanctionEntity logicalId> -> ListEntry("EU:<logicalId>", ...)

    SOURCES += (ListSource("eu", "eu_fsf_xml", {"xml": "eu_fsf.xml"}),)

(UK: "uk_sanctions_list_xml" over the FCDO UK Sanctions List file, ids "UK:<UniqueID>".)
A loader returns entries with ISO alpha-2 countries (use `country_code`) and
any digital currency addresses; the index, cache and screening need nothing else.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

KINDS = ("individual", "entity", "vessel", "aircraft")
OFAC_NULL = "-0-"


@dataclass(frozen=True, slots=True)
class ListEntry:
    list_entry_id: str  # "OFAC-SDN:36", "OFAC-CONS:9639", "UN:QDi.001"
    list: str  # "ofac_sdn" | "ofac_cons" | "un" | ...
    name: str
    kind: str  # one of KINDS
    programs: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()  # ISO 3166 alpha-2
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class WalletListing:
    currency: str  # as the publisher writes it: XBT, ETH, USDT, ...
    address: str  # as published
    list_entry_id: str


@dataclass(slots=True)
class LoadedList:
    entries: list[ListEntry] = field(default_factory=list)
    wallets: list[WalletListing] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ListSource:
    list_name: str
    format: str
    files: Mapping[str, str]  # role -> file name inside the folder


Loader = Callable[[Path, Mapping[str, str], str], LoadedList]
LIST_FORMATS: dict[str, Loader] = {}


def register_format(name: str) -> Callable[[Loader], Loader]:
    def register(loader: Loader) -> Loader:
        LIST_FORMATS[name] = loader
        return loader

    return register


SOURCES: tuple[ListSource, ...] = (
    ListSource(
        "ofac_sdn",
        "ofac_legacy_csv",
        {"prim": "ofac_sdn.csv", "alt": "ofac_alt.csv", "add": "ofac_add.csv",
         "comments": "ofac_sdn_comments.csv"},
    ),
    ListSource(
        "ofac_cons",
        "ofac_legacy_csv",
        {"prim": "ofac_cons_prim.csv", "alt": "ofac_cons_alt.csv", "add": "ofac_cons_add.csv",
         "comments": "ofac_cons_comments.csv"},
    ),
    ListSource("un", "un_xml", {"xml": "un_consolidated.xml"}),
)

_ID_PREFIX = {"ofac_sdn": "OFAC-SDN", "ofac_cons": "OFAC-CONS"}


def read_text(path: Path) -> str:
    """A publisher's text file: UTF-8 where it decodes, else cp1252; no Ctrl-Z EOF byte."""
    raw = path.read_bytes().rstrip(b"\x1a\r\n")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def _ofac_value(value: str) -> str:
    value = value.strip()
    return "" if value in (OFAC_NULL, "-0") else value


def _ofac_rows(path: Path) -> Iterable[list[str]]:
    if not path.exists():
        return []
    return (row for row in csv.reader(io.StringIO(read_text(path))) if row and row[0].strip())


# --- countries -----------------------------------------------------------------

# Publisher spellings that pycountry does not know. Regions map to the country
# the list gives them (Crimea is screened as a region, see sanctions.py).
_COUNTRY_OVERRIDES = {
    "burma": "MM", "korea, north": "KP", "north korea": "KP", "korea, south": "KR",
    "south korea": "KR", "democratic people's republic of korea": "KP", "iran": "IR",
    "russia": "RU", "syria": "SY", "laos": "LA", "vietnam": "VN", "taiwan": "TW",
    "palestinian": "PS", "west bank": "PS", "region: gaza": "PS", "gaza": "PS",
    "state of palestine": "PS", "congo, democratic republic of the": "CD",
    "democratic republic of the congo": "CD", "congo, republic of the": "CG",
    "the gambia": "GM", "gambia, the": "GM", "bahamas, the": "BS", "cote d ivoire": "CI",
    "man, isle of": "IM", "virgin islands, british": "VG", "british virgin islands": "VG",
    "kosovo": "XK", "turkey": "TR", "türkiye": "TR", "netherlands antilles": "AN",
    "czech republic": "CZ", "bolivia": "BO", "venezuela": "VE", "tanzania": "TZ",
    "region: crimea": "UA", "region: kafia kingi": "SS", "region: northern mali": "ML",
    "china, hong kong special administrative region": "HK", "hong kong": "HK",
    "united kingdom": "GB", "united states": "US", "macau": "MO", "moldova": "MD",
    "micronesia, federated states of": "FM", "brunei": "BN", "cape verde": "CV",
    "swaziland": "SZ", "macedonia": "MK", "north macedonia": "MK",
}
_country_lookup: dict[str, str] | None = None


def country_code(name: str) -> str | None:
    """ISO alpha-2 for a country as a list writes it ("Korea, North", "Iran (Islamic
    Republic of)"), or None when no country can be derived ("undetermined")."""
    global _country_lookup
    if _country_lookup is None:
        import pycountry

        lookup: dict[str, str] = {}
        for country in pycountry.countries:
            for attr in ("name", "official_name", "common_name"):
                value = getattr(country, attr, None)
                if value:
                    lookup[value.casefold()] = country.alpha_2
        lookup.update(_COUNTRY_OVERRIDES)
        _country_lookup = lookup
    key = " ".join(name.split()).casefold().strip(" .")
    if not key:
        return None
    if len(key) == 2 and key.upper() in _country_lookup.values():
        return key.upper()
    return _country_lookup.get(key)


# --- digital currency addresses ------------------------------------------------

_WALLET = re.compile(r"Digital Currency Address - ([A-Za-z0-9]+)\s+([A-Za-z0-9]+)")


def wallet_listings(remarks: str, list_entry_id: str) -> list[WalletListing]:
    """'Digital Currency Address - XBT 1A1z...; ... - ETH 0x...' in OFAC remarks."""
    return [
        WalletListing(currency.upper(), address, list_entry_id)
        for currency, address in _WALLET.findall(remarks)
    ]


# --- OFAC legacy CSV (SDN and consolidated non-SDN) -----------------------------


@register_format("ofac_legacy_csv")
def load_ofac_legacy_csv(folder: Path, files: Mapping[str, str], list_name: str) -> LoadedList:
    prefix = _ID_PREFIX.get(list_name, list_name.upper())
    aliases: dict[str, list[str]] = {}
    for row in _ofac_rows(folder / files["alt"]):
        if len(row) >= 4 and _ofac_value(row[3]):
            aliases.setdefault(row[0].strip(), []).append(_ofac_value(row[3]))
    countries: dict[str, list[str]] = {}
    for row in _ofac_rows(folder / files["add"]):
        if len(row) >= 5 and (code := country_code(_ofac_value(row[4]))):
            found = countries.setdefault(row[0].strip(), [])
            if code not in found:
                found.append(code)
    # The remarks overflow file continues the remarks of sdn.csv for one ent_num.
    comments: dict[str, str] = {}
    for row in _ofac_rows(folder / files.get("comments", "")) if files.get("comments") else []:
        if len(row) >= 2:
            comments[row[0].strip()] = comments.get(row[0].strip(), "") + row[1]

    loaded = LoadedList()
    seen: set[str] = set()
    for row in _ofac_rows(folder / files["prim"]):
        if len(row) < 12:
            continue
        ent_num = row[0].strip()
        entry_id = f"{prefix}:{ent_num}"
        seen.add(ent_num)
        kind = _ofac_value(row[2]).lower() or "entity"
        entry_countries = list(countries.get(ent_num, ()))
        if kind == "vessel" and (flag := country_code(_ofac_value(row[9]))):
            entry_countries.append(flag) if flag not in entry_countries else None
        loaded.entries.append(
            ListEntry(
                list_entry_id=entry_id,
                list=list_name,
                name=_ofac_value(row[1]),
                kind=kind if kind in KINDS else "entity",
                programs=tuple(p.strip("[] ") for p in _ofac_value(row[3]).split("] [") if p.strip("[] ")),
                countries=tuple(entry_countries),
                aliases=tuple(aliases.get(ent_num, ())),
            )
        )
        remarks = _ofac_value(row[11]) + comments.get(ent_num, "")
        loaded.wallets.extend(wallet_listings(remarks, entry_id))
    # Overflow remarks of entries that this (older) primary file does not carry.
    for ent_num, remarks in comments.items():
        if ent_num not in seen:
            loaded.wallets.extend(wallet_listings(remarks, f"{prefix}:{ent_num}"))
    return loaded


# --- UN Security Council consolidated list XML ----------------------------------


@register_format("un_xml")
def load_un_xml(folder: Path, files: Mapping[str, str], list_name: str) -> LoadedList:
    from lxml import etree

    path = folder / files["xml"]
    loaded = LoadedList()
    if not path.exists():
        return loaded
    root = etree.parse(str(path)).getroot()

    def text(node, tag: str) -> str:
        value = node.findtext(tag)
        return " ".join(value.split()) if value else ""

    for kind, tag in (("individual", "INDIVIDUAL"), ("entity", "ENTITY")):
        for record in root.iter(tag):
            reference = text(record, "REFERENCE_NUMBER") or text(record, "DATAID")
            name = " ".join(
                part for part in (text(record, t) for t in
                                  ("FIRST_NAME", "SECOND_NAME", "THIRD_NAME", "FOURTH_NAME"))
                if part
            )
            aliases = []
            for alias in record.iter(f"{tag}_ALIAS"):
                alias_name = text(alias, "ALIAS_NAME")
                if alias_name and alias_name != name and alias_name not in aliases:
                    aliases.append(alias_name)
            codes: list[str] = []
            places = [v.text or "" for v in record.iterfind("NATIONALITY/VALUE")]
            places += [a.findtext("COUNTRY") or "" for a in record.iter(f"{tag}_ADDRESS")]
            for place in places:
                if (code := country_code(place)) and code not in codes:
                    codes.append(code)
            loaded.entries.append(
                ListEntry(
                    list_entry_id=f"UN:{reference}",
                    list=list_name,
                    name=name,
                    kind=kind,
                    programs=tuple(filter(None, [text(record, "UN_LIST_TYPE")])),
                    countries=tuple(codes),
                    aliases=tuple(aliases),
                )
            )
    return loaded


def load_sources(folder: Path, sources: Iterable[ListSource] = SOURCES) -> LoadedList:
    """Every configured list whose files are present in `folder`."""
    merged = LoadedList()
    for source in sources:
        loader = LIST_FORMATS[source.format]
        first = next(iter(source.files.values()))
        if not (folder / first).exists():
            continue
        loaded = loader(folder, source.files, source.list_name)
        merged.entries.extend(loaded.entries)
        merged.wallets.extend(loaded.wallets)
    return merged


def source_files(folder: Path, sources: Iterable[ListSource] = SOURCES) -> list[Path]:
    return sorted(
        folder / name for source in sources for name in source.files.values()
        if (folder / name).exists()
    )
