"""Every refusal of `bridge migrate` comes before any write to either vendor."""

from __future__ import annotations

import socket

from tests.migrate.conftest import Env

MIGRATE = ("migrate", "--from", "superoffice", "--to", "zendesk")
#: the pre-flight rights check sends one empty `SetDeletedStatusByIds` (it changes nothing)
RIGHTS_PROBE = {"POST Agents/Ticket/SetDeletedStatusByIds": 1}


def test_no_links_is_refused_before_any_vendor_call(env: Env) -> None:
    env.reset_counters()
    result = env.cli(*MIGRATE)
    assert result.exit_code == 2
    assert "no links" in result.output
    assert env.writes() == {}
    assert env.routes("zendesk") == {}
    assert env.routes("superoffice") == {}


def test_the_same_source_and_target_is_refused(env: Env) -> None:
    env.link(3)
    env.reset_counters()
    result = env.cli("migrate", "--from", "zendesk", "--to", "zendesk")
    assert result.exit_code == 2
    assert "same system" in result.output
    assert env.routes("zendesk") == {}
    assert env.routes("superoffice") == {}
    assert env.ops() == []


def test_contradicting_purge_flags_are_refused(env: Env) -> None:
    env.link(2)
    result = env.cli(*MIGRATE, "--include-purges", "--skip-purges")
    assert result.exit_code == 2
    assert "contradict" in result.output


def test_source_purges_without_a_purge_flag_are_refused_before_any_write(env: Env) -> None:
    pairs = env.link(5)
    env.so.soft_delete([pairs[0][0]])
    env.so.purge([pairs[1][0], pairs[2][0]])
    env.reset_counters()
    result = env.cli(*MIGRATE)
    assert result.exit_code == 2
    assert "2 tickets are purged in superoffice" in result.output
    assert "--include-purges" in result.output
    assert "--skip-purges" in result.output
    assert env.writes() == RIGHTS_PROBE
    assert env.ops() == []
    assert [env.zd_state(z) for _, z in pairs] == ["active"] * 5


def test_skip_purges_only_soft_deletes_what_the_source_purged(env: Env) -> None:
    pairs = env.link(3)
    env.so.purge([pairs[0][0]])
    result = env.cli(*MIGRATE, "--skip-purges")
    assert result.exit_code == 0, result.output
    assert env.states(pairs) == [("purged", "deleted"), ("active", "active"), ("active", "active")]
    assert "DELETE deleted_tickets/destroy_many" not in env.writes()


def test_an_unreachable_vendor_is_refused_before_any_write(env: Env) -> None:
    pairs = env.link(3)
    env.so.soft_delete([pairs[0][0]])
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    text = env.config_path.read_text(encoding="utf-8")
    env.config_path.write_text(
        text.replace(env.zd.base_url, f"http://127.0.0.1:{closed}"), encoding="utf-8"
    )
    env.reset_counters()
    result = env.cli(*MIGRATE)
    assert result.exit_code == 5
    assert "zendesk" in result.output
    assert "nothing was written" in result.output
    assert env.writes() == RIGHTS_PROBE  # SuperOffice was checked; nothing changed there
    assert env.ops() == []
    assert env.states(pairs)[0] == ("deleted", "active")
