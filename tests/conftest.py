"""Test-wide set-up: quiet logs (warnings and errors only, to stderr), and the ledger's
database backends.

`ledger_url` runs a test once per backend: a SQLite file in the test's folder, and a fresh
database on a throwaway PostgreSQL cluster (`tests/postgres/cluster.py`: one per test
process, started on first use). `postgres_url` is the PostgreSQL one alone;
`more_ledger_urls` makes more on the backend of `ledger_url`; `module_ledger_url` is a
module-wide world's, on each backend. Without the server programs
the PostgreSQL cases are skipped, named; `BRIDGE_REQUIRE_POSTGRES=1` (CI) makes that a
failure instead.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bridge.logging import configure_logging
from tests.postgres.cluster import Cluster, ClusterUnavailableError, find_bin_dir

#: the ledger backends a `ledger_url` test runs on
BACKENDS = ("sqlite", "postgresql")


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto` (pyproject.toml): two workers a core, at most four more than the cores.
    Most of a test's time is waiting (simulators answering over loopback, `bridge` child
    processes, a PostgreSQL server, a clock's sleeps): with one worker a core, CI's two
    cores ran at about half their capacity (16 min of CPU in a 14.6 min run, the suite
    on both backends); with two a core the same suite took 640 s instead of 794 s."""
    cores = os.cpu_count() or 1
    return min(2 * cores, cores + 4)


@pytest.fixture(autouse=True, scope="session")
def _quiet_logs() -> None:
    configure_logging("json", "warning")


@pytest.fixture(scope="session")
def pg_bin() -> Path:
    """The PostgreSQL server programs' folder: without them a test that needs them is
    skipped, named, or fails where they are required (CI)."""
    try:
        return find_bin_dir()
    except ClusterUnavailableError as exc:
        if os.environ.get("BRIDGE_REQUIRE_POSTGRES") == "1":
            pytest.fail(str(exc))
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def pg_cluster(pg_bin: Path) -> Iterator[Cluster]:
    """The throwaway cluster; its password reaches the driver as a user's would, through
    PGPASSWORD (also in every bridge child process a test starts)."""
    cluster = Cluster().start()
    patch = pytest.MonkeyPatch()
    patch.setenv("PGPASSWORD", cluster.password)
    try:
        yield cluster
    finally:
        patch.undo()
        cluster.stop()


@pytest.fixture
def postgres_url(pg_cluster: Cluster) -> Iterator[str]:
    """The URL of a new, empty database on the throwaway cluster, dropped afterwards."""
    name = pg_cluster.create_database()
    try:
        yield pg_cluster.url(name)
    finally:
        pg_cluster.drop_database(name)


@pytest.fixture(params=BACKENDS)
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A ledger URL on each backend in turn: SQLite in the test's folder, PostgreSQL on
    the throwaway cluster (an empty database of the test's own)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def more_ledger_urls(
    ledger_url: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[], str]]:
    """Another empty ledger URL on the backend of `ledger_url`, each time it is called (a
    test that compares two ledgers)."""
    made: list[str] = []
    cluster: Cluster | None = None

    def make() -> str:
        nonlocal cluster
        if ledger_url.startswith("sqlite"):
            return f"sqlite:///{tmp_path / f'more-{len(made)}.db'}"
        cluster = request.getfixturevalue("pg_cluster")
        made.append(cluster.create_database())
        return cluster.url(made[-1])

    yield make
    for name in made:
        assert cluster is not None
        cluster.drop_database(name)


@pytest.fixture(scope="module", params=BACKENDS)
def module_ledger_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """The `[ledger] url` of a world a module builds once for its tests, on each backend
    in turn: None keeps the config's own SQLite file; on PostgreSQL, an empty database of
    the module's own."""
    if request.param == "sqlite":
        yield None
        return
    cluster: Cluster = request.getfixturevalue("pg_cluster")
    name = cluster.create_database()
    try:
        yield cluster.url(name)
    finally:
        cluster.drop_database(name)


@pytest.fixture
def backend() -> str:
    """The ledger backend of a sandbox world (`world_ledger_url`): SQLite unless a test
    asks for both with `@both_backends`."""
    return "sqlite"


#: run a sandbox-world test (sync, migrate, e2e) on each backend: it overrides `backend`
both_backends = pytest.mark.parametrize("backend", BACKENDS)


@pytest.fixture
def world_ledger_url(backend: str, request: pytest.FixtureRequest) -> str | None:
    """The `[ledger] url` a sandbox world's config gets: None keeps the config's own
    SQLite file; on PostgreSQL, an empty database of the test's own."""
    if backend == "sqlite":
        return None
    return str(request.getfixturevalue("postgres_url"))
