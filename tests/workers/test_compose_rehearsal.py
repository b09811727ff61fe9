"""examples/compose played without Docker (issue 18, item 6): what its services run, with
the environment, config and secret files it gives them, as processes on this machine.

Docker is not here, so the images and the network are not what is tested: the example's
own `bridge.toml` is (its hosts and secret paths moved to this machine, its vendors to the
sandbox, its schedules shortened), its `init` script line by line, its `worker` command
twice (as `--scale worker=2`), its `serve` command (health, and every pair's endpoints
checking calls with the mounted webhook secrets), its `status` command, the password only through
`PGPASSFILE`, SIGTERM as its `stop_signal`, and the README's upgrade: workers stopped,
`init` again, workers started.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from bridge.sandbox_pair import Sandbox
from tests.postgres.cluster import Cluster, free_port
from tests.workers.conftest import wait_for

FOLDER = Path(__file__).parents[2] / "examples" / "compose"
PAIRS = ("acme", "globex")
#: each pair's linked tickets
LINKS = 5


def _compose() -> dict[str, Any]:
    return dict(yaml.safe_load((FOLDER / "docker-compose.yml").read_text(encoding="utf-8")))


class Rehearsal:
    """The example's services as processes: `run` for a one-shot container, `start` for a
    long-running one; each with the environment Compose would give it."""

    def __init__(self, folder: Path, cluster: Cluster, database: str) -> None:
        self.folder = folder
        self.compose = _compose()
        self.sandboxes = {name: Sandbox().start() for name in PAIRS}
        for sandbox in self.sandboxes.values():
            sandbox.relax_limits()
        self.secrets = folder / "run" / "secrets"
        self.links = folder / "etc" / "bridge" / "links"
        self.config = folder / "etc" / "bridge" / "bridge.toml"
        self.secrets.mkdir(parents=True)
        self.links.mkdir(parents=True)
        self._write_secrets(cluster, database)
        self._write_config(cluster.port, database)
        self.linked = {name: self._write_links(name) for name in PAIRS}
        self.started: list[tuple[subprocess.Popen[bytes], Path]] = []

    def _write_secrets(self, cluster: Cluster, database: str) -> None:
        """The files Compose mounts under /run/secrets, as the README makes them."""
        files = {name: spec["file"] for name, spec in self.compose["secrets"].items()}
        for pair, sandbox in self.sandboxes.items():
            values = {
                f"zendesk_{pair}": sandbox.zendesk_token,
                f"superoffice_{pair}_ticket": sandbox.superoffice.ticket,
                f"superoffice_{pair}_app": sandbox.superoffice.app_token,
                f"zendesk_{pair}_webhook": f"zendesk-{pair}-signing-secret",
                f"superoffice_{pair}_webhook": f"superoffice-{pair}-signing-secret",
            }
            for name, value in values.items():
                assert name in files, name  # a secret the example mounts
                (self.secrets / name).write_text(value, encoding="utf-8")
        pgpass = f"127.0.0.1:{cluster.port}:{database}:bridge:{cluster.password}\n"
        (self.secrets / "pgpass").write_text(pgpass, encoding="utf-8")
        for path in self.secrets.iterdir():
            path.chmod(0o600)  # libpq ignores a password file others may read

    def _write_config(self, port: int, database: str) -> None:
        """The example's bridge.toml with this machine's places in it, nothing else."""
        text = (FOLDER / "bridge.toml").read_text(encoding="utf-8")
        moved = text.replace("@postgres:5432/bridge", f"@127.0.0.1:{port}/{database}")
        moved = moved.replace('"/run/secrets/', f'"{self.secrets}/')
        moved = re.sub(r'every = "\d+m"', 'every = "2s"', moved)
        for pair, sandbox in self.sandboxes.items():
            zendesk, superoffice = sandbox.zendesk, sandbox.superoffice
            tenant = {"acme": "Cust10001", "globex": "Cust10002"}[pair]
            for old, new in (
                (f'"https://{pair}.zendesk.com"', f'"{zendesk.base_url}"'),
                (f'"bridge@{pair}.example"', f'"{zendesk.email}"'),
                (f'"https://sod.superoffice.com/{tenant}"', f'"{superoffice.base_url}"'),
                (f'tenant = "{tenant}"', f'tenant = "{superoffice.tenant}"'),
            ):
                assert old in moved, old
                moved = moved.replace(old, new)
        assert moved.count("127.0.0.1") >= 5
        self.config.write_text(moved, encoding="utf-8")

    def _write_links(self, pair: str) -> list[tuple[int, int]]:
        sandbox = self.sandboxes[pair]
        so_ids = sandbox.superoffice.seed_tickets(LINKS, title="Ticket {n}")
        zd_ids = sandbox.zendesk.seed_tickets(count=LINKS)
        rows = [f"{s},{z}" for s, z in zip(so_ids, zd_ids, strict=True)]
        csv = "\n".join(["superoffice_id,zendesk_id", *rows]) + "\n"
        (self.links / f"{pair}.csv").write_text(csv, encoding="utf-8")
        return list(zip(so_ids, zd_ids, strict=True))

    def environment(self) -> dict[str, str]:
        """Compose's `environment:` for every bridge service, paths moved here; no
        PGPASSWORD: the password comes from the file PGPASSFILE names."""
        declared = self.compose["x-bridge"]["environment"]
        assert set(declared) == {"BRIDGE_CONFIG", "PGPASSFILE", "BRIDGE_LOG_FORMAT"}
        moved = {
            "BRIDGE_CONFIG": str(self.config),
            "PGPASSFILE": str(self.secrets / "pgpass"),
        }
        assert declared["BRIDGE_CONFIG"] == "/etc/bridge/bridge.toml"
        assert declared["PGPASSFILE"] == "/run/secrets/pgpass"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "BRIDGE_"))}
        return {**env, **declared, **moved}

    def command(self, args: list[str]) -> list[str]:
        """A container's `ticket-bridge ARGS`, as this interpreter runs it."""
        return [sys.executable, "-m", "bridge", *args]

    def run(self, args: list[str]) -> str:
        """A one-shot container's `ticket-bridge ARGS`: its output; it must exit 0."""
        done = subprocess.run(
            self.command(args),
            env=self.environment(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done.stdout

    def init(self) -> None:
        """The `init` service: its script's lines in order, `sh -e` style."""
        service = self.compose["services"]["init"]
        assert service["entrypoint"] == ["/bin/sh", "-ec"]
        for line in filter(None, (raw.strip() for raw in service["command"][0].splitlines())):
            words = shlex.split(line.replace("/etc/bridge/links/", f"{self.links}/"))
            assert words[0] == "ticket-bridge"
            self.run(words[1:])

    def status(self) -> str:
        return self.run(self.compose["services"]["status"]["command"])

    def start_worker(self) -> subprocess.Popen[bytes]:
        service = self.compose["services"]["worker"]
        log = self.folder / f"worker-{len(self.started)}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                self.command(service["command"]),
                env=self.environment(),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.started.append((process, log))
        return process

    def start_serve(self, port: int) -> subprocess.Popen[bytes]:
        """The `serve` service, on a free loopback port here (its container listens on
        [serve] host and port, 0.0.0.0:8470)."""
        service = self.compose["services"]["serve"]
        assert service["ports"] == ["8470:8470"]
        log = self.folder / "serve.log"
        args = [*service["command"], "--host", "127.0.0.1", "--port", str(port)]
        with log.open("wb") as out:
            self.serving = subprocess.Popen(
                self.command(args), env=self.environment(), stdout=out, stderr=subprocess.STDOUT
            )
        self.started.append((self.serving, log))
        return self.serving

    def stop_workers(self) -> None:
        """`docker compose stop worker`: the service's stop signal, then its grace period
        (here a minute at most) before a kill, which the test counts as a failure."""
        service = self.compose["services"]["worker"]
        assert service["stop_signal"] == "SIGTERM"
        living = [(p, log) for p, log in self.started if p.poll() is None]
        for process, _ in living:
            process.send_signal(signal.SIGTERM)
        for process, log in living:
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
                raise AssertionError(log.read_text(encoding="utf-8", errors="replace")) from None
            assert process.returncode == 0, log.read_text(encoding="utf-8", errors="replace")

    def close(self) -> None:
        for process, _ in self.started:
            if process.poll() is None:
                process.kill()
                process.wait(5)
        for sandbox in self.sandboxes.values():
            sandbox.stop()


@pytest.fixture
def rehearsal(tmp_path: Path, pg_cluster: Cluster) -> Iterator[Rehearsal]:
    database = pg_cluster.create_database()
    played = Rehearsal(tmp_path, pg_cluster, database)
    try:
        yield played
    finally:
        played.close()
        pg_cluster.drop_database(database)


def test_the_compose_example_runs_as_its_services_would(rehearsal: Rehearsal) -> None:
    rehearsal.init()
    shown = rehearsal.status()  # every pair's ledger made and its links imported
    assert shown.count(f"Links: {LINKS}") == len(PAIRS), shown

    for _ in range(2):  # docker compose up -d --scale worker=2
        rehearsal.start_worker()
    wait_for(
        lambda: rehearsal.status().count("Last success: run") == len(PAIRS),
        timeout=90,
        what="each pair's first sync",
    )
    so_acme, zd_acme = rehearsal.linked["acme"][0]
    zd_globex = rehearsal.linked["globex"][1][1]
    # a SuperOffice soft delete in acme, a Zendesk one in globex: each reaches the other side
    rehearsal.sandboxes["acme"].superoffice.soft_delete([so_acme])
    rehearsal.sandboxes["globex"].zendesk.agent_act("delete", [zd_globex])
    so_globex = rehearsal.linked["globex"][1][0]

    def copied() -> bool:
        globex = rehearsal.sandboxes["globex"].superoffice.ticket_state(so_globex) or {}
        acme = rehearsal.sandboxes["acme"].zendesk.ticket_state(zd_acme)
        return acme == "deleted" and globex.get("deleted_at") is not None

    wait_for(
        copied,
        timeout=90,
        what="both changes copied by the example's workers",
    )
    queues = rehearsal.status()
    assert queues.count("Queue: ") == len(PAIRS), queues

    # `serve`: up beside the workers (its targeted runs go to their queue), every pair's
    # endpoints verifying calls with the webhook secrets the example mounts
    port = free_port()
    rehearsal.start_serve(port)
    base = f"http://127.0.0.1:{port}"

    def health() -> dict[str, Any] | None:
        try:
            answer = requests.get(f"{base}/health", timeout=5)
        except requests.ConnectionError:
            return None
        return dict(answer.json()) if answer.status_code == 200 else None

    wait_for(lambda: health() is not None, timeout=60, what="serve's health")
    assert (health() or {})["runs"] == "queue"
    for vendor in ("zendesk", "superoffice"):
        for pair in PAIRS:
            unsigned = requests.post(f"{base}/webhooks/{vendor}/{pair}", data=b"{}", timeout=5)
            assert unsigned.status_code == 401, (vendor, pair, unsigned.text)

    # the README's upgrade: stop the workers, `init` again (migrates; the links are
    # imported again, harmlessly), start them again; they go on where they were
    rehearsal.stop_workers()
    rehearsal.init()
    assert rehearsal.status().count(f"Links: {LINKS}") == len(PAIRS)
    rehearsal.start_worker()
    so_next = rehearsal.linked["acme"][1][0]
    zd_next = rehearsal.linked["acme"][1][1]
    rehearsal.sandboxes["acme"].superoffice.soft_delete([so_next])
    wait_for(
        lambda: rehearsal.sandboxes["acme"].zendesk.ticket_state(zd_next) == "deleted",
        timeout=90,
        what="a change after the upgrade",
    )
    rehearsal.stop_workers()
    for _process, log in rehearsal.started:
        output = log.read_text(encoding="utf-8", errors="replace")
        # no crash and no error logged (a run SIGTERM interrupted is retried: its
        # RunNotDoneError is in an info line of Procrastinate's, with its traceback)
        assert not any(line.startswith("Traceback") for line in output.splitlines()), output
        assert '"level": "error"' not in output, output
        assert rehearsal.sandboxes["acme"].zendesk_token not in output
