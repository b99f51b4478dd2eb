"""PGP for bank files, through python-gnupg and the system's gpg, one GNUPGHOME per connection.

Outgoing: signed with our key, then encrypted to the bank's key (one OpenPGP
message, ASCII armour). Incoming: decrypted with our key and accepted only when
signed by the fingerprint pinned for the bank; anything else is refused with the
reason, and nothing of it is used.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


class PgpError(ValueError):
    """A file could not be sealed or opened (the message says why)."""


def _compact(fingerprint: str) -> str:
    return "".join(fingerprint.split()).upper()


@dataclass
class Pgp:
    """Our key pair and the bank's public key, in a GNUPGHOME of their own."""

    home: Path
    own_fingerprint: str           # signs what we send, decrypts what we receive
    peer_fingerprint: str          # the pinned key: we encrypt to it, and accept only its signatures
    passphrase: str | None = None

    def __post_init__(self) -> None:
        self.own_fingerprint = _compact(self.own_fingerprint)
        self.peer_fingerprint = _compact(self.peer_fingerprint)
        self._gpg = None

    @classmethod
    def with_keys(cls, home: str | os.PathLike, own_private_key: str, peer_public_key: str,
                  own_fingerprint: str, peer_fingerprint: str, passphrase: str | None = None) -> Pgp:
        """Import the keys (armoured text) into `home` and check their fingerprints are the ones named."""
        pgp = cls(Path(home), own_fingerprint, peer_fingerprint, passphrase)
        gpg = pgp.gpg()
        for label, text, fingerprint in (("own private key", own_private_key, pgp.own_fingerprint),
                                         ("bank's public key", peer_public_key, pgp.peer_fingerprint)):
            result = gpg.import_keys(text)
            imported = {_compact(f) for f in result.fingerprints}
            if fingerprint not in imported:
                raise PgpError(f"the {label} has fingerprint(s) {sorted(imported) or 'none'},"
                               f" not the one configured ({fingerprint})")
        return pgp

    def gpg(self):
        import gnupg

        if self._gpg is None:
            self.home.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(self.home, 0o700)
            self._gpg = gnupg.GPG(gnupghome=str(self.home))
            self._gpg.encoding = "utf-8"
        return self._gpg

    def seal(self, data: bytes) -> bytes:
        """Sign with our key, encrypt to the bank's key: ASCII-armoured bytes."""
        result = self.gpg().encrypt(data, [self.peer_fingerprint], sign=self.own_fingerprint,
                                    passphrase=self.passphrase, always_trust=True, armor=True)
        if not result.ok:
            raise PgpError(f"cannot sign and encrypt: {result.status} {result.stderr.strip()[-300:]}")
        return bytes(result.data)

    def open(self, data: bytes, name: str = "<file>") -> bytes:
        """Decrypt and verify: the plaintext, only when signed by the pinned fingerprint."""
        result = self.gpg().decrypt(data, passphrase=self.passphrase, always_trust=True)
        if not result.ok:
            raise PgpError(f"{name}: cannot decrypt ({result.status or 'not an OpenPGP message'})")
        signer = _compact(result.pubkey_fingerprint or result.fingerprint or "")
        if not result.valid or not signer:
            who = f"key id {result.key_id}" if getattr(result, "key_id", None) else "no key"
            raise PgpError(f"{name}: not signed by the bank's pinned key {self.peer_fingerprint}"
                           f" (signature: {result.status or 'none'}, {who})")
        if signer != self.peer_fingerprint:
            raise PgpError(f"{name}: signed by {signer}, not by the bank's pinned key {self.peer_fingerprint}")
        return bytes(result.data)

    def close(self) -> None:
        """Stop the gpg-agent of this home (it would outlive us otherwise)."""
        import subprocess

        if self._gpg is not None:
            subprocess.run(["gpgconf", "--homedir", str(self.home), "--kill", "all"],
                           capture_output=True, check=False)
            self._gpg = None
