"""`[pairs.NAME]` in the config: parsing, defaults laid over key by key, every problem at
once, and each pair's ledger URL beside the one `[ledger] url` names."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from bridge.config import DEFAULT_PAIR, ConfigError, PairChoiceError, load_config, load_pairs
from bridge.core.decide import MANUAL

PAIR = """
[pairs.{name}.zendesk]
base_url = "https://{name}.zendesk.com"
email = "admin@example.com"
token_env = "ZD_{upper}"

[pairs.{name}.superoffice]
base_url = "https://sod.superoffice.com/{name}"
tenant = "{name}"
ticket_env = "SO_{upper}"
app_token_env = "SO_APP"
"""


def pair(name: str, extra: str = "") -> str:
    return PAIR.format(name=name, upper=name.upper()) + extra


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bridge.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_two_pairs_each_with_its_own_accounts_ledger_and_schedule(tmp_path: Path) -> None:
    text = (
        '[ledger]\nurl = "sqlite:///ledger/bridge.db"\n'
        '[sync]\nmax_purges_per_run = 7\nconflict_policy = "latest-wins"\n'
        + pair("acme", '[pairs.acme.sync]\nconflict_policy = "manual"\n')
        + pair("globex", '[pairs.globex]\nevery = "90s"\n')
    )
    configs = load_pairs(write(tmp_path, text))
    assert list(configs) == ["acme", "globex"]
    acme, globex = configs["acme"], configs["globex"]
    assert acme.section("zendesk").base_url == "https://acme.zendesk.com"
    assert globex.section("superoffice").tenant == "globex"
    # top-level [sync] is every pair's default; a pair's own keys win key by key
    assert acme.sync.max_purges_per_run == globex.sync.max_purges_per_run == 7
    assert acme.sync.conflict_policy == MANUAL
    assert globex.sync.conflict_policy != MANUAL
    assert globex.every == timedelta(seconds=90)
    assert acme.every == timedelta(minutes=5)
    folder = tmp_path / "ledger"
    assert acme.ledger_url == f"sqlite:///{folder / 'bridge.acme.db'}"
    assert globex.ledger_url == f"sqlite:///{folder / 'bridge.globex.db'}"
    assert acme.shared_ledger_url == f"sqlite:///{folder / 'bridge.db'}"
    assert acme.pair_names == ("acme", "globex")


def test_a_postgresql_pair_gets_its_own_schema(tmp_path: Path) -> None:
    text = '[ledger]\nurl = "postgresql+psycopg://bridge@db:5432/bridge"\n' + pair("acme")
    acme = load_pairs(write(tmp_path, text))["acme"]
    assert acme.ledger_url.endswith("?options=-csearch_path%3Dbridge_acme")
    assert acme.shared_ledger_url == "postgresql+psycopg://bridge@db:5432/bridge"


def test_the_pair_named_default_keeps_the_ledger_itself(tmp_path: Path) -> None:
    """Moving a one-pair config's sections under [pairs.default] keeps its ledger."""
    configs = load_pairs(write(tmp_path, pair(DEFAULT_PAIR) + pair("acme")))
    assert configs[DEFAULT_PAIR].ledger_url == configs[DEFAULT_PAIR].shared_ledger_url
    assert configs["acme"].ledger_url != configs["acme"].shared_ledger_url


def test_choosing_a_pair(tmp_path: Path) -> None:
    path = write(tmp_path, pair("acme") + pair("globex"))
    assert load_config(path, "globex").pair == "globex"
    with pytest.raises(PairChoiceError, match="declares the pairs acme, globex"):
        load_config(path)
    with pytest.raises(PairChoiceError, match=r"no pair named 'acmee'.*did you mean \"acme\""):
        load_config(path, "acmee")
    single = write(tmp_path, pair("acme"))
    assert load_config(single).pair == "acme"


def test_every_problem_of_every_pair_at_once(tmp_path: Path) -> None:
    text = (
        '[zendesk]\nbase_url = "https://x.zendesk.com"\n'
        + pair("acme", '[pairs.acme]\nevery = "soon"\nschedule = 1\n')
        + pair("globex").replace('tenant = "globex"\n', "")
        + '[pairs.Bad-Name.sync]\ndirection = "both"\n'
        + "[pairs.initech.sync]\nmax_purges_per_run = -1\n"
    )
    with pytest.raises(ConfigError) as info:
        load_pairs(write(tmp_path, text))
    found = "\n".join(info.value.problems)
    assert "zendesk: with [pairs], each pair has its own: [pairs.NAME.zendesk]" in found
    assert "pairs.acme.every:" in found
    assert "not an interval" in found
    assert "pairs.acme.schedule: unknown key" in found
    assert "pairs.globex.superoffice.tenant: missing (required)" in found
    assert "pairs.Bad-Name: a pair's name is" in found
    assert "pairs.initech: missing section [pairs.initech.zendesk]" in found
    assert "pairs.initech.sync.max_purges_per_run" in found


def test_a_config_without_pairs_is_one_pair_named_default(tmp_path: Path) -> None:
    text = pair("x").replace("[pairs.x.", "[")
    config = load_config(write(tmp_path, text))
    assert config.pair == DEFAULT_PAIR
    assert config.pair_names == (DEFAULT_PAIR,)
    assert config.ledger_url == config.shared_ledger_url
