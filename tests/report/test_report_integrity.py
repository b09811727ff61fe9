"""The report's seal: SHA-256 of its content and the runs it covers, an optional Ed25519
signature with a key named in the config, `bridge report verify`, and a reader that closes
the pipe early."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bridge.cli import main
from bridge.cli.exitcodes import ExitCode
from bridge.config import load_config
from bridge.ledger import Ledger
from bridge.ledger.tables import set_clock
from bridge.report.integrity import Seal, html_trailer
from bridge.vendors.registry import SIDES
from tests.report.conftest import T0, at, run


@pytest.fixture(autouse=True)
def _clock() -> Iterator[None]:
    """'Today' is two days after the synthetic history."""
    set_clock(lambda: at(2 * 1440))
    yield
    set_clock(None)


def verify(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["report", "verify", *args])
    return result.exit_code, result.stdout, result.stderr


def _key(folder: Path, name: str) -> tuple[Path, Path, bytes]:
    """An Ed25519 key pair as PEM files (private 0600, public), and the private PEM."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    private_path, public_path = folder / f"{name}.pem", folder / f"{name}.pub.pem"
    private_path.write_bytes(private)
    private_path.chmod(0o600)
    public_path.write_bytes(public)
    return private_path, public_path, private


def _sign_with(home: Path, key: Path) -> None:
    config = home / "bridge.toml"
    text = config.read_text(encoding="utf-8").replace(
        '# signing_key_file = "report-signing.pem"', f'signing_key_file = "{key.name}"'
    )
    assert f'signing_key_file = "{key.name}"' in text
    config.write_text(text, encoding="utf-8")


def test_an_html_report_carries_its_digest_and_runs_and_verifies(
    filled: Path, tmp_path: Path
) -> None:
    target = tmp_path / "r.html"
    code, _, err = run(filled, "-o", str(target))
    assert code == 0, err
    assert "sealed." in err
    text = target.read_text(encoding="utf-8")
    assert "Ledger runs covered: run 1." in text
    assert text.endswith("</footer>\n</body></html>\n")
    code, out, _ = verify(str(target))
    assert code == 0
    assert "content: intact" in out
    assert "; ledger run 1\n" in out
    assert "signature: not signed" in out
    # one character of a row changed
    changed = tmp_path / "changed.html"
    changed.write_text(text.replace("403 no right", "403 no fight"), encoding="utf-8")
    code, out, err = verify(str(changed))
    assert code == ExitCode.ATTENTION
    assert "content: CHANGED" in out
    assert "NOT VERIFIED" in err
    # the seal edited to claim other runs, or text after it: no seal any more
    other = tmp_path / "other.html"
    other.write_text(text.replace('"runs":"1-1"', '"runs":"1-9"'), encoding="utf-8")
    appended = tmp_path / "appended.html"
    appended.write_text(text + "<p>added</p>\n", encoding="utf-8")
    for path in (other, appended):
        code, out, _ = verify(str(path))
        assert code == ExitCode.ATTENTION
        assert "no seal" in out


def test_a_csv_report_is_sealed_beside_it(filled: Path, tmp_path: Path) -> None:
    target = tmp_path / "q.csv"
    code, _, err = run(filled, "--format", "csv", "-o", str(target))
    assert code == 0, err
    seal_path = tmp_path / "q.csv.seal"
    assert "seal in q.csv.seal" in err
    assert stat.S_IMODE(seal_path.stat().st_mode) == 0o600
    seal = Seal.from_json(seal_path.read_text(encoding="utf-8"))
    assert (seal.format, seal.runs, seal.run_count) == ("csv", "1-1", 1)
    assert target.read_text(encoding="utf-8").startswith("event_id,")  # rows stay pure CSV
    assert verify(str(target))[0] == 0
    target.write_text(target.read_text(encoding="utf-8").replace(",confirmed,", ",failed,", 1))
    code, out, _ = verify(str(target))
    assert code == ExitCode.ATTENTION
    assert "CHANGED" in out
    seal_path.unlink()
    assert verify(str(target))[0] == ExitCode.ATTENTION


def test_a_report_on_stdout_is_sealed_too(filled: Path, tmp_path: Path) -> None:
    code, out, _ = run(filled, "--format", "md", "-o", "-")
    assert code == 0
    saved = tmp_path / "saved.md"
    saved.write_bytes(out.encode("utf-8"))
    assert "## Integrity" in out
    assert verify(str(saved))[0] == 0


def test_signed_with_the_configured_key_and_checked_with_its_public_half(
    filled: Path, tmp_path: Path
) -> None:
    private, public, private_pem = _key(filled, "report-signing")
    _, stranger, _ = _key(tmp_path, "stranger")
    _sign_with(filled, private)
    target = tmp_path / "signed.html"
    code, out, err = run(filled, "-o", str(target))
    assert code == 0, err
    assert "sealed and signed" in err
    text = target.read_text(encoding="utf-8")
    key_body = b"".join(private_pem.splitlines()[1:-1]).decode()
    for shown in (text, out, err):
        assert key_body not in shown
        assert "PRIVATE KEY" not in shown
    code, out, _ = verify(str(target), "--public-key", str(public))
    assert code == 0, out
    assert "signature: valid" in out
    code, out, _ = verify(str(target), "--public-key", str(stranger))
    assert code == ExitCode.ATTENTION
    assert "signature: INVALID (not made by another key" in out
    code, out, _ = verify(str(target))
    assert code == 0
    assert "not checked" in out
    # someone changes a row and re-seals it without the key: the digest matches, the
    # signature does not
    forged = tmp_path / "forged.html"
    seal = Seal.from_json(text[text.rindex("<!--bridge-seal ") + 16 : text.rindex("-->")])
    body = text[: len(text) - len(html_trailer(seal))].replace("403 no right", "all fine")
    resealed = replace(seal, sha256=hashlib.sha256(body.encode("utf-8")).hexdigest())
    forged.write_text(body + html_trailer(resealed), encoding="utf-8")
    code, out, _ = verify(str(forged), "--public-key", str(public))
    assert code == ExitCode.ATTENTION
    assert "content: intact" in out
    assert "signature: INVALID" in out
    # a report that is not signed fails when a key is expected
    config = (filled / "bridge.toml").read_text(encoding="utf-8")
    (filled / "bridge.toml").write_text(
        config.replace(f'signing_key_file = "{private.name}"', ""), encoding="utf-8"
    )
    unsigned = tmp_path / "unsigned.html"
    assert run(filled, "-o", str(unsigned))[0] == 0
    code, out, _ = verify(str(unsigned), "--public-key", str(public))
    assert code == ExitCode.ATTENTION
    assert "signature: MISSING" in out


def test_a_bad_key_file_is_a_usage_error_that_shows_no_key(filled: Path, tmp_path: Path) -> None:
    bad = filled / "report-signing.pem"
    bad.write_text("-----BEGIN PRIVATE KEY-----\nc2VjcmV0LXN0dWZm\n-----END PRIVATE KEY-----\n")
    _sign_with(filled, bad)
    code, out, err = run(filled, "-o", str(tmp_path / "r.html"))
    assert code == ExitCode.USAGE
    assert "is not an unencrypted PEM private key" in err
    assert "c2VjcmV0LXN0dWZm" not in out + err
    assert not (tmp_path / "r.html").exists()
    # the key itself in the config is refused, naming the right key
    config = filled / "bridge.toml"
    config.write_text(
        config.read_text(encoding="utf-8").replace(
            f'signing_key_file = "{bad.name}"', 'signing_key = "c2VjcmV0"'
        ),
        encoding="utf-8",
    )
    code, _, err = run(filled, "-o", str(tmp_path / "r.html"))
    assert code == ExitCode.USAGE
    assert "report.signing_key: the key itself never goes in the config" in err
    assert "c2VjcmV0" not in err


def test_verify_needs_no_config_and_reports_unreadable_input(tmp_path: Path) -> None:
    plain = tmp_path / "plain.html"
    plain.write_text("<!DOCTYPE html><p>hello</p>\n", encoding="utf-8")
    code, out, _ = verify(str(plain))
    assert code == ExitCode.ATTENTION
    assert "no seal" in out
    code, _, err = verify(str(tmp_path / "missing.html"))
    assert code == ExitCode.USAGE
    assert "does not exist" in err
    code, _, err = verify(str(plain), "--public-key", str(plain))
    assert code == ExitCode.USAGE
    assert "is not a PEM Ed25519 public key" in err


# --- a reader that goes away -------------------------------------------------------------


@pytest.fixture
def busy(home: Path) -> Path:
    """A ledger with 4,000 observed changes: far more report than a pipe buffer holds."""
    with Ledger.open(load_config(home / "bridge.toml").ledger_url, sides=SIDES) as ledger:
        ledger.bulk_append(
            "run",
            [
                {
                    "id": 1,
                    "kind": "sync",
                    "holder": "t",
                    "started_at": T0,
                    "outcome": "converged",
                    "counts": "{}",
                }
            ],
        )
        ledger.bulk_append(
            "link",
            [
                {"id": n, "first_id": n, "second_id": 50_000 + n, "origin": "csv", "created_at": T0}
                for n in range(1, 4001)
            ],
        )
        ledger.bulk_append(
            "event",
            [
                {
                    "id": n,
                    "at": T0 + timedelta(seconds=n),
                    "run_id": 1,
                    "link_id": n,
                    "kind": "observed",
                    "side": "zendesk",
                    "ticket_id": 50_000 + n,
                    "transition": "soft_delete",
                    "from_state": "active",
                    "to_state": "soft_deleted",
                    "cause": "user",
                    "actor_id": 7,
                    "vendor_time": T0,
                }
                for n in range(1, 4001)
            ],
        )
    return home / "bridge.toml"


@pytest.mark.parametrize("fmt", ["html", "csv"])
def test_report_piped_into_head_ends_quietly(busy: Path, fmt: str) -> None:
    """`bridge report -o - | head -1`: a real pipe, closed after one line."""
    writer = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bridge",
            "--config",
            str(busy),
            "report",
            "--format",
            fmt,
            "--detail-rows",
            "4000",
            "--until",
            "2026-05-10",
            "-o",
            "-",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={k: v for k, v in os.environ.items() if k != "BRIDGE_CONFIG"},
    )
    assert writer.stdout is not None
    assert writer.stderr is not None
    head = subprocess.run(["head", "-1"], stdin=writer.stdout, capture_output=True, timeout=60)
    writer.stdout.close()
    code = writer.wait(timeout=60)
    err = writer.stderr.read().decode()
    writer.stderr.close()
    assert head.stdout.strip()
    assert "Traceback" not in err
    assert "Exception ignored" not in err
    assert code == 141, err  # 128 + SIGPIPE: the output was far larger than the pipe
