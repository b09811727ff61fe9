"""`bridge serve`: receive the vendors' webhooks and copy what they name within seconds."""

from __future__ import annotations

import click

from bridge.cli.context import AppContext, fail, pass_app
from bridge.config import check_secrets
from bridge.secrets import SecretError
from bridge.values import PORT

__all__ = ["serve"]


@click.command()
@click.option("--host", metavar="HOST", help="Address to listen on. Default: [serve] host.")
@click.option("--port", metavar="PORT", type=PORT, help="Port to listen on. Default: [serve] port.")
@pass_app
def serve(app: AppContext, host: str | None, port: int | None) -> None:
    """Receive webhooks from both vendors and copy the deletions they name within seconds.

    \b
    Endpoints (one per vendor; with several pairs in the config, the pair's
    name follows: /webhooks/zendesk/acme):
      POST /webhooks/zendesk       Zendesk ticket events (soft deleted,
                                   permanently deleted, undeleted)
      POST /webhooks/superoffice   SuperOffice ticket.changed / ticket.created
      GET  /health                 JSON: ok, and per pair the tickets waiting,
                                   whether a run is going on, the last run
      GET  /metrics                Prometheus: the ledger's metrics and the
                                   webhook counters

    \b
    A webhook is a hint, never the truth: each call is checked (signature with
    the vendor's webhook_secret, replay window, size, duplicate delivery) and
    answered 202 at once; the tickets it names wait [serve] coalesce_seconds
    for others, then one targeted run per pair re-reads them from the vendor,
    decides three-way and writes, exactly as `bridge sync` would. Answers:
    202 queued, duplicate or ignored (an event not about deletion, a signed
    body bridge cannot read); 401 bad or missing signature, or outside the
    replay window; 404 no webhook_secret for that vendor; 413 body too large.

    \b
    Runs take the pair's lease like `bridge sync`: while a scheduled sync holds
    it, the tickets wait and are tried again. Keep the scheduled sync: it
    copies whatever a lost webhook never named, and counts those changes
    (<side>.unannounced in its counts, `bridge status --json`).

    \b
    With the ledger on PostgreSQL and a `bridge worker` running, the targeted
    runs become jobs in the workers' queue (one per pair and window); else
    this process runs them. The first line printed says which.

    \b
    SIGTERM or Ctrl-C: stop taking calls, finish the run in flight, exit;
    tickets still waiting are left to the scheduled sync.

    \b
    Examples:
      bridge serve                                 listen where [serve] says
      bridge serve --host 0.0.0.0 --port 8470      every interface
      bridge --pair acme serve                     only the pair acme
      curl -s localhost:8470/health                is it alive, what waits
      bridge sandbox serve --write-config ./try --webhooks   (other terminal)
      bridge --config ./try/bridge.toml serve      the sandbox's webhooks
    """
    from bridge.serve.server import Service, run_foreground

    pairs = app.pairs()
    problems = [problem for config in pairs.values() for problem in check_secrets(config)]
    if problems:
        fail("; ".join(problems))
    try:
        service = Service(pairs)
    except SecretError as exc:
        fail(str(exc))
    settings = service.settings
    host = host or settings.host
    port = settings.port if port is None else port
    unsigned = [
        f"{pair}:{side}"
        for (side, pair), endpoint in sorted(service.intake.endpoints.items())
        if endpoint.secret is None
    ]
    click.echo(
        f"bridge serve: listening on http://{host}:{port} (pairs: {', '.join(pairs)}; "
        f"targeted runs: {service.mode})"
    )
    if unsigned:
        click.echo(
            f"  no webhook_secret for {', '.join(unsigned)}: those endpoints answer 404",
            err=True,
        )
    run_foreground(service, host, port)
