"""A planted secret never leaves: vendors echo it in error bodies, and it is searched for in
every output stream, the ledger (every row of every table; on SQLite its files too) and the
report."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import MetaData, select

from tests.conftest import both_backends
from tests.e2e.conftest import Live

#: what both simulators were configured to accept (bridge reads them from secret files)
SECRETS = ("sandbox-token", "7T:sandbox", "sandbox-app")


def _echo(secret: str) -> dict[str, str]:
    return {"error": f"bad credentials {secret}", "description": f"Authorization: Bearer {secret}"}


def _assert_clean(text: str, where: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} leaked into {where}"


def _ledger_rows(world: Live) -> str:
    """Every value of every row of every table in the ledger, as text (either backend)."""
    tables = MetaData()
    tables.reflect(world.ledger.engine)
    values: list[str] = []
    with world.ledger.engine.connect() as connection:
        for table in tables.sorted_tables:
            for row in connection.execute(select(table)):
                values += [v.decode("latin-1") if isinstance(v, bytes) else str(v) for v in row]
    return "\n".join(values)


@both_backends
def test_secrets_echoed_by_vendors_are_in_no_output_ledger_or_report(
    live: Live, tmp_path: Path, backend: str
) -> None:
    pairs = live.link(3)
    assert live.bridge("sync").returncode == 0
    live.so.soft_delete([pairs[0][0]])
    # every write refused with a body that echoes the credentials, then reads too
    live.zd.add_fault("status", method="DELETE", status=400, body=_echo("sandbox-token"))
    live.so.add_fault("status", method="POST", status=400, body=_echo("7T:sandbox"))
    outputs = [live.bridge("sync"), live.bridge("status"), live.bridge("conflicts", "list")]
    live.zd.add_fault("status", status=401, body=_echo("sandbox-token"))
    live.so.add_fault("status", status=401, body=_echo("sandbox-app"))
    outputs += [live.bridge("check"), live.bridge("sync"), live.bridge("--debug", "sync")]
    live.zd.clear_faults()
    live.so.clear_faults()
    report = tmp_path / "report.html"
    outputs.append(live.bridge("report", "-o", str(report)))
    outputs.append(live.bridge("report", "--format", "json", "-o", "-"))
    assert any("bad credentials" in o.stderr + o.stdout for o in outputs)  # the echo got out
    for number, result in enumerate(outputs):
        _assert_clean(result.stdout, f"stdout of command {number}")
        _assert_clean(result.stderr, f"stderr of command {number}")
    _assert_clean(report.read_text(encoding="utf-8"), "the HTML report")
    ledger = {"the ledger's rows": _ledger_rows(live)}
    if backend == "sqlite":  # its files as stored: free pages and the journal too
        files = [p.read_bytes().decode("latin-1") for p in live.folder.glob("bridge.db*")]
        ledger["the ledger's files"] = "".join(files)
    for where, stored in ledger.items():
        assert "bad credentials" in stored, where  # what the vendor said is kept, masked
        _assert_clean(stored, where)
