"""The vendors bridge knows, and the side each one stands on.

The core never names a vendor: the application layer (the factory, the CLI, the sandbox,
the cassette set-up) finds each vendor here, and everything about a vendor stays in its own
package (`bridge/vendors/<name>/`). This module is the one place that lists them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Generic, Protocol, TypeVar, cast

from bridge.core.model import Side, Sides
from bridge.lazy import import_attribute
from bridge.settings import Table, VendorSettings
from bridge.vendors import superoffice, zendesk
from bridge.vendors.cassette_facts import CassetteFacts
from bridge.vendors.superoffice import cassettes as superoffice_cassettes
from bridge.vendors.superoffice.settings import read_settings as superoffice_settings
from bridge.vendors.zendesk import cassettes as zendesk_cassettes
from bridge.vendors.zendesk.settings import read_settings as zendesk_settings

if TYPE_CHECKING:
    from bridge.core.contract import Adapter, BudgetBook
    from bridge.core.hints import WebhookFormat
    from bridge.sandbox import SimulatorBase
    from bridge.vendors.clocks import Clock, Monotonic, Sleep
    from bridge.vendors.probe import DeepCheck
    from bridge.vendors.superoffice.sim.simulator import SuperOfficeSimulator
    from bridge.vendors.webhook_subscription import WebhookSubscriptions
    from bridge.vendors.zendesk.sim.simulator import ZendeskSimulator

__all__ = [
    "CONFIG_ORDER",
    "MAX_TICKET_ID",
    "SIDES",
    "SUPEROFFICE",
    "SUPEROFFICE_VENDOR",
    "VENDORS",
    "ZENDESK",
    "ZENDESK_VENDOR",
    "AdapterBuilder",
    "CassetteFacts",
    "Vendor",
    "vendor",
]

SUPEROFFICE: Final = superoffice.SIDE
ZENDESK: Final = zendesk.SIDE
#: the ledger's order of the two sides: SuperOffice first, Zendesk second
SIDES: Final = Sides(SUPEROFFICE, ZENDESK)
#: the largest ticket id each vendor issues
MAX_TICKET_ID: Final[dict[Side, int]] = {
    SUPEROFFICE: superoffice.MAX_TICKET_ID,
    ZENDESK: zendesk.MAX_TICKET_ID,
}

SimT = TypeVar("SimT", bound="SimulatorBase")


class AdapterBuilder(Protocol):
    """Builds a vendor's adapter from its parsed config section, on the given clock.
    Reveals the section's secrets (raises `SecretError` when one cannot be read)."""

    def __call__(
        self,
        settings: Any,
        /,
        *,
        sleep: Sleep,
        clock: Clock | None,
        monotonic: Monotonic,
        budgets: BudgetBook | None = None,
    ) -> Adapter: ...


@dataclass(frozen=True, slots=True)
class Vendor(Generic[SimT]):
    """One vendor: the side it stands on, its config section, how its adapter is built,
    its simulator and its cassette facts. Its adapter, simulator, probes and webhook parts
    are named as `module:name` and imported when first used (`bridge.lazy`): reading a
    config needs only the settings readers, not the HTTP client, the wire models or the
    SuperOffice system-user login's crypto."""

    #: the side name, as the ledger, the CLI and the cassette folder spell it
    name: Side
    #: the `bridge.toml` section holding its settings (`[zendesk]`)
    section: str
    #: reads that section (None when a problem was recorded in the table)
    read_settings: Callable[[Table], VendorSettings | None]
    #: `module:function` building its adapter (`build`, an `AdapterBuilder`)
    build_path: str
    #: `module:class` of its simulator (`simulator`)
    simulator_path: str
    cassettes: CassetteFacts
    #: `module:function` of `bridge check --deep`'s read-only probes (`deep_check`)
    deep_check_path: str
    #: `module:object` of how its webhooks are signed and read (`webhooks`)
    webhooks_path: str
    #: `module:object` of how bridge's webhook is registered with it (`subscriptions`)
    subscriptions_path: str

    @property
    def build(self) -> AdapterBuilder:
        """Builds its adapter from its settings (imports the adapter on first use)."""
        return cast("AdapterBuilder", import_attribute(self.build_path))

    @property
    def simulator(self) -> type[SimT]:
        """Its simulator (the sandbox's HTTP server for this vendor)."""
        return cast("type[SimT]", import_attribute(self.simulator_path))

    @property
    def webhooks(self) -> WebhookFormat:
        """How its webhooks are checked and read (`bridge serve`, the simulators)."""
        return cast("WebhookFormat", import_attribute(self.webhooks_path))

    @property
    def subscriptions(self) -> WebhookSubscriptions:
        """How bridge's webhook is registered, checked and removed (`bridge webhooks`)."""
        return cast("WebhookSubscriptions", import_attribute(self.subscriptions_path))

    @property
    def deep_check(self) -> DeepCheck:
        """`bridge check --deep`: read-only probes of the behaviours the adapter assumes."""
        return cast("DeepCheck", import_attribute(self.deep_check_path))


SUPEROFFICE_VENDOR: Final[Vendor[SuperOfficeSimulator]] = Vendor(
    name=SUPEROFFICE,
    section="superoffice",
    read_settings=superoffice_settings,
    build_path="bridge.vendors.superoffice.factory:superoffice_adapter",
    simulator_path="bridge.vendors.superoffice.sim.simulator:SuperOfficeSimulator",
    cassettes=superoffice_cassettes.FACTS,
    deep_check_path="bridge.vendors.superoffice.probes:deep_check",
    webhooks_path="bridge.vendors.superoffice.webhooks:FORMAT",
    subscriptions_path="bridge.vendors.superoffice.subscriptions:SUBSCRIPTIONS",
)

ZENDESK_VENDOR: Final[Vendor[ZendeskSimulator]] = Vendor(
    name=ZENDESK,
    section="zendesk",
    read_settings=zendesk_settings,
    build_path="bridge.vendors.zendesk.factory:zendesk_adapter",
    simulator_path="bridge.vendors.zendesk.sim.simulator:ZendeskSimulator",
    cassettes=zendesk_cassettes.FACTS,
    deep_check_path="bridge.vendors.zendesk.probes:deep_check",
    webhooks_path="bridge.vendors.zendesk.webhooks:FORMAT",
    subscriptions_path="bridge.vendors.zendesk.subscriptions:SUBSCRIPTIONS",
)

#: the registered vendors in the ledger's order: SuperOffice first, Zendesk second
VENDORS: Final[tuple[Vendor[Any], ...]] = (SUPEROFFICE_VENDOR, ZENDESK_VENDOR)
#: the order of their sections in `bridge.toml` (and so of the problems reported in them)
CONFIG_ORDER: Final[tuple[Vendor[Any], ...]] = (ZENDESK_VENDOR, SUPEROFFICE_VENDOR)


def vendor(name: str) -> Vendor[Any]:
    """The registered vendor standing on side `name` (`"zendesk"`); KeyError if none."""
    for candidate in VENDORS:
        if candidate.name == name:
            return candidate
    known = ", ".join(v.name for v in VENDORS)
    raise KeyError(f"no vendor {name!r} (registered: {known})")
