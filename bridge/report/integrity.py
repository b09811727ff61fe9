"""The report's seal: the SHA-256 of its content and the ledger runs it covers, optionally
signed with Ed25519, and how `bridge report verify` checks it.

A sealed report is its content followed by a trailer that states the seal. HTML and
Markdown carry the trailer at their end (a visible footer, and the seal as a comment that
`verify` reads); CSV and JSON Lines stay pure rows, so their seal is a file beside them,
`FILE.seal`. The trailer is rebuilt from the seal when verifying and must match the end of
the file byte for byte: a changed row, a changed seal or anything appended is found.

The signature is over the seal's statement (format, digest, period, runs, generation time,
key fingerprint), which binds the digest and so the content: a 300 MB export is signed
without holding it in memory. The signing key is an Ed25519 private key in a PEM file named
in the config (`[report] signing_key_file`); it is read when a report is written and never
copied anywhere. `verify` checks a signature against a public key the reader trusts
(`--public-key`), never against anything the report itself carries.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from bridge.errors import BridgeError, ExitCode
from bridge.report.writer import Writer

__all__ = [
    "SEAL_SUFFIX",
    "HashingWriter",
    "Seal",
    "Signer",
    "SigningKeyError",
    "Verdict",
    "html_trailer",
    "load_public_key",
    "load_signer",
    "md_trailer",
    "verify_report",
]

SEAL_SUFFIX = ".seal"
_MARK = "<!--bridge-seal "
_DOMAIN = b"bridge report seal v1\n"
_CHUNK = 1 << 20


class SigningKeyError(BridgeError, ValueError):
    """A signing or public key file that cannot be used; the message names the file only."""

    exit_code = ExitCode.USAGE


class HashingWriter:
    """Passes text on to `out` and hashes it as the UTF-8 it becomes on disk."""

    def __init__(self, out: Writer) -> None:
        self._out = out
        self._hash = hashlib.sha256()

    def write(self, text: str, /) -> int:
        self._hash.update(text.encode("utf-8"))
        return self._out.write(text)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


@dataclass(frozen=True, slots=True)
class Seal:
    """What a report states about itself. `runs` is "first-last" and `run_count` how many
    (None, 0: no run); `key` is the signing key's fingerprint, `signature` base64."""

    format: str
    sha256: str
    period: str
    runs: str | None
    run_count: int
    generated_at: str
    key: str | None = None
    signature: str | None = None

    def statement(self) -> bytes:
        """The signed bytes: every field but the signature, canonical JSON."""
        fields = asdict(self)
        fields.pop("signature")
        return _DOMAIN + json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()

    def to_json(self) -> str:
        text = json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))
        return text.replace("--", "-\\u002d")  # never ends an HTML comment early

    @classmethod
    def from_json(cls, text: str) -> Seal:
        data = json.loads(text)
        if not isinstance(data, dict) or set(data) != set(cls.__dataclass_fields__):
            raise ValueError("not a bridge report seal")
        return cls(**data)


def fingerprint(key: Ed25519PublicKey) -> str:
    """SHA-256 of the raw public key, hex: how a report names the key that signed it."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


@dataclass(frozen=True, slots=True)
class Signer:
    """An Ed25519 private key loaded from its file, for signing seals."""

    key: Ed25519PrivateKey

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.key.public_key())

    def sign(self, seal: Seal) -> Seal:
        named = replace(seal, key=self.fingerprint, signature=None)
        signature = base64.b64encode(self.key.sign(named.statement())).decode("ascii")
        return replace(named, signature=signature)


def _read_key_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SigningKeyError(f"cannot read the key file {path}: {exc.strerror or exc}") from None


def load_signer(path: Path) -> Signer:
    """The Ed25519 private key in PEM file `path` (unencrypted PKCS#8, as `openssl genpkey
    -algorithm ed25519` writes it)."""
    data = _read_key_file(path)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise SigningKeyError(
            f"{path} is not an unencrypted PEM private key (make one with "
            "`openssl genpkey -algorithm ed25519 -out FILE`)"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{path} holds a private key that is not Ed25519")
    return Signer(key)


def load_public_key(path: Path) -> Ed25519PublicKey:
    """The Ed25519 public key in PEM file `path` (or the public half of a private key)."""
    data = _read_key_file(path)
    key: object
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        try:
            key = serialization.load_pem_private_key(data, password=None).public_key()
        except (ValueError, TypeError):
            raise SigningKeyError(f"{path} is not a PEM Ed25519 public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise SigningKeyError(f"{path} holds a key that is not Ed25519")
    return key


def _signature_text(seal: Seal) -> str:
    if seal.signature is None:
        return "not signed"
    return f"signed (Ed25519) by the key with SHA-256 fingerprint {seal.key}"


def _runs_text(seal: Seal) -> str:
    if not seal.runs:
        return "no ledger run"
    first, _, last = seal.runs.partition("-")
    return f"run {first}" if first == last else f"runs {first} to {last} ({seal.run_count} runs)"


def html_trailer(seal: Seal) -> str:
    """The end of a sealed HTML report: a visible footer, the seal, and the page's end."""
    return (
        '<footer class="seal"><h2>Integrity</h2><p>SHA-256 of this report up to this '
        f"footer: <code>{seal.sha256}</code>. Ledger {_runs_text(seal)}; period "
        f"{seal.period}; generated {seal.generated_at}; {_signature_text(seal)}. Check it "
        "with <code>bridge report verify FILE</code>.</p>"
        f"{_MARK}{seal.to_json()}-->"
        "</footer>\n</body></html>\n"
    )


def md_trailer(seal: Seal) -> str:
    """The end of a sealed Markdown report: a visible note and the seal as a comment."""
    return (
        "\n---\n\n## Integrity\n\n"
        f"SHA-256 of this report above the line: `{seal.sha256}`. Ledger {_runs_text(seal)}; "
        f"period {seal.period}; generated {seal.generated_at}; {_signature_text(seal)}. "
        "Check it with `bridge report verify FILE`.\n\n"
        f"{_MARK}{seal.to_json()}-->\n"
    )


#: the formats whose seal is inside the file, and how their trailer is written
TRAILERS: dict[str, Callable[[Seal], str]] = {"html": html_trailer, "md": md_trailer}


@dataclass(frozen=True, slots=True)
class Verdict:
    """What `verify` found: `ok` and one line per check, for a person to read."""

    ok: bool
    seal: Seal | None
    lines: tuple[str, ...]


def _chunks(path: Path, limit: int | None = None) -> Iterator[bytes]:
    with path.open("rb") as handle:
        left = limit
        while left is None or left > 0:
            block = handle.read(_CHUNK if left is None else min(_CHUNK, left))
            if not block:
                return
            if left is not None:
                left -= len(block)
            yield block


def _digest(path: Path, limit: int | None = None) -> str:
    digest = hashlib.sha256()
    for block in _chunks(path, limit):
        digest.update(block)
    return digest.hexdigest()


def _inline_seal(path: Path) -> tuple[Seal, int] | None:
    """The seal at the end of an HTML or Markdown report, and the content's length in
    bytes; None when there is no seal there, or the trailer is not exactly the seal's."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        handle.seek(max(0, size - 64 * 1024))
        tail = handle.read().decode("utf-8", errors="replace")
    start = tail.rfind(_MARK)
    if start < 0:
        return None
    end = tail.find("-->", start)
    if end < 0:
        return None
    try:
        seal = Seal.from_json(tail[start + len(_MARK) : end])
    except (ValueError, TypeError):
        return None
    trailer = TRAILERS.get(seal.format)
    if trailer is None:
        return None
    expected = trailer(seal).encode("utf-8")
    with path.open("rb") as handle:
        handle.seek(max(0, size - len(expected)))
        if handle.read() != expected:
            return None
    return seal, size - len(expected)


def verify_report(path: Path, public_key: Ed25519PublicKey | None) -> Verdict:
    """Check the report at `path` against its seal (inside it, or `path.seal` beside it):
    the content's SHA-256, then the signature if `public_key` is given (a report that is
    not signed then fails)."""
    found = _inline_seal(path)
    beside = path.with_name(path.name + SEAL_SUFFIX)
    seal: Seal | None = None
    length: int | None = None
    if found is not None:
        seal, length = found
        where = "the seal at its end"
    elif beside.exists():
        try:
            seal = Seal.from_json(beside.read_text(encoding="utf-8").strip())
        except (ValueError, TypeError, UnicodeDecodeError):
            return Verdict(False, None, (f"{beside} is not a bridge report seal",))
        if seal.format in TRAILERS:
            return Verdict(
                False,
                seal,
                (
                    f"{beside} is the seal of a {seal.format} report, "
                    "whose seal is inside it: this file has none",
                ),
            )
        where = f"the seal beside it ({beside.name})"
    else:
        return Verdict(
            False,
            None,
            (
                "no seal: not a sealed bridge report, or its seal was changed, removed "
                "or had text appended after it",
            ),
        )
    assert seal is not None
    lines = [
        f"seal: {where}; format {seal.format}; period {seal.period}; ledger {_runs_text(seal)}"
    ]
    actual = _digest(path, length)
    if actual != seal.sha256:
        lines.append(f"content: CHANGED (SHA-256 {actual}, the seal says {seal.sha256})")
        return Verdict(False, seal, tuple(lines))
    lines.append(f"content: intact (SHA-256 {actual})")
    if public_key is None:
        lines.append(
            f"signature: {_signature_text(seal)}; not checked (give --public-key to check it)"
            if seal.signature
            else "signature: not signed"
        )
        return Verdict(True, seal, tuple(lines))
    if seal.signature is None:
        lines.append("signature: MISSING (the report is not signed; a public key was given)")
        return Verdict(False, seal, tuple(lines))
    expected = fingerprint(public_key)
    try:
        signature = base64.b64decode(seal.signature, validate=True)
        public_key.verify(signature, seal.statement())
    except (InvalidSignature, ValueError):
        which = "another key" if seal.key != expected else "this key"
        lines.append(f"signature: INVALID (not made by {which} over this seal)")
        return Verdict(False, seal, tuple(lines))
    lines.append(f"signature: valid, by the key with SHA-256 fingerprint {expected}")
    return Verdict(True, seal, tuple(lines))
