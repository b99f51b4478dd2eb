"""Person and organisation name normalisation for sanctions screening.

`normalise_name` turns "Sheikh Mohamed AL-HASSAN, Ltd." and "hassan al muhammad"
into the same comparable key: casefolded, accents stripped, common Arabic and
Russian romanisation variants folded to one spelling, honorifics and legal
suffixes dropped, punctuation turned into spaces, tokens sorted. The same rules
exist as a polars expression (`normalise_expr`) for a million names at a time.
"""

from __future__ import annotations

import re
import unicodedata
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import polars as pl

# Romanisation variants -> one canonical spelling. Kept small on purpose: each
# row is a family a screening analyst would call "the same name".
_VARIANT_FAMILIES: dict[str, tuple[str, ...]] = {
    "muhammad": ("mohammed", "mohamed", "mohammad", "mohamad", "muhammed", "muhamed",
                 "mohamad", "muhamad", "mohammod", "mohamud", "mohd", "muhammet", "mehmet",
                 "mahomed", "mouhamed", "mouhammad", "mohammedi"),
    "abd": ("abdul", "abdel", "abdal", "abdol", "abdoul", "abdu", "abdoul"),
    "yusuf": ("yousef", "youssef", "yousuf", "yusef", "yousif", "yusif", "youssouf", "jusuf"),
    "husayn": ("husain", "hussein", "hussain", "husein", "hosein", "hossein", "houssein",
               "hussien", "husen"),
    "hasan": ("hassan", "hasen", "hassen"),
    "ahmad": ("ahmed", "ahmet", "ahmadi", "achmed"),
    "mahmud": ("mahmoud", "mahmood", "mahmut"),
    "abdallah": ("abdullah", "abdulla", "abdellah", "abdalla", "abdoullah"),
    "umar": ("omar", "omer", "umer"),
    "uthman": ("othman", "osman", "usman", "uthmaan", "otman"),
    "usama": ("osama", "oussama", "ousama"),
    "ibrahim": ("ebrahim", "ibraheem", "ibragim", "brahim"),
    "ismail": ("ismael", "ismayil", "esmail", "ismaeel"),
    "khalid": ("khaled", "khalied"),
    "mustafa": ("mostafa", "moustafa", "mustapha", "mostapha", "moustapha"),
    "said": ("saeed", "sayed", "sayyid", "sa'id", "saied", "seyed", "seyyed", "sayid"),
    "ali": ("aly",),
    "jamal": ("gamal", "djamal"),
    "jamil": ("jameel", "djamil", "gamil"),
    "qasim": ("qassim", "kasim", "kassim", "qassem", "qasem", "kassem"),
    "nasir": ("nasser", "nasr", "naser", "nassir"),
    "abu": ("abou", "abo"),
    "al": ("el", "ul"),
    "bin": ("ben", "ibn", "bn"),
    "aleksandr": ("alexander", "alexandr", "aleksander", "oleksandr", "alexandre"),
    "sergey": ("sergei", "serguei", "serhiy", "sergiy", "serhii"),
    "yevgeny": ("evgeny", "evgeniy", "yevgeniy", "evgenii", "yevhen", "evgenij"),
    "dmitry": ("dmitri", "dmitriy", "dmytro", "dimitri", "dmitrii"),
    "yuri": ("yury", "yuriy", "iurii", "yurii", "jurij", "iouri"),
    "andrey": ("andrei", "andriy", "andrii", "andrej"),
    "aleksey": ("alexei", "alexey", "aleksei", "oleksiy", "oleksii", "alexej"),
    "mikhail": ("mikhael", "mykhailo", "michail"),
    "nikolay": ("nikolai", "mykola", "nicolai"),
    "vladimir": ("volodymyr", "wladimir"),
    "viktor": ("victor",),
    "igor": ("ihor",),
    "oleg": ("oleh",),
    "pavel": ("pavlo",),
    "konstantin": ("kostiantyn", "kostyantyn"),
    "grigory": ("grigori", "grigoriy", "hryhoriy"),
    "vitaly": ("vitali", "vitaliy", "vitalii"),
    "anatoly": ("anatoli", "anatoliy", "anatolii"),
    "valery": ("valeri", "valeriy", "valerii"),
    "arkady": ("arkadi", "arkadiy", "arkadii"),
}

VARIANTS: dict[str, str] = {
    variant: canonical
    for canonical, variants in _VARIANT_FAMILIES.items()
    for variant in variants
    if variant != canonical
}

# Words that say nothing about who someone is: honorifics, titles and legal forms.
STOPWORDS: frozenset[str] = frozenset(
    """mr mrs ms miss mx dr prof sir dame lord lady sheikh shaikh shaykh sheik haji hajji
    hadji alhaji mullah mulla maulavi mawlawi maulana mawlana moulana imam sayyed
    qari hafiz general gen col colonel major capt captain lt
    llc ltd limited co corp corporation inc incorporated gmbh ag sa sas sarl srl spa bv nv
    plc pte pty oy ab as kg ooo oao zao pao jsc ojsc cjsc fze fzco llp lp sl sau cv
    de the and of""".split()
)

_SPLIT = re.compile(r"[^0-9a-z]+")
_APOSTROPHES = re.compile(r"['’`´ʼʻ]")


def _strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def name_tokens(name: str) -> list[str]:
    """The meaningful, canonicalised tokens of a name, in their original order."""
    text = _APOSTROPHES.sub("", _strip_accents(name).casefold())
    text = text.replace("ß", "ss").replace("ø", "o").replace("æ", "ae").replace("ł", "l")
    tokens = []
    for token in _SPLIT.split(text):
        if not token or token in STOPWORDS:
            continue
        tokens.append(VARIANTS.get(token, token))
    return tokens


def normalise_name(name: str) -> str:
    """The comparison key: canonical tokens sorted, so word order does not matter."""
    return " ".join(sorted(name_tokens(name)))


def normalise_expr(column: str) -> pl.Expr:
    """`normalise_name` as a polars expression (same rules, vectorised)."""
    import polars as pl

    text = (
        pl.col(column)
        .fill_null("")
        .str.normalize("NFKD")
        .str.replace_all(r"\p{M}", "")
        .str.to_lowercase()
        .str.replace_all(r"['’`´ʼʻ]", "")
        .str.replace_all("ß", "ss", literal=True)
        .str.replace_all("ø", "o", literal=True)
        .str.replace_all("æ", "ae", literal=True)
        .str.replace_all("ł", "l", literal=True)
        .str.replace_all(r"[^0-9a-z]+", " ")
        .str.strip_chars()
    )
    tokens = (
        text.str.split(" ")
        .list.eval(
            pl.element()
            .filter((pl.element() != "") & ~pl.element().is_in(list(STOPWORDS)))
            .replace(VARIANTS)
        )
        .list.sort()
        .list.join(" ")
    )
    return tokens


# --- labelled evaluation: spelling variants and common names ------------------------
# Used to measure recall and false positives of the screening (sanctions.evaluate).

COMMON_GIVEN_NAMES = """james john robert michael william david richard joseph thomas charles
christopher daniel matthew anthony mark donald steven paul andrew joshua kevin brian george
mary patricia jennifer linda elizabeth barbara susan jessica sarah karen nancy lisa betty
margaret sandra ashley emily michelle emma olivia sophia isabella charlotte amelia harper
jose luis carlos juan jorge pedro miguel alejandro fernando ricardo manuel antonio francisco
maria carmen ana lucia laura isabel marta elena sofia valentina camila gabriela paula
hans peter klaus jurgen stefan thomas andreas wolfgang michael frank uwe ursula monika petra
sabine andrea claudia heike birgit jean pierre michel philippe alain nicolas francois
marie nathalie isabelle sylvie catherine christine giuseppe giovanni marco luca andrea
francesca chiara giulia alessandro matteo lorenzo piotr krzysztof tomasz pawel anna katarzyna
malgorzata agnieszka jan lars erik anders nils ingrid astrid kerstin sven olaf
wei fang li jing min hui yan ling hao jun hiroshi takashi kenji yuki haruto sakura yui hina
minjun seojun jiwoo seoyeon jimin raj amit rahul priya anjali sunita vikram arjun deepak
neha pooja ravi sanjay kwame kofi ama abena chinedu ngozi emeka oluwaseun tunde amara
thabo sipho lerato zanele fatima aisha omar khalid layla yasmin samir karim nadia leila
olga irina natalia tatiana svetlana ekaterina ivan pavel mikhail nikita artem maxim
bruno thiago rafael lucas mateus gustavo larissa beatriz juliana fernanda""".split()

COMMON_FAMILY_NAMES = """smith johnson williams brown jones miller davis wilson anderson taylor
moore jackson martin lee thompson white harris clark lewis robinson walker young allen king
wright scott green baker adams nelson hill campbell mitchell roberts carter phillips evans
turner parker collins edwards stewart morris murphy cook rogers morgan cooper peterson
garcia rodriguez martinez hernandez lopez gonzalez perez sanchez ramirez torres flores
rivera gomez diaz reyes morales ortiz gutierrez chavez ramos ruiz alvarez mendoza castillo
jimenez moreno romero herrera medina aguilar vargas muller schmidt schneider fischer weber
meyer wagner becker schulz hoffmann koch richter klein wolf schroder neumann schwarz
bernard dubois durand lefebvre leroy moreau laurent simon michel garnier rossi russo ferrari
esposito bianchi romano colombo ricci marino greco bruno gallo conti nowak kowalski
wisniewski wojcik kowalczyk kaminski lewandowski zielinski hansen nielsen jensen pedersen
andersen larsen johansson karlsson nilsson eriksson larsson olsen wang zhang liu chen yang
huang zhao zhou wu xu sun tanaka suzuki takahashi watanabe ito yamamoto nakamura kobayashi
kim park choi jung kang cho yoon jang sharma patel singh kumar gupta verma reddy iyer
nair mehta joshi mensah owusu boateng okafor okonkwo adeyemi nwosu diallo traore nkosi
dlamini ndlovu mokoena ivanov smirnov kuznetsov popov sokolov lebedev kozlov novikov
morozov volkov silva santos oliveira souza pereira costa carvalho almeida ferreira
rodrigues lima araujo ribeiro""".split()

_ACCENTS = {"a": "áàâä", "e": "éèêë", "i": "íî", "o": "óôö", "u": "úüû", "n": "ñ", "c": "ç"}
_HONORIFICS = ("Mr", "Mrs", "Dr", "Sheikh", "Haji", "Mr.", "Dr.")
_LEGAL_SUFFIXES = ("Ltd", "LLC", "Co.", "Inc.", "GmbH", "Limited")
VARIANT_KINDS = ("case", "accents", "order", "drop_middle", "typo", "transliteration", "honorific")


def natural_order(name: str) -> list[str]:
    """Words of a list name in speaking order: "HANIYA, Ismail" -> ["Ismail", "HANIYA"]."""
    if name.count(",") == 1:
        last, first = name.split(",")
        name = f"{first} {last}"
    return name.split()


def name_variant(name: str, kind: str, rng, *, person: bool = True) -> str | None:
    """One realistic spelling variant of a listed name, or None when `kind` does not apply
    (a middle name is dropped from persons' names only)."""
    words = natural_order(name)
    if not words:
        return None
    if kind == "case":
        return " ".join(w.lower() if rng.random() < 0.5 else w.title() for w in words)
    if kind == "accents":
        stripped = "".join(c for c in unicodedata.normalize("NFKD", " ".join(words))
                           if not unicodedata.combining(c))
        if stripped != " ".join(words):
            return stripped
        positions = [i for i, c in enumerate(stripped.lower()) if c in _ACCENTS]
        if not positions:
            return None
        chars = list(stripped.lower())
        for i in rng.sample(positions, min(2, len(positions))):
            chars[i] = rng.choice(_ACCENTS[chars[i]])
        return "".join(chars)
    if kind == "order":
        if len(words) < 2:
            return None
        shuffled = words[:]
        while shuffled == words:
            rng.shuffle(shuffled)
        return " ".join(shuffled)
    if kind == "drop_middle":
        if len(words) < 3 or not person:
            return None
        drop = rng.randrange(1, len(words) - 1)
        return " ".join(words[:drop] + words[drop + 1:])
    if kind == "typo":
        candidates = [i for i, w in enumerate(words) if len(w) >= 4 and w.isalpha()]
        if not candidates:
            return None
        i = rng.choice(candidates)
        word = words[i]
        pos = rng.randrange(1, len(word) - 1)
        edit = rng.choice(("sub", "del", "ins", "swap"))
        letter = rng.choice("abcdefghijklmnopqrstuvwxyz")
        if edit == "sub":
            word = word[:pos] + letter + word[pos + 1:]
        elif edit == "del":
            word = word[:pos] + word[pos + 1:]
        elif edit == "ins":
            word = word[:pos] + letter + word[pos:]
        else:
            word = word[:pos - 1] + word[pos] + word[pos - 1] + word[pos + 1:]
        if word.lower() == words[i].lower():
            return None
        return " ".join(words[:i] + [word] + words[i + 1:])
    if kind == "transliteration":
        for i, word in enumerate(words):
            folded = word.casefold().strip(".,'")
            canonical = VARIANTS.get(folded, folded)
            family = [canonical, *_VARIANT_FAMILIES.get(canonical, ())]
            choices = [v for v in family if v != folded]
            if len(family) > 1 and choices and len(canonical) > 2:
                return " ".join(words[:i] + [rng.choice(choices).title()] + words[i + 1:])
        return None
    if kind == "honorific":
        if any(w.casefold().strip(".,") in STOPWORDS for w in words):
            return None
        if rng.random() < 0.5:
            return f"{rng.choice(_HONORIFICS)} {' '.join(words)}"
        return f"{' '.join(words)} {rng.choice(_LEGAL_SUFFIXES)}"
    raise ValueError(f"unknown variant kind {kind!r}")
