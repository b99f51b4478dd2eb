"""Reduce free text (names, remittance lines) to the SEPA / SWIFT basic Latin character set.

The EPC's SEPA rulebooks guarantee only this set end to end (EPC217-08,
"SEPA requirements for an extended character set"):

    a-z A-Z 0-9 / - ? : ( ) . , ' + and space

which is also SWIFT's "x" character set, so cross-border payments are safe
with it too. Everything else may be rejected or mangled by some bank on the
way, so we convert it here, deterministically, before the XML is built:

- German umlauts and sharp s become digraphs (ä -> ae, ö -> oe, ü -> ue,
  ß -> ss), as the German banks' (DK) conversion does: a payee called Müller
  is recognisable as "Mueller" (and name checks treat the two alike), while
  "Muller" is another family. The Nordic and ligature letters follow the same
  habit (æ -> ae, ø -> oe, œ -> oe, þ -> th).
- Every other accented Latin letter loses its accent (é -> e, ñ -> n, š -> s,
  å -> a) through Unicode compatibility decomposition, which also turns full
  width letters and ligatures (ﬁ -> fi) into plain ones.
- Greek and Cyrillic are transliterated letter by letter (ELOT 743 / a
  simplified ISO 9 scheme, close to the EPC217-08 conversion table).
- Punctuation gets its nearest allowed sign (“” -> ', & -> +, ; -> ,,
  [ ] -> ( ), _ -> -, € -> EUR); anything else (emoji, Arabic, Hebrew, CJK,
  control characters) becomes a space. Whitespace is collapsed and the result
  is cut to the field's length. A name written only in a script we cannot
  transliterate becomes empty: callers must treat that as "not payable by
  this rail" rather than invent a name.

XML escaping (&, <, quotes) is a different job: lxml does it when the
document is serialised, whatever text ends up in it.
"""

from __future__ import annotations

import re
import unicodedata

SEPA_ALLOWED = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/-?:().,'+ ")
SEPA_TEXT_RE = re.compile(r"[A-Za-z0-9/\-?:().,'+ ]*")

# Field lengths the SEPA rulebooks allow (the XSD allows Nm up to 140; SEPA only 70).
NAME_MAX = 70
USTRD_MAX = 140

_LATIN = {
    "ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue", "ß": "ss", "ẞ": "SS",
    "æ": "ae", "Æ": "AE", "ø": "oe", "Ø": "Oe", "œ": "oe", "Œ": "OE", "þ": "th", "Þ": "Th",
    "ð": "d", "Ð": "D", "đ": "d", "Đ": "D", "ł": "l", "Ł": "L", "ı": "i", "ħ": "h", "Ħ": "H",
    "ŀ": "l", "Ŀ": "L", "ŧ": "t", "Ŧ": "T", "ĸ": "k", "ŋ": "ng", "Ŋ": "Ng", "ſ": "s",
}
_PUNCTUATION = {
    "&": "+", '"': "'", "`": "'", "´": "'", "‘": "'", "’": "'", "‚": "'", "‛": "'", "“": "'", "”": "'",
    "„": "'", "«": "'", "»": "'", "‹": "'", "›": "'", "′": "'", "″": "'", "ʼ": "'",
    "‐": "-", "‑": "-", "‒": "-", "–": "-", "—": "-", "―": "-", "−": "-", "_": "-", "~": "-",
    ";": ",", "!": ".", "…": "...", "[": "(", "]": ")", "{": "(", "}": ")", "\\": "/", "|": "/",
    "€": "EUR", "£": "GBP", "№": "No", "°": " ", "⁄": "/", "∕": "/",
}
_GREEK = dict(zip(
    "αβγδεζηθικλμνξοπρσςτυφχψωΑΒΓΔΕΖΗΘΙΚΛΜΝΞΟΠΡΣΤΥΦΧΨΩ",
    ["a", "v", "g", "d", "e", "z", "i", "th", "i", "k", "l", "m", "n", "x", "o", "p", "r", "s", "s", "t",
     "y", "f", "ch", "ps", "o",
     "A", "V", "G", "D", "E", "Z", "I", "Th", "I", "K", "L", "M", "N", "X", "O", "P", "R", "S", "T",
     "Y", "F", "Ch", "Ps", "O"],
))
_CYRILLIC = dict(zip(
    "абвгдеёжзийклмнопрстуфхцчшщъыьэюяєіїґђјљњћџ",
    ["a", "b", "v", "g", "d", "e", "e", "zh", "z", "i", "i", "k", "l", "m", "n", "o", "p", "r", "s", "t",
     "u", "f", "kh", "ts", "ch", "sh", "shch", "", "y", "", "e", "iu", "ia", "ie", "i", "i", "g", "dj",
     "j", "lj", "nj", "c", "dz"],
))
_CYRILLIC.update({upper: lower_out.capitalize() for upper, lower_out in
                  ((k.upper(), v) for k, v in list(_CYRILLIC.items()))})
_TABLE = {**_LATIN, **_PUNCTUATION, **_GREEK, **_CYRILLIC}

_SPACES = re.compile(r"\s+")


def _char(ch: str) -> str:
    if ch in SEPA_ALLOWED:
        return ch
    mapped = _TABLE.get(ch)
    if mapped is not None:
        return mapped
    decomposed = unicodedata.normalize("NFKD", ch)
    if decomposed != ch:
        # é -> e + combining acute; Greek ά -> α + tonos: convert the base letters again
        return "".join(_char(part) for part in decomposed if not unicodedata.combining(part))
    return " "


def transliterate(text: str) -> str:
    """Every character mapped into the SEPA set (unmappable ones become spaces); no trimming."""
    return "".join(_char(ch) for ch in unicodedata.normalize("NFC", text))


def to_sepa_text(text: str | None, max_length: int) -> str:
    """`text` in the SEPA character set, whitespace collapsed, cut to `max_length` ('' if nothing is left)."""
    if not text:
        return ""
    reduced = _SPACES.sub(" ", transliterate(text)).strip()
    return reduced[:max_length].rstrip()


def clean_text(text: str | None, max_length: int) -> str:
    """For rails that take any Unicode: drop what XML cannot hold, collapse whitespace, cut to length."""
    if not text:
        return ""
    kept = "".join(
        " " if unicodedata.category(ch) in ("Cc", "Cs", "Co", "Cn") or ch in "\ufffe\uffff" else ch
        for ch in unicodedata.normalize("NFC", text)
    )
    return _SPACES.sub(" ", kept).strip()[:max_length].rstrip()


def is_sepa_text(text: str) -> bool:
    return SEPA_TEXT_RE.fullmatch(text) is not None
