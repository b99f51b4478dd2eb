"""The synthetic platform: recipients across ~100 countries and their earnings.

Every generated destination is valid for its scheme (IBAN mod-97 and national
check digits, ABA/CLABE/NZ/NUBAN check digits, checksummed crypto addresses)
and unique across recipients. Generation is vectorised in numpy, keyed by
(seed, row index), so row i never depends on n: a larger platform extends a
smaller one. Only wallet rows (~8%) derive keys one by one, with bip_utils.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import time
from dataclasses import dataclass
from functools import cache
from fractions import Fraction
from decimal import Decimal
from typing import TYPE_CHECKING, Callable

import numpy as np

from payouts.core import ledger, money

if TYPE_CHECKING:
    import polars as pl
    import psycopg

RECIPIENT_COLUMNS = [
    "recipient_id", "name", "country", "currency", "dest_kind", "iban", "bic",
    "account_number", "routing_code", "wallet_address", "network", "kyc_status",
]
POSTING_COLUMNS = ["txn_id", "account", "recipient_id", "currency", "amount_minor"]
WALLET_SHARE = 0.08
MAX_RECIPIENTS = 99_999_999  # 'U' + 8 digits
FAST_LOAD_MIN_ROWS = 50_000  # below this the foreign-key triggers cost under two seconds

# ----------------------------------------------------------------------------
# Countries: (code, weight, currency or None for the IBAN-derived default, name region)
# Weights are relative; every country keeps a floor so a 50k platform has them all.
# ----------------------------------------------------------------------------

EUROZONE = frozenset(
    "AT BE BG CY DE EE ES FI FR GR HR IE IT LT LU LV MT NL PT SI SK "
    "AD MC SM VA ME XK AX BL GF GP MF MQ PM RE YT TF".split()
)
# IBAN countries paid in their own currency where payouts.core.money knows it.
IBAN_CURRENCY = {
    "GB": "GBP", "GG": "GBP", "IM": "GBP", "JE": "GBP", "GI": "GBP", "FK": "GBP",
    "CH": "CHF", "LI": "CHF", "SE": "SEK", "NO": "NOK", "DK": "DKK", "FO": "DKK", "GL": "DKK",
    "PL": "PLN", "CZ": "CZK", "HU": "HUF", "RO": "RON", "IS": "ISK", "AE": "AED", "SA": "SAR",
    "TR": "TRY", "IL": "ILS", "BH": "BHD", "KW": "KWD", "JO": "JOD", "QA": "QAR", "EG": "EGP",
    "PK": "PKR", "UA": "UAH", "GE": "GEL", "RS": "RSD", "BA": "BAM", "MK": "MKD", "AL": "ALL",
    "MD": "MDL", "AZ": "AZN", "KZ": "KZT", "CR": "CRC", "DO": "DOP", "GT": "GTQ", "BY": "BYN",
    "TN": "TND", "BR": "BRL", "SV": "USD", "VG": "USD", "TL": "USD", "LC": "USD", "HN": "USD",
    "NI": "USD", "LB": "USD", "IQ": "USD", "PS": "USD", "OM": "USD", "SC": "USD", "MU": "USD",
    "MN": "USD", "LY": "USD", "SO": "USD", "ST": "EUR", "SD": "USD", "YE": "USD", "RU": "EUR",
    "BI": "USD", "DJ": "USD", "MR": "EUR", "NC": "EUR", "PF": "EUR", "WF": "EUR",
}
# Heavy hitters first; the rest get the floor weight.
_IBAN_WEIGHTS = {
    "DE": 14, "FR": 10, "ES": 7, "IT": 7, "NL": 5, "GB": 9, "BE": 2.5, "PT": 2, "AT": 2,
    "IE": 1.5, "PL": 2.5, "SE": 1.5, "CH": 1.5, "DK": 1, "NO": 1, "FI": 1, "CZ": 1, "RO": 1,
    "GR": 1, "HU": 0.7, "BG": 0.5, "HR": 0.5, "SK": 0.5, "SI": 0.4, "LT": 0.4, "LV": 0.3,
    "EE": 0.3, "LU": 0.3, "TR": 1, "AE": 0.8, "BR": 2, "SA": 0.4, "IL": 0.4, "UA": 0.5,
    "IS": 0.2, "CY": 0.2, "MT": 0.2, "RS": 0.3, "PK": 0.4, "EG": 0.4,
}
_LOCAL_WEIGHTS = {
    "US": 12, "CA": 2, "AU": 1.5, "IN": 3, "JP": 1.5, "SG": 0.6, "MX": 1.5, "ZA": 0.6,
    "NZ": 0.4, "HK": 0.5, "KR": 0.8, "NG": 0.8, "KE": 0.3, "PH": 0.8, "ID": 0.8, "TH": 0.4,
    "MY": 0.4, "CN": 0.5, "CL": 0.3, "CO": 0.4, "PE": 0.2, "AR": 0.4, "VN": 0.3,
}
_LOCAL_CURRENCY = {
    "US": "USD", "CA": "CAD", "AU": "AUD", "IN": "INR", "JP": "JPY", "SG": "SGD", "MX": "MXN",
    "ZA": "ZAR", "NZ": "NZD", "HK": "HKD", "KR": "KRW", "NG": "NGN", "KE": "KES", "PH": "PHP",
    "ID": "IDR", "TH": "THB", "MY": "MYR", "CN": "CNY", "CL": "CLP", "CO": "COP", "PE": "PEN",
    "AR": "ARS", "VN": "VND",
}
# Sanctioned or hard-to-serve IBAN countries stay rare, but present: screening needs them.
_RARE = {"RU": 0.02, "BY": 0.02, "IQ": 0.02, "LY": 0.02, "SD": 0.02, "YE": 0.02, "SO": 0.02}
FLOOR_WEIGHT = 0.06
# Territories the registry lists apart, whose accounts carry their parent's IBAN in practice
# (a bank in Réunion issues FR76... IBANs): their residents are not generated separately.
_IBAN_OF_PARENT = frozenset("BL GF GP MF MQ NC PF PM RE TF WF YT GG JE IM AX".split())

_REGION = {
    **dict.fromkeys("DE AT CH LI LU".split(), "de"),
    **dict.fromkeys("FR BE MC BL GF GP MF MQ PM RE YT TF NC PF WF SN CI BJ BF ML NE TG MR DJ BI".split(), "fr"),
    **dict.fromkeys("ES AD MX CL CO PE AR CR DO GT SV HN NI".split(), "es"),
    **dict.fromkeys("IT SM VA MT".split(), "it"),
    **dict.fromkeys("NL".split(), "nl"),
    **dict.fromkeys("GB IE GG IM JE GI FK US CA AU NZ VG LC ZA KE NG".split(), "en"),
    **dict.fromkeys("PT BR TL ST".split(), "pt"),
    **dict.fromkeys("PL CZ SK HU RO BG HR SI RS BA ME MK AL XK".split(), "cee"),
    **dict.fromkeys("SE NO DK FI IS FO GL AX EE LV LT".split(), "nordic"),
    **dict.fromkeys("UA RU BY MD GE AZ KZ MN".split(), "ru"),
    **dict.fromkeys("TR CY GR".split(), "tr"),
    **dict.fromkeys("AE SA BH KW JO QA EG IQ LB PS OM LY SD YE SO TN PK IL".split(), "ar"),
    **dict.fromkeys("IN".split(), "in"),
    **dict.fromkeys("JP".split(), "jp"),
    **dict.fromkeys("KR".split(), "kr"),
    **dict.fromkeys("CN HK SG MY".split(), "cn"),
    **dict.fromkeys("PH ID TH VN".split(), "sea"),
}

_NAMES: dict[str, tuple[str, str]] = {
    "de": ("Lukas Leon Finn Jonas Paul Felix Maximilian Anna Lena Marie Sophie Hannah Lea Emma Jürgen Uwe Sabine Ursula Jörg Björn",
           "Müller Schmidt Schneider Fischer Weber Meyer Wagner Becker Schulz Hoffmann Schäfer Koch Bauer Richter Klein Wolf Schröder Neumann Schwarz Zimmermann Krüger Hofmann Groß Köhler"),
    "fr": ("Léa Chloé Manon Camille Inès Louise Jade Hugo Lucas Théo Louis Raphaël Gabriel Arthur Mathéo Zoé Noémie Benoît Hélène Jérôme",
           "Martin Bernard Dubois Thomas Robert Richard Petit Durand Leroy Moreau Simon Laurent Lefèvre Michel Garcia David Bertrand Roux Fontaine Girard Mercier Boucher"),
    "es": ("Lucía Sofía Martina María Paula Valentina José Hugo Martín Alejandro Pablo Álvaro Adrián Mateo Javier Nicolás Camila Ximena Andrés Begoña",
           "García Rodríguez González Fernández López Martínez Sánchez Pérez Gómez Martín Jiménez Ruiz Hernández Díaz Moreno Muñoz Álvarez Romero Castillo Ortiz Peña Núñez"),
    "it": ("Giulia Sofia Aurora Alice Ginevra Emma Giorgia Leonardo Francesco Alessandro Lorenzo Mattia Andrea Gabriele Riccardo Niccolò Tommaso Chiara Federica Luca",
           "Rossi Russo Ferrari Esposito Bianchi Romano Colombo Ricci Marino Greco Bruno Gallo Conti De Luca Mancini Costa Giordano Rizzo Lombardi Moretti"),
    "nl": ("Daan Sem Lucas Levi Finn Milan Jesse Noah Emma Julia Mila Tess Sophie Zoë Sara Anouk Fleur Sanne Bram Joris",
           "de Jong Jansen de Vries van den Berg van Dijk Bakker Janssen Visser Smit Meijer de Boer Mulder de Groot Bos Vos Peters Hendriks van Leeuwen Dekker Brouwer"),
    "en": ("Oliver George Harry Jack James William Noah Liam Ethan Olivia Amelia Isla Ava Emily Sophia Charlotte Grace Chloe Mia Aiden Mason Zoe",
           "Smith Johnson Williams Brown Jones Taylor Davies Wilson Evans Thomas Miller Moore Anderson Jackson White Harris Martin Thompson Walker Robinson O'Brien Murphy Kelly"),
    "pt": ("João Maria Ana Beatriz Mariana Inês Gonçalo Tomás Rodrigo Afonso Lucas Gabriel Miguel Helena Alice Laura Júlia Thiago Matheus Sebastião",
           "Silva Santos Ferreira Pereira Oliveira Costa Rodrigues Martins Jesus Sousa Fernandes Gonçalves Gomes Lopes Marques Alves Almeida Ribeiro Pinto Carvalho Araújo Conceição"),
    "cee": ("Jakub Jan Tomáš Łukasz Piotr Krzysztof Andrzej Ondřej Matěj Zoltán Bence Ivan Luka Marko Nikola Ana Zofia Małgorzata Petra Kateřina Zsófia Ioana Elena Milica",
            "Nowak Kowalski Wiśniewski Wójcik Kowalczyk Novák Svoboda Dvořák Černý Nagy Kovács Tóth Szabó Popescu Ionescu Horvat Kovačević Petrović Jovanović Novak Kranjc Ivanov Georgiev Hoxha"),
    "nordic": ("Lars Anders Johan Erik Nils Mikkel Mathias Jonas Elias Oskar Emil Aino Eino Sigríður Jón Ingrid Astrid Freja Maja Linnea Saga Elsa",
               "Johansson Andersson Karlsson Nilsson Eriksson Hansen Johansen Olsen Larsen Nielsen Jensen Pedersen Korhonen Virtanen Mäkinen Nieminen Jónsson Sigurðsson Tamm Kalniņš Kazlauskas Berg"),
    "ru": ("Aleksandr Dmitry Maksim Sergei Andriy Oleksandr Ivan Mikhail Artem Anastasia Maria Daria Olena Natalia Yulia Giorgi Nino Aigerim Nursultan Elvin",
           "Ivanov Smirnov Kuznetsov Popov Shevchenko Kovalenko Bondarenko Melnyk Tkachenko Volkov Sokolov Morozov Beridze Kapanadze Aliyev Mammadov Nurlanov Petrov Lebedev Kozlov"),
    "tr": ("Mehmet Mustafa Ahmet Ali Hüseyin Emre Burak Yusuf Zeynep Elif Ayşe Fatma Esra Defne Giorgos Nikos Dimitris Maria Eleni Katerina",
           "Yılmaz Kaya Demir Şahin Çelik Yıldız Yıldırım Öztürk Aydın Özdemir Arslan Doğan Papadopoulos Georgiou Nikolaou Pappas Christodoulou Ioannou Vlachos Kılıç"),
    "ar": ("Mohammed Ahmed Ali Omar Youssef Khalid Hassan Ibrahim Abdullah Fatima Aisha Maryam Noor Layla Salma Hana Yasmin Tariq Bilal Noa Yossi",
           "Al-Farsi Al-Harbi Al-Mansouri Haddad Khoury Nasser Saleh Hamdan Abdullah Rahman Khan Hussain Qureshi Mahmoud Farouk El-Sayed Cohen Levi Mizrahi Aziz Ben Ali"),
    "in": ("Aarav Vivaan Aditya Vihaan Arjun Sai Reyansh Krishna Ishaan Priya Ananya Diya Aadhya Saanvi Kavya Lakshmi Rohan Rahul Sneha Pooja",
           "Sharma Verma Gupta Singh Kumar Patel Shah Reddy Rao Iyer Nair Menon Das Banerjee Chatterjee Mukherjee Joshi Mehta Agarwal Pillai"),
    "jp": ("Haruto Yuto Sota Yuki Hayato Ren Riku Daiki Sakura Yui Hina Aoi Rin Mei Yuna Haruka Takumi Kenji Akiko Emi",
           "Sato Suzuki Takahashi Tanaka Watanabe Ito Yamamoto Nakamura Kobayashi Kato Yoshida Yamada Sasaki Yamaguchi Matsumoto Inoue Kimura Hayashi Shimizu Saito"),
    "kr": ("Min-jun Seo-jun Do-yun Ye-jun Si-woo Ha-jun Ji-ho Seo-yeon Ji-woo Seo-yun Ha-eun Min-seo Ji-yoo Soo-ah Hyun-woo Jae-won",
           "Kim Lee Park Choi Jung Kang Cho Yoon Jang Lim Han Oh Seo Shin Kwon Hwang"),
    "cn": ("Wei Fang Min Jing Li Qiang Lei Jun Yan Hui Xiu Ying Hao Yu Jie Mei Ling Wai Kit Siew",
           "Wang Li Zhang Liu Chen Yang Huang Zhao Wu Zhou Xu Sun Ma Zhu Hu Guo Lim Tan Ng Wong Chan Leung"),
    "sea": ("Juan Jose Mark Angel Maria Jasmine Budi Agus Siti Dewi Putri Rizky Somchai Anong Niran Malee Minh Anh Linh Huy",
            "Santos Reyes Cruz Bautista Garcia Mendoza Santoso Wijaya Hidayat Saputra Kusuma Saetang Srisuk Wongsakul Nguyen Tran Le Pham Hoang Vu"),
}
_BUSINESS_SUFFIX = {
    "de": "GmbH", "fr": "SARL", "es": "S.L.", "it": "S.r.l.", "nl": "B.V.", "en": "Ltd", "pt": "Lda",
    "cee": "Sp. z o.o.", "nordic": "AB", "ru": "LLC", "tr": "Ltd. Şti.", "ar": "LLC", "in": "Pvt Ltd",
    "jp": "K.K.", "kr": "Co., Ltd.", "cn": "Co., Ltd.", "sea": "Inc.",
}
_BUSINESS_WORDS = "Studio Media Digital Design Consulting Labs Creative Trading Services Solutions Productions Logistics".split()
_SUFFIX_BY_COUNTRY = {"US": "LLC", "CA": "Inc.", "AU": "Pty Ltd", "NO": "AS", "DK": "ApS", "FI": "Oy",
                      "CZ": "s.r.o.", "SK": "s.r.o.", "HU": "Kft.", "RO": "S.R.L.", "AT": "GmbH", "CH": "AG",
                      "BE": "SRL", "BR": "Ltda", "MX": "S.A. de C.V.", "GR": "IKE", "SE": "AB", "IS": "ehf."}

# Crypto: (currency, network, share of wallet rows)
WALLET_MIX: list[tuple[str, str, float]] = [
    ("USDC", "ethereum", 0.15), ("USDC", "polygon", 0.14), ("USDC", "arbitrum", 0.09),
    ("USDC", "base", 0.14), ("USDC", "solana", 0.18), ("USDT", "ethereum", 0.08),
    ("USDT", "tron", 0.14), ("BTC", "bitcoin", 0.08),
]
EVM_NETWORKS = frozenset({"ethereum", "polygon", "arbitrum", "base"})

# Approximate major units per EUR: amounts are drawn in EUR cents, then converted exactly.
FX_PER_EUR = money.INDICATIVE_PER_EUR


@dataclass(frozen=True)
class Country:
    code: str
    weight: float
    currency: str
    dest_kind: str  # 'iban' | 'local'
    region: str


@cache
def countries() -> tuple[Country, ...]:
    """The country table: every IBAN country schwifty knows (SWIFT registry, not aspirational) and the local-rail ones."""
    from schwifty import registry

    table: list[Country] = []
    for code in sorted(registry._default_registry._get("iban")):  # noqa: SLF001 - the spec list
        spec = registry.get_iban_spec(code)
        if spec.aspirational or code in _IBAN_OF_PARENT:
            continue
        currency = "EUR" if code in EUROZONE else IBAN_CURRENCY.get(code, "EUR")
        if currency not in money.FIAT_EXPONENTS:
            currency = "EUR"
        weight = _RARE.get(code, _IBAN_WEIGHTS.get(code, FLOOR_WEIGHT))
        table.append(Country(code, weight, currency, "iban", _REGION.get(code, "en")))
    for code, weight in _LOCAL_WEIGHTS.items():
        table.append(Country(code, weight, _LOCAL_CURRENCY[code], "local", _REGION.get(code, "en")))
    return tuple(table)


# ----------------------------------------------------------------------------
# Counter-based randomness: value(seed, stream, row) -> uint64, independent of n.
# ----------------------------------------------------------------------------

_U64 = np.uint64


def _mix(x: np.ndarray) -> np.ndarray:
    x = x + _U64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> _U64(27))) * _U64(0x94D049BB133111EB)
    return x ^ (x >> _U64(31))


def _key(seed: int, stream: str) -> np.uint64:
    return _U64(int.from_bytes(hashlib.blake2b(f"{seed}:{stream}".encode(), digest_size=8).digest(), "little"))


def _hash(rows: np.ndarray, seed: int, stream: str) -> np.ndarray:
    return _mix(_mix(rows.astype(np.uint64) ^ _key(seed, stream)))


def _uniform(rows: np.ndarray, seed: int, stream: str) -> np.ndarray:
    return (_hash(rows, seed, stream) >> _U64(11)).astype(np.float64) * (1.0 / (1 << 53))


def _below(rows: np.ndarray, seed: int, stream: str, bound: int) -> np.ndarray:
    return (_hash(rows, seed, stream) % _U64(bound)).astype(np.int64)


def _digits(rows: np.ndarray, seed: int, stream: str, width: int) -> np.ndarray:
    """A (len(rows), width) matrix of random decimal digits (uint8)."""
    out = np.empty((len(rows), width), dtype=np.uint8)
    for block in range(0, width, 18):
        h = _hash(rows, seed, f"{stream}:{block}")
        for j in range(block, min(width, block + 18)):
            out[:, j] = (h % _U64(10)).astype(np.uint8)
            h = h // _U64(10)
    return out


def _unique_number(rank: np.ndarray, seed: int, stream: str, width: int, low: int = 0) -> np.ndarray:
    """A bijection of rank onto [low, 10**width): distinct ranks give distinct numbers."""
    modulus = 10**width - low
    if len(rank) and int(rank.max()) >= modulus:
        raise ValueError(f"{stream}: more than {modulus:,} destinations do not fit its {width}-digit slot")
    step = 0x9E3779B97F4A7C15 % modulus
    while math.gcd(step, modulus) != 1:
        step += 1
    offset = int(_key(seed, stream)) % modulus
    # Slots are at most 8 digits wide, so rank * step stays far below 2**63.
    return (rank.astype(np.int64) * step + offset) % modulus + low


def _strings(chars: np.ndarray) -> "pl.Series":
    """(rows, width) ASCII matrix -> polars String series."""
    import polars as pl

    width = chars.shape[1]
    data = np.ascontiguousarray(chars).view(f"S{width}").ravel()
    return pl.Series(data).cast(pl.String)


ASCII0 = 48


# ----------------------------------------------------------------------------
# IBANs: a digit/char matrix per country, bank codes from schwifty's registry,
# national check digits and the IBAN check digits computed column-wise.
# ----------------------------------------------------------------------------

_ODDS = np.array([1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23])
_FR_LIKE = frozenset("FR MC BL GF GP MF MQ NC PF PM RE TF WF".split())
_MOD97_98 = frozenset("BA ME MK PT RS SI TL".split())
_MOD97_97 = frozenset("MR TN".split())


@dataclass(frozen=True)
class _IbanPlan:
    country: str
    length: int
    classes: str               # per BBAN position: 'n', 'a' or 'c'
    bank_positions: list[int]  # where the registry lookup key goes
    bank_codes: list[str]
    bank_bics: list[str | None]
    unique: list[int]          # positions that carry the per-country unique number
    unique_low: int
    tweak: list[int]           # positions nudged when a check digit cannot be solved


def _expand_spec(bban_spec: str) -> str:
    import re

    return "".join(kind * int(count) for count, kind in re.findall(r"(\d+)!([nac])", bban_spec))


def _positions(spec, component) -> list[int]:
    r = spec.positions.get(component)
    return list(range(r.start, r.end)) if r is not None and not r.is_empty else []


@cache
def _iban_plan(country: str) -> _IbanPlan:
    from schwifty import BIC, registry
    from schwifty.checksum import algorithms
    from schwifty.domain import Component

    spec = registry.get_iban_spec(country)
    classes = _expand_spec(spec.bban_spec)
    bank_positions: list[int] = []
    for component in spec.bic_lookup_components or [Component.BANK_CODE]:
        bank_positions += _positions(spec, component)
    codes: list[str] = []
    bics: list[str | None] = []
    banks = sorted(registry.get_banks_by_country(country), key=lambda b: (not b.primary, b.bank_code))
    seen: set[str] = set()
    for bank in banks:
        code = bank.bank_code
        if not bank.bic or not code or code in seen or len(code) != len(bank_positions):
            continue
        if not all((c.isdigit() if classes[p] == "n" else c.isalpha() if classes[p] == "a" else c.isalnum())
                   for c, p in zip(code, bank_positions)):
            continue
        if country == "DE" and bank.checksum_algo != "00":
            continue  # the one German method computed here; others exist per bank
        if country == "PL" and not algorithms["PL:default"].validate([code[:7], ""], code[7]):
            continue
        try:
            bic = str(BIC.from_bank_code(country, code))
        except Exception:  # noqa: BLE001 - not resolvable: not a bank we can name
            continue
        if bic[4:6] != country:
            continue  # a foreign bank's branch: real, but a person would review it; keep the seed clean
        seen.add(code)
        codes.append(code)
        bics.append(bic)
        if len(codes) >= 60:
            break
    account = _positions(spec, Component.ACCOUNT_CODE)
    national = set(_positions(spec, Component.NATIONAL_CHECKSUM_DIGITS))
    free = [p for p in account if p not in national and p not in bank_positions and classes[p] != "a"]
    tweak: list[int] = []
    low = 0
    special = {
        "DE": (list(range(10, 17)), [9]), "CZ": (list(range(12, 19)), [11]), "SK": (list(range(12, 19)), [11]),
        "NO": (list(range(4, 10)), []), "IS": (list(range(6, 12)), [18, 19]), "HU": (list(range(16, 23)), [15]),
        "EE": (list(range(8, 15)), [7]), "FI": (list(range(6, 13)), [5]),
    }
    if country in special:
        unique, tweak = special[country]
        if country == "NO":
            low = 100_000  # Norwegian accounts starting 00 use a different check
    else:
        unique = free[-7:]
        if country in _FR_LIKE or country in _MOD97_98 or country in _MOD97_97 or country in ("ES", "IT", "SM", "BE"):
            tweak = []
    return _IbanPlan(country, spec.bban_length, classes, bank_positions, codes, bics, unique, low, tweak)


def _weighted(d: np.ndarray, weights: list[int]) -> np.ndarray:
    width = min(d.shape[1], len(weights))
    return d[:, :width].astype(np.int64) @ np.array(weights[:width], dtype=np.int64)


def _mod97(values: np.ndarray) -> np.ndarray:
    """Remainder mod 97 of each row read as a decimal number (values: digits or letter values)."""
    r = np.zeros(values.shape[0], dtype=np.int64)
    for j in range(values.shape[1]):
        v = values[:, j].astype(np.int64)
        r = np.where(v >= 10, r * 100 + v, r * 10 + v) % 97
    return r


def _values(chars: np.ndarray) -> np.ndarray:
    """ASCII digits/letters -> 0..35."""
    c = chars.astype(np.int64)
    return np.where(c >= 65, c - 55, c - ASCII0)


def _national(country: str, b: np.ndarray) -> np.ndarray:
    """Fill national check digits in the ASCII BBAN matrix `b`; return rows that need a retry."""
    n = b.shape[0]
    bad = np.zeros(n, dtype=bool)
    d = _values(b)
    if country == "BE":
        r = _mod97(d[:, :10])
        r = np.where(r == 0, 97, r)
        b[:, 10] = ASCII0 + r // 10
        b[:, 11] = ASCII0 + r % 10
    elif country in _FR_LIKE:
        # The RIB key reads letters through the French table (A,J->1 ...): only digits are generated.
        bank = _mod97(d[:, 0:5])
        branch = _mod97(d[:, 5:10])
        acct = _mod97(d[:, 10:21])
        key = 97 - (89 * bank + 15 * branch + 3 * acct) % 97
        b[:, 21] = ASCII0 + key // 10
        b[:, 22] = ASCII0 + key % 10
    elif country in _MOD97_98 or country in _MOD97_97:
        start = b.shape[1] - 2
        r = (_mod97(d[:, :start]) * 100) % 97
        key = 98 - r if country in _MOD97_98 else 97 - r
        b[:, start] = ASCII0 + key // 10
        b[:, start + 1] = ASCII0 + key % 10
    elif country == "ES":
        def fix(x: np.ndarray) -> np.ndarray:
            return np.where(x == 11, 0, np.where(x == 10, 1, x))
        d1 = fix(11 - _weighted(d[:, 0:8], [4, 8, 5, 10, 9, 7, 3, 6]) % 11)
        d2 = fix(11 - _weighted(d[:, 10:20], [1, 2, 4, 8, 5, 10, 9, 7, 3, 6]) % 11)
        b[:, 8] = ASCII0 + d1
        b[:, 9] = ASCII0 + d2
    elif country in ("IT", "SM"):
        body = d[:, 1:23]
        total = _ODDS[body[:, 0::2]].sum(axis=1) + body[:, 1::2].sum(axis=1)
        b[:, 0] = 65 + total % 26
    elif country == "EE":
        rev = d[:, 2:15][:, ::-1]
        s = _weighted(rev, [7, 3, 1] * 5) % 10
        b[:, 15] = ASCII0 + np.where(s == 0, 0, 10 - s)
    elif country in ("FI", "AX"):
        body = d[:, 0:13][:, ::-1]
        prod = body * np.where(np.arange(13) % 2 == 0, 2, 1)
        total = (prod // 10 + prod % 10).sum(axis=1)
        b[:, 13] = ASCII0 + (10 - total % 10) % 10
    elif country == "NO":
        s = 11 - _weighted(d[:, 0:10], [5, 4, 3, 2, 7, 6, 5, 4, 3, 2]) % 11
        bad = s == 10
        b[:, 10] = ASCII0 + np.where(s == 11, 0, np.minimum(s, 9))
    elif country in ("CZ", "SK"):
        b[:, 4:10] = ASCII0  # the account prefix is usually empty (zero)
        s = _weighted(d[:, 10:19], [6, 3, 7, 9, 10, 5, 8, 4, 2]) % 11
        need = (11 - s) % 11
        bad = need == 10
        b[:, 19] = ASCII0 + np.minimum(need, 9)
    elif country == "IS":
        s = _weighted(d[:, 12:20], [3, 2, 7, 6, 5, 4, 3, 2]) % 11
        check = np.where(s == 0, 0, 11 - s)
        bad = check == 10
        b[:, 20] = ASCII0 + np.minimum(check, 9)
    elif country == "DE":
        body = d[:, 8:17][:, ::-1]
        prod = body * np.where(np.arange(9) % 2 == 0, 2, 1)
        total = (prod // 10 + prod % 10).sum(axis=1)
        r = total % 10
        b[:, 17] = ASCII0 + np.where(r == 0, 0, 10 - r)
    elif country == "HU":
        for start, end in ((0, 7), (8, 23)):
            w = ([9, 7, 3, 1] * 4)[: end - start]
            s = _weighted(d[:, start:end], w) % 10
            b[:, end] = ASCII0 + (10 - s) % 10
    return bad


def _ibans(country: str, rows: np.ndarray, rank: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Valid, unique IBANs for `rows` (global indices) of one country; returns (iban strings, bank index)."""
    plan = _iban_plan(country)
    k, length = len(rows), plan.length
    b = _digits(rows, seed, f"iban:{country}", length) + np.uint8(ASCII0)
    letters = (_digits(rows, seed, f"iban-alpha:{country}", length).astype(np.int64) * 7
               + _digits(rows, seed, f"iban-alpha2:{country}", length)) % 26
    alpha = np.array([c == "a" for c in plan.classes])
    b[:, alpha] = (65 + letters[:, alpha]).astype(np.uint8)
    bank_idx = np.full(k, -1, dtype=np.int64)
    if plan.bank_codes:
        bank_idx = _below(rows, seed, f"bank:{country}", len(plan.bank_codes))
        code_matrix = np.frombuffer("".join(plan.bank_codes).encode(), dtype=np.uint8).reshape(len(plan.bank_codes), -1)
        b[:, plan.bank_positions] = code_matrix[bank_idx]
    if country == "IS":
        # Account type 26 (savings) and a kennitala: DDMMYY, two digits, check digit, century.
        day = 1 + _below(rows, seed, "is:dd", 28)
        month = 1 + _below(rows, seed, "is:mm", 12)
        year = 45 + _below(rows, seed, "is:yy", 60)
        b[:, 4], b[:, 5] = ASCII0 + 2, ASCII0 + 6
        for pos, val in ((12, day), (14, month), (16, year % 100)):
            b[:, pos] = ASCII0 + val // 10
            b[:, pos + 1] = ASCII0 + val % 10
        b[:, 21] = ASCII0 + np.where(year >= 100, 0, 9)
    if country == "BR":
        b[:, 23], b[:, 24] = ord("C"), ord("1")  # account type (current) and holder position
    values = _unique_number(rank, seed, f"unique:{country}", len(plan.unique), plan.unique_low)
    for pos in reversed(plan.unique):
        b[:, pos] = ASCII0 + (values % 10)
        values = values // 10
    for attempt in range(40):
        bad = _national(country, b)
        if not bad.any():
            break
        if country == "NO" and plan.bank_codes:
            # Another bank (with the same unique account) changes the weighted sum.
            bank_idx[bad] = (bank_idx[bad] + 1) % len(plan.bank_codes)
            b[np.ix_(bad, plan.bank_positions)] = code_matrix[bank_idx[bad]]
        elif plan.tweak:
            pos = plan.tweak[attempt % len(plan.tweak)]
            b[bad, pos] = ASCII0 + (b[bad, pos] - ASCII0 + 1) % 10
        else:  # pragma: no cover - every retrying country has a tweak
            raise RuntimeError(f"cannot solve national check digits for {country}")
    else:  # pragma: no cover
        raise RuntimeError(f"national check digits for {country} did not converge")
    # IBAN check digits: mod 97 of BBAN + country + '00'.
    cc = np.array([[ord(country[0]) - 55, ord(country[1]) - 55]], dtype=np.int64).repeat(k, axis=0)
    r = _mod97(np.concatenate([_values(b), cc, np.zeros((k, 2), dtype=np.int64)], axis=1))
    check = 98 - r
    head = np.empty((k, 4), dtype=np.uint8)
    head[:, 0], head[:, 1] = ord(country[0]), ord(country[1])
    head[:, 2] = ASCII0 + check // 10
    head[:, 3] = ASCII0 + check % 10
    return np.concatenate([head, b], axis=1), bank_idx


# ----------------------------------------------------------------------------
# Local bank details for countries without IBANs.
# ----------------------------------------------------------------------------

US_ROUTING = ["021000021", "026009593", "121000248", "021000089", "091000022", "043000096",
              "051405515", "031101266", "061000104", "111000025", "122000661", "071000013",
              "322271627", "011000138", "044000037", "063100277"]
CA_INSTITUTIONS = ["001", "002", "003", "004", "006", "010", "016", "039", "815", "614"]
AU_BSB_PREFIX = ["062", "063", "064", "012", "013", "014", "032", "033", "034", "082", "083", "084", "733", "484"]
IN_IFSC_BANK = ["HDFC", "ICIC", "SBIN", "UTIB", "KKBK", "PUNB", "BARB", "CNRB", "YESB", "IDIB", "UBIN", "INDB"]
JP_BANKS = ["0001", "0005", "0009", "0010", "0017", "0033", "0036", "0038", "9900", "0397"]
SG_BANKS = ["7171", "7339", "7375", "7232", "7144", "9465"]
MX_BANKS = ["002", "012", "014", "021", "072", "044", "127", "137", "058", "030"]
ZA_BRANCHES = ["250655", "632005", "051001", "198765", "470010", "678910", "430000", "462005"]
NZ_BRANCHES = ["010001", "010004", "010009", "010102", "010113", "010121", "020100", "020108", "020110"]
HK_BANKS = ["004", "012", "024", "003", "009", "015", "016", "020", "039", "041"]
KR_BANKS = ["004", "088", "020", "081", "011", "003", "023", "027", "090", "089"]
NG_BANKS = ["044", "058", "011", "033", "057", "032", "035", "050", "070", "232"]
GENERIC_LOCAL: dict[str, tuple[list[str], int, int]] = {
    # country: (routing codes or prefixes, random routing digits after them, account length)
    "KE": (["01", "03", "07", "11", "12", "63", "68", "70"], 3, 12),
    "PH": (["010330", "010460", "010269", "010530", "010350"], 3, 12),
    "ID": (["014", "008", "002", "009", "022", "013"], 4, 10),
    "TH": (["002", "004", "006", "011", "014", "025"], 4, 10),
    "MY": (["MBBEMYKL", "CIBBMYKL", "PBBEMYKL", "RHBBMYKL", "HLBBMYKL"], 0, 12),
    "CN": (["102", "103", "104", "105", "301", "308"], 9, 19),
    "CL": (["001", "012", "016", "037", "039", "049"], 0, 10),
    "CO": (["1007", "1051", "1013", "1023", "1002"], 0, 11),
    "PE": (["002", "003", "011", "009"], 3, 14),
    "AR": (["007", "011", "017", "072", "285", "191"], 4, 14),
    "VN": (["970436", "970407", "970418", "970416", "970422", "970432"], 0, 12),
}


def _digit_strings(d: np.ndarray) -> np.ndarray:
    return (d + np.uint8(ASCII0)).astype(np.uint8)


def _choose(rows: np.ndarray, seed: int, stream: str, options: list[str]) -> np.ndarray:
    """Pick from equal-length strings: an ASCII matrix."""
    m = np.frombuffer("".join(options).encode(), dtype=np.uint8).reshape(len(options), -1)
    return m[_below(rows, seed, stream, len(options))]


def _account(rows: np.ndarray, rank: np.ndarray, seed: int, country: str, width: int) -> np.ndarray:
    """An account number of `width` digits, unique per rank: random head, nonzero first digit."""
    d = _digits(rows, seed, f"acct:{country}", width)
    d[:, 0] = 1 + d[:, 0] % 9
    slot = min(8, width - 1)
    values = _unique_number(rank, seed, f"acct-unique:{country}", slot)
    for pos in range(width - 1, width - 1 - slot, -1):
        d[:, pos] = values % 10
        values = values // 10
    return _digit_strings(d)


def _local(country: str, rows: np.ndarray, rank: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(routing_code, account_number) ASCII matrices for one local-details country."""
    if country == "US":
        d = _digits(rows, seed, "us:aba", 9)
        district = np.array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32])
        dd = district[_below(rows, seed, "us:district", len(district))]
        d[:, 0], d[:, 1] = dd // 10, dd % 10
        s = (3 * (d[:, 0].astype(np.int64) + d[:, 3] + d[:, 6]) + 7 * (d[:, 1].astype(np.int64) + d[:, 4] + d[:, 7])
             + (d[:, 2].astype(np.int64) + d[:, 5]))
        d[:, 8] = (10 - s % 10) % 10
        routing = _digit_strings(d)
        big = _uniform(rows, seed, "us:bigbank") < 0.7  # most people bank with the big banks
        routing[big] = _choose(rows[big], seed, "us:routing", US_ROUTING)
        return routing, _account(rows, rank, seed, country, 12)
    if country == "CA":
        inst = _choose(rows, seed, "ca:inst", CA_INSTITUTIONS)
        transit = _digit_strings(_digits(rows, seed, "ca:transit", 5))
        routing = np.concatenate([np.full((len(rows), 1), ASCII0, dtype=np.uint8), inst, transit], axis=1)
        return routing, _account(rows, rank, seed, country, 7 + 1)[:, 1:]
    if country == "AU":
        bsb = np.concatenate([_choose(rows, seed, "au:bsb", AU_BSB_PREFIX),
                              _digit_strings(_digits(rows, seed, "au:branch", 3))], axis=1)
        return bsb, _account(rows, rank, seed, country, 9)
    if country == "IN":
        ifsc = np.concatenate([_choose(rows, seed, "in:bank", IN_IFSC_BANK),
                               np.full((len(rows), 1), ASCII0, dtype=np.uint8),
                               _digit_strings(_digits(rows, seed, "in:branch", 6))], axis=1)
        return ifsc, _account(rows, rank, seed, country, 14)
    if country == "JP":
        routing = np.concatenate([_choose(rows, seed, "jp:bank", JP_BANKS),
                                  _digit_strings(_digits(rows, seed, "jp:branch", 3))], axis=1)
        return routing, _account(rows, rank, seed, country, 7)
    if country == "SG":
        routing = np.concatenate([_choose(rows, seed, "sg:bank", SG_BANKS),
                                  _digit_strings(_digits(rows, seed, "sg:branch", 3))], axis=1)
        return routing, _account(rows, rank, seed, country, 10)
    if country == "HK":
        routing = np.concatenate([_choose(rows, seed, "hk:bank", HK_BANKS),
                                  _digit_strings(_digits(rows, seed, "hk:branch", 3))], axis=1)
        return routing, _account(rows, rank, seed, country, 9)
    if country == "KR":
        return _choose(rows, seed, "kr:bank", KR_BANKS), _account(rows, rank, seed, country, 12)
    if country == "ZA":
        return _choose(rows, seed, "za:branch", ZA_BRANCHES), _account(rows, rank, seed, country, 10)
    if country == "MX":
        bank = _choose(rows, seed, "mx:bank", MX_BANKS)
        plaza = _digit_strings(_digits(rows, seed, "mx:plaza", 3))
        acct = _account(rows, rank, seed, country, 11)
        clabe = np.concatenate([bank, plaza, acct, np.zeros((len(rows), 1), dtype=np.uint8)], axis=1)
        d = clabe[:, :17].astype(np.int64) - ASCII0
        total = ((d * np.array([3, 7, 1] * 6)[:17]) % 10).sum(axis=1)
        clabe[:, 17] = ASCII0 + (10 - total % 10) % 10
        return bank, clabe
    if country == "NG":
        bank = _choose(rows, seed, "ng:bank", NG_BANKS)
        serial = _account(rows, rank, seed, country, 9)
        d = np.concatenate([bank, serial], axis=1).astype(np.int64) - ASCII0
        s = _weighted(d, [3, 7, 3, 3, 7, 3, 3, 7, 3, 3, 7, 3])
        nuban = np.concatenate([serial, (ASCII0 + (10 - s % 10) % 10).astype(np.uint8)[:, None]], axis=1)
        return bank, nuban
    if country == "NZ":
        # bank(2) branch(4) base(7) suffix(3); algorithm A: sum(weight * digit) % 11 == 0.
        k = len(rows)
        branch = _choose(rows, seed, "nz:branch", NZ_BRANCHES)
        d = np.zeros((k, 16), dtype=np.int64)
        d[:, 0:6] = branch.astype(np.int64) - ASCII0
        d[:, 6] = 0
        values = _unique_number(rank, seed, "nz:unique", 7)
        for pos in (15, 14, 11, 10, 9, 8, 7):
            d[:, pos] = values % 10
            values = values // 10
        d[:, 7] = d[:, 7] % 9  # base below 0990000 keeps algorithm A
        d[:, 13] = 0
        w = np.array([0, 0, 6, 3, 7, 9, 0, 10, 5, 8, 4, 2, 0, 0, 0, 0])
        for _ in range(12):
            need = (-(d * w).sum(axis=1)) % 11
            bad = need == 10
            d[:, 12] = np.minimum(need, 9)
            if not bad.any():
                break
            d[bad, 6] = 0
            d[bad, 13] = (d[bad, 13] + 1) % 10  # suffix digit: weight 0, keeps uniqueness
            # the suffix does not change the sum; change the branch instead
            choice = (_below(rows[bad], seed, "nz:branch", len(NZ_BRANCHES)) + 1 + _) % len(NZ_BRANCHES)
            alt = np.frombuffer("".join(NZ_BRANCHES).encode(), dtype=np.uint8).reshape(len(NZ_BRANCHES), -1)[choice]
            d[np.ix_(bad, range(6))] = alt.astype(np.int64) - ASCII0
        full = (d + ASCII0).astype(np.uint8)
        return full[:, 0:6], full[:, 6:]  # routing: bank + branch; account: base + suffix
    routing_options, extra, width = GENERIC_LOCAL[country]
    routing = _choose(rows, seed, f"{country}:routing", routing_options)
    if extra:
        routing = np.concatenate([routing, _digit_strings(_digits(rows, seed, f"{country}:branch", extra))], axis=1)
    return routing, _account(rows, rank, seed, country, width)


def _variable_strings(options: list[str], picks: np.ndarray) -> "pl.Series":
    import polars as pl

    return pl.Series(options, dtype=pl.String).gather(pl.Series(picks, dtype=pl.Int64))


# ----------------------------------------------------------------------------
# Wallets: deterministic keys per row, addresses through bip_utils.
# ----------------------------------------------------------------------------


def _wallets(rows: np.ndarray, seed: int) -> tuple[list[str], list[str], list[str]]:
    """(currency, network, address) for wallet rows; keys from (seed, row)."""
    import bip_utils as bu

    u = _uniform(rows, seed, "wallet:mix")
    cum = np.cumsum([share for _, _, share in WALLET_MIX])
    pick = np.minimum(np.searchsorted(cum / cum[-1], u, side="right"), len(WALLET_MIX) - 1)
    btc_kind = _below(rows, seed, "wallet:btc-kind", 20)
    secrets = np.stack([_hash(rows, seed, f"wallet:key:{j}") for j in range(4)], axis=1).astype(">u8")
    currencies, networks, addresses = [], [], []
    for i, (choice, kind) in enumerate(zip(pick.tolist(), btc_kind.tolist())):
        currency, network, _ = WALLET_MIX[choice]
        secret = secrets[i].tobytes()
        if network == "solana":
            address = bu.SolAddrEncoder.EncodeKey(bu.Ed25519PrivateKey.FromBytes(secret).PublicKey())
        else:
            public = bu.Secp256k1PrivateKey.FromBytes(secret).PublicKey()
            if network in EVM_NETWORKS:
                address = bu.EthAddrEncoder.EncodeKey(public)
            elif network == "tron":
                address = bu.TrxAddrEncoder.EncodeKey(public)
            elif kind < 12:
                address = bu.P2WPKHAddrEncoder.EncodeKey(public, hrp="bc", wit_ver=0)
            elif kind < 17:
                address = bu.P2TRAddrEncoder.EncodeKey(public, hrp="bc")
            else:
                address = bu.P2PKHAddrEncoder.EncodeKey(public, net_ver=b"\x00")
        currencies.append(currency)
        networks.append(network)
        addresses.append(address)
    return currencies, networks, addresses


# ----------------------------------------------------------------------------
# Recipients
# ----------------------------------------------------------------------------


def generate_recipients(n: int, seed: int = 42) -> "pl.DataFrame":
    """n synthetic recipients with valid, unique destinations; row i depends only on (seed, i)."""
    import polars as pl

    if n < 0 or n > MAX_RECIPIENTS:
        raise ValueError(f"n must be between 0 and {MAX_RECIPIENTS:,}")
    table = countries()
    rows = np.arange(n, dtype=np.int64)
    weights = np.array([c.weight for c in table])
    cum = np.cumsum(weights) / weights.sum()
    country_idx = np.minimum(np.searchsorted(cum, _uniform(rows, seed, "country"), side="right"), len(table) - 1)
    wallet = _uniform(rows, seed, "wallet") < WALLET_SHARE

    parts: list[pl.DataFrame] = []
    codes = [c.code for c in table]
    # Rank of each row among the non-wallet rows of its country: the unique-number input.
    ranked = pl.DataFrame({"c": country_idx, "w": wallet}).with_columns(
        rank=pl.int_range(pl.len()).over("c", "w")
    )["rank"].to_numpy()
    order = np.argsort(country_idx, kind="stable")
    bounds = np.searchsorted(country_idx[order], np.arange(len(table) + 1))
    for ci, country in enumerate(table):
        members = order[bounds[ci]:bounds[ci + 1]]
        members = members[~wallet[members]]
        if len(members) == 0:
            continue
        rank = ranked[members]
        if country.dest_kind == "iban":
            chars, bank_idx = _ibans(country.code, members, rank, seed)
            plan = _iban_plan(country.code)
            bics = np.array(plan.bank_bics + [None], dtype=object)[bank_idx]  # -1 -> None
            parts.append(pl.DataFrame({
                "row": members, "iban": _strings(chars),
                "bic": pl.Series(bics.tolist(), dtype=pl.String),
            }))
        else:
            routing, account = _local(country.code, members, rank, seed)
            parts.append(pl.DataFrame({
                "row": members, "routing_code": _strings(routing), "account_number": _strings(account),
            }))
    wallet_rows = rows[wallet]
    w_currency, w_network, w_address = _wallets(wallet_rows, seed)
    parts.append(pl.DataFrame({
        "row": wallet_rows, "wallet_currency": w_currency, "network": w_network, "wallet_address": w_address,
    }, schema={"row": pl.Int64, "wallet_currency": pl.String, "network": pl.String, "wallet_address": pl.String}))
    # Every destination column, also when no payee of this platform has that kind (a small N).
    parts.append(pl.DataFrame(schema={"row": pl.Int64, "iban": pl.String, "bic": pl.String,
                                      "routing_code": pl.String, "account_number": pl.String}))
    dest = pl.concat([p.with_columns(pl.col("row").cast(pl.Int64)) for p in parts], how="diagonal_relaxed")

    # Names: person names of the country's region, some businesses.
    regions = sorted(_NAMES)
    firsts = [name.split() for name in (_NAMES[r][0] for r in regions)]
    lasts = [_split_last(_NAMES[r][1]) for r in regions]
    first_flat = [x for group in firsts for x in group]
    last_flat = [x for group in lasts for x in group]
    first_off = np.cumsum([0] + [len(g) for g in firsts])
    last_off = np.cumsum([0] + [len(g) for g in lasts])
    region_of_country = np.array([regions.index(c.region) for c in table])
    region = region_of_country[country_idx]
    first_len = np.diff(first_off)[region]
    last_len = np.diff(last_off)[region]
    first_pick = first_off[region] + (_hash(rows, seed, "first") % first_len.astype(np.uint64)).astype(np.int64)
    last_pick = last_off[region] + (_hash(rows, seed, "last") % last_len.astype(np.uint64)).astype(np.int64)
    suffixes = [_SUFFIX_BY_COUNTRY.get(c.code, _BUSINESS_SUFFIX[c.region]) for c in table]
    business = _uniform(rows, seed, "business") < 0.07
    word = _below(rows, seed, "business-word", len(_BUSINESS_WORDS))

    kyc_u = _uniform(rows, seed, "kyc")
    kyc = np.where(kyc_u < 0.88, 0, np.where(kyc_u < 0.97, 1, 2))

    base = pl.DataFrame({
        "row": rows,
        "country_idx": country_idx,
        "first": _variable_strings(first_flat, first_pick),
        "last": _variable_strings(last_flat, last_pick),
        "business": business,
        "word": _variable_strings(_BUSINESS_WORDS, word),
        "suffix": _variable_strings(suffixes, country_idx),
        "kyc_status": _variable_strings(["verified", "unverified", "expired"], kyc),
        "wallet": wallet,
    }, schema_overrides={"row": pl.Int64})
    base = base.with_columns(
        country=_variable_strings(codes, country_idx),
        fiat=_variable_strings([c.currency for c in table], country_idx),
    )
    frame = base.join(dest, on="row", how="left").sort("row")
    return frame.select(
        recipient_id=pl.lit("U") + pl.col("row").add(1).cast(pl.String).str.zfill(8),
        name=pl.when(pl.col("business"))
        .then(pl.concat_str([pl.col("last"), pl.col("word"), pl.col("suffix")], separator=" "))
        .otherwise(pl.concat_str([pl.col("first"), pl.col("last")], separator=" ")),
        country=pl.col("country"),
        currency=pl.when(pl.col("wallet")).then(pl.col("wallet_currency")).otherwise(pl.col("fiat")),
        dest_kind=pl.when(pl.col("wallet")).then(pl.lit("wallet"))
        .when(pl.col("iban").is_not_null()).then(pl.lit("iban")).otherwise(pl.lit("local")),
        iban=pl.col("iban"),
        bic=pl.col("bic"),
        account_number=pl.col("account_number"),
        routing_code=pl.col("routing_code"),
        wallet_address=pl.col("wallet_address"),
        network=pl.col("network"),
        kyc_status=pl.col("kyc_status"),
    )


def _split_last(text: str) -> list[str]:
    """Last names, keeping particles with their name ('de Jong', 'van den Berg', 'De Luca', 'Ben Ali')."""
    out: list[str] = []
    pending = ""
    for word in text.split():
        if word in ("de", "van", "den", "De", "Ben", "El"):
            pending = f"{pending}{word} "
            continue
        out.append(pending + word)
        pending = ""
    return out


# ----------------------------------------------------------------------------
# Earnings
# ----------------------------------------------------------------------------

# EUR-cent amount buckets (lower bound, upper bound exclusive, weight): a log-normal-ish
# shape from 5 to 5,000 EUR, drawn with integers only.
_AMOUNT_BUCKETS = [
    (500, 1_000, 6), (1_000, 2_000, 10), (2_000, 5_000, 18), (5_000, 10_000, 20),
    (10_000, 20_000, 18), (20_000, 50_000, 15), (50_000, 100_000, 7), (100_000, 200_000, 4),
    (200_000, 500_001, 2),
]


@cache
def _fx_ratio(currency: str) -> tuple[int, int]:
    """Exact minor units per EUR cent as a fraction (numerator, denominator)."""
    per_eur = Fraction(Decimal(FX_PER_EUR.get(currency, "1")))
    ratio = per_eur * 10 ** money.exponent(currency) / 100
    return ratio.numerator, ratio.denominator


# Share of payees in non-euro IBAN countries whom the platform owes in euros but pays in
# their own currency (a converted payout: the provider quotes the rate).
CONVERTED_SHARE = 0.03


def with_payout_currencies(recipients: "pl.DataFrame", seed: int) -> "pl.DataFrame":
    """Mark a deterministic share of non-euro IBAN payees as owed in EUR and paid in their currency."""
    import polars as pl

    rows = np.arange(recipients.height, dtype=np.uint64)
    pick = _uniform(rows, seed, "converted") < CONVERTED_SHARE
    converted = (
        pl.Series("pick", pick)
        & (recipients["dest_kind"] == "iban")
        & ~recipients["currency"].is_in(["EUR", "USDC", "USDT", "BTC"])
    )
    return recipients.with_columns(
        payout_currency=pl.when(converted).then(pl.col("currency")).otherwise(None),
        currency=pl.when(converted).then(pl.lit("EUR")).otherwise(pl.col("currency")),
    )


def generate_earnings(recipients: "pl.DataFrame", period: str, seed: int) -> tuple["pl.DataFrame", "pl.DataFrame"]:
    """One earning per recipient for `period`: (transactions, postings) for the ledger.

    txn_id 'earn:<period>:<recipient_id>'; postings debit 'earnings' and credit
    'payable' by the same integer amount in the recipient's currency.
    """
    import polars as pl

    n = recipients.height
    rng = np.random.default_rng([seed, int.from_bytes(hashlib.blake2b(period.encode(), digest_size=8).digest(), "little")])
    lows = np.array([b[0] for b in _AMOUNT_BUCKETS], dtype=np.int64)
    highs = np.array([b[1] for b in _AMOUNT_BUCKETS], dtype=np.int64)
    weights = np.array([b[2] for b in _AMOUNT_BUCKETS], dtype=np.int64)
    # Integer bucket pick: a uniform integer below the weight total, located in the cumulative weights.
    ticket = rng.integers(0, int(weights.sum()), size=n)
    bucket = np.searchsorted(np.cumsum(weights), ticket, side="right")
    eur_cents = rng.integers(lows[bucket], highs[bucket])

    currency = recipients["currency"]
    codes = currency.unique().to_list()
    ratios = {code: _fx_ratio(code) for code in codes}
    num = currency.replace_strict({c: r[0] for c, r in ratios.items()}, return_dtype=pl.Int64).to_numpy()
    den = currency.replace_strict({c: r[1] for c, r in ratios.items()}, return_dtype=pl.Int64).to_numpy()
    amount = eur_cents * num // den
    token = currency.is_in(["USDC", "USDT"]).to_numpy()
    amount = np.where(token, amount // 10_000 * 10_000, amount)  # whole cents of a 6-decimal token
    amount = np.maximum(amount, 1)

    txn_ids = pl.lit(f"earn:{period}:") + recipients["recipient_id"]
    base = recipients.select(
        txn_id=txn_ids, recipient_id="recipient_id", currency="currency",
    ).with_columns(amount_minor=pl.Series(amount, dtype=pl.Int64))
    transactions = base.select("txn_id", kind=pl.lit("earning"))
    postings = pl.concat([
        base.select("txn_id", account=pl.lit("earnings"), recipient_id="recipient_id",
                    currency="currency", amount_minor=pl.col("amount_minor")),
        base.select("txn_id", account=pl.lit("payable"), recipient_id="recipient_id",
                    currency="currency", amount_minor=-pl.col("amount_minor")),
    ])
    return transactions, postings


# ----------------------------------------------------------------------------
# Load
# ----------------------------------------------------------------------------


def load(conn: "psycopg.Connection", n: int, seed: int = 42, period: str | None = None,
         progress: Callable[[str], None] | None = None) -> dict:
    """Add n recipients (existing ids are kept) and post their earnings for `period`, in one transaction.

    Re-running with the same arguments adds nothing: recipients and earning
    transactions that already exist are skipped.
    """
    from payouts.warehouse import copy_in

    say = progress or (lambda _msg: None)
    period = period or dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
    started = time.perf_counter()
    recipients = with_payout_currencies(generate_recipients(n, seed), seed)
    _, postings = generate_earnings(recipients, period, seed)
    say(f"generated {n:,} recipients and their {period} earnings in {time.perf_counter() - started:.1f} s")

    with conn.transaction():
        fast = _skip_row_triggers(conn, recipients)
        step = time.perf_counter()
        conn.execute("CREATE TEMP TABLE seed_recipients (LIKE payouts.recipients INCLUDING DEFAULTS) ON COMMIT DROP")
        copy_in(conn, "seed_recipients", recipients, RECIPIENT_COLUMNS + ["payout_currency"])
        cols = ", ".join(RECIPIENT_COLUMNS + ["payout_currency"])
        added = conn.execute(
            f"INSERT INTO payouts.recipients ({cols}) SELECT {cols} FROM seed_recipients "
            "ORDER BY recipient_id ON CONFLICT (recipient_id) DO NOTHING"
        ).rowcount
        say(f"recipients: {added:,} added ({n - added:,} already there) in {time.perf_counter() - step:.1f} s")

        step = time.perf_counter()
        conn.execute(
            "CREATE TEMP TABLE seed_postings (txn_id text, account text, recipient_id text,"
            " currency text, amount_minor bigint) ON COMMIT DROP"
        )
        copy_in(conn, "seed_postings", postings, POSTING_COLUMNS)
        conn.execute("ANALYZE seed_postings")
        # Only earnings of recipients stored with that currency, and only new transaction ids.
        conn.execute("CREATE TEMP TABLE seed_fresh (txn_id text PRIMARY KEY) ON COMMIT DROP")
        posted = ledger.post_rows(
            conn, "earning",
            "SELECT p.txn_id, p.recipient_id, p.currency, -p.amount_minor, NULL, NULL"
            " FROM seed_postings p"
            " JOIN payouts.recipients r ON r.recipient_id = p.recipient_id AND r.currency = p.currency"
            " WHERE p.account = 'payable' ORDER BY p.txn_id",
            [("earnings", 1, "owed", False), ("payable", -1, "owed", False)], fresh_into="seed_fresh")
        earned = {currency: int(total) for currency, total in conn.execute(
            "SELECT p.currency, (-sum(p.amount_minor))::bigint FROM seed_postings p JOIN seed_fresh f USING (txn_id)"
            " WHERE p.account = 'payable' GROUP BY p.currency").fetchall()}
        if fast:
            conn.execute("SET LOCAL session_replication_role = origin")
        say(f"earnings: {posted:,} transactions posted for {period} in {time.perf_counter() - step:.1f} s")
        payable = dict(conn.execute(
            "SELECT currency, (-sum(amount_minor))::bigint FROM ledger.postings"
            " WHERE account = 'payable' GROUP BY currency ORDER BY currency"
        ).fetchall())
    return {
        "recipients_added": added,
        "row_triggers_skipped": fast,
        "earnings_posted": int(posted),
        "period": period,
        "earned_by_currency": {k: int(v) for k, v in sorted(earned.items())},
        "total_payable_by_currency": {k: int(v) for k, v in payable.items()},
        "seconds": round(time.perf_counter() - started, 2),
    }


def _skip_row_triggers(conn: "psycopg.Connection", recipients: "pl.DataFrame") -> bool:
    """Skip the per-row foreign-key triggers for a large seed, when the role may (superuser).

    The foreign keys cost ~6 us per row and key (about 35 s for a million earnings). The
    seed satisfies them by construction: currencies come from payouts.core.money (synced into
    ledger.currencies by the migrations, checked here in one query), the accounts are
    'earnings' and 'payable', and each posting's transaction is inserted by the same
    statement. SET LOCAL ends with the transaction.
    """
    if recipients.height < FAST_LOAD_MIN_ROWS:
        return False
    superuser = conn.execute("SELECT current_setting('is_superuser') = 'on'").fetchone()[0]
    if not superuser:
        return False
    codes = recipients["currency"].unique().to_list()
    known = {row[0] for row in conn.execute("SELECT code FROM ledger.currencies WHERE code = ANY(%s)", (codes,))}
    accounts = conn.execute("SELECT count(*) FROM ledger.accounts WHERE account IN ('earnings', 'payable')").fetchone()[0]
    if set(codes) - known or accounts != 2:
        return False  # let the constraints speak
    conn.execute("SET LOCAL session_replication_role = replica")
    return True
