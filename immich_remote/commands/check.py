"""`immich-remote check`: preflight every host and the Immich server; change nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import click

from ..app import App, pass_app
from ..errors import EXIT_FAILED, ImmichRemoteError
from ..options import HOSTS_ARG, allow_public_option, json_option, parallel_option, server_version_option

if TYPE_CHECKING:
    from ..inventory import Host
    from ..preflight import HostReport
    from ..rollout import Connections, HostResult
    from ..ssh import Remote


@click.command()
@HOSTS_ARG
@server_version_option
@allow_public_option
@parallel_option
@json_option
@pass_app
@click.pass_context
def check(ctx: click.Context, app: App, host_names: tuple[str, ...], server_version: str | None, allow_public: bool,
          parallel: int | None) -> None:
    """Preflight: can each host run the ML container, and may the key change Immich's settings?

    Per host: SSH and host key, Docker and Compose v2, CPU architecture, free disk, the
    accelerator really usable (accel: auto picks the best and says why), the ML port free or
    ours, the bind address private. On the Immich side: reachable, version, API key and its
    permissions, config not locked by a config file. With immich.ssh_host, each ML URL is also
    tried from the Immich server's own host. Nothing is changed.

    \b
    Example:
      immich-remote check
      immich-remote --limit gpus check --json
    Exit 0 when everything passes (warnings allowed), 1 when a check fails, 2 on bad input.
    """
    ctx.exit(check_command(app, host_names, server_version=server_version, allow_public=allow_public,
                           parallel=parallel))


COMMANDS = (check,)


def check_command(app: App, names: tuple[str, ...], *, server_version: str | None, allow_public: bool,
                  parallel: int | None) -> int:
    from ..deploy import probe
    from ..firewall import firewall_check
    from ..immich_api import ImmichClient
    from ..preflight import FAIL, PASS, Check, HostReport, host_checks, immich_checks
    from ..rollout import Connections, HostResult, run_hosts
    from ..versions import ImmichVersion
    from .report import print_checks

    inv = app.inventory
    hosts = app.hosts(names)
    pinned = ImmichVersion.parse(server_version) if server_version else None
    with ImmichClient(inv.immich) as client:
        immich = immich_checks(client, pinned=pinned)
    version = immich.version or pinned
    reports: dict[str, HostReport] = {}

    with Connections(inv) as connections:
        def one(host: Host) -> HostResult:
            remote = connections.remote(host)
            try:
                remote.connect()
            except ImmichRemoteError as exc:
                reports[host.name] = HostReport(host.name, [Check("ssh", FAIL, exc.message, exc.hint or "")])
                return HostResult(host.name, "fail")
            found = probe(remote, host)
            report = host_checks(host, found.facts, found.remote, version, allow_public=allow_public)
            report.checks.insert(0, Check("ssh", PASS, f"{remote.where}, host key verified"))
            report.checks.append(firewall_check(host))
            reports[host.name] = report
            return HostResult(host.name, report.status)

        run_hosts(hosts, one, parallel=parallel)
        isolation(connections, hosts, reports)
        server_host = connections.immich_host()
        if server_host is not None:
            reachability(server_host, hosts, reports)

    ok = immich.ok and all(r.ok for r in reports.values())
    if app.json:
        app.out.data({"ok": ok, "immich": [c.to_data() for c in immich.checks],
                      "hosts": {h.name: {"status": reports[h.name].status, "backend": reports[h.name].backend,
                                         "checks": [c.to_data() for c in reports[h.name].checks]} for h in hosts}})
    else:
        print_checks(app, f"Immich server {inv.immich.url}", immich.checks)
        for host in hosts:
            report = reports[host.name]
            print_checks(app, f"{host.name} ({report.status})", report.checks)
        app.out.line("All checks passed." if ok else "Some checks FAILED; see the fixes above.",
                     style="green" if ok else "red")
    return 0 if ok else EXIT_FAILED


def reachability(server: Remote, hosts: list[Host], reports: dict[str, HostReport]) -> None:
    """From the Immich server's own host, can each ML URL be reached? That is the path that matters."""
    from ..ml_api import ping_via
    from ..preflight import FAIL, PASS, WARN, Check

    try:
        server.connect()
    except ImmichRemoteError as exc:
        for host in hosts:
            reports[host.name].checks.append(Check("from immich", WARN, f"cannot test: {exc.message}", exc.hint or ""))
        return
    for host in hosts:
        parts = urlsplit(host.url)
        address, port = parts.hostname or "", parts.port or 80
        try:
            status, body = ping_via(server, address, port, timeout=5)
            check = Check("from immich", PASS, f"the Immich host reaches {host.url}: /ping -> {body.strip()[:20]!r}") \
                if status == 200 else Check("from immich", WARN, f"{host.url} answered HTTP {status}")
        except ConnectionRefusedError as exc:
            check = Check("from immich", WARN, f"{host.url}: routable, but nothing listens yet ({exc})",
                          "deploy first; then this should answer pong")
        except (OSError, ValueError) as exc:
            check = Check("from immich", FAIL, f"the Immich host cannot reach {host.url} ({exc})",
                          "open the route/firewall from the Immich server to the ML port")
        reports[host.name].checks.append(check)


def isolation(connections: Connections, hosts: list[Host], reports: dict[str, HostReport]) -> None:
    """Where a host has the firewall, another ML host (on another address) must get no answer from its port."""
    from ..firewall import firewall_plan, isolation_check
    from ..ml_api import ping_via

    connected = [h for h in hosts if any(c.name == "ssh" and c.status == "pass" for c in reports[h.name].checks)]
    for host in hosts:
        other = next((o for o in connected if o.bind_address != host.bind_address), None)
        if other is None or not firewall_plan(host).enabled:
            continue
        try:
            ping_via(connections.remote(other), host.bind_address, host.ml_port, timeout=3)
            outcome = "answered"
        except ConnectionRefusedError:
            outcome = "refused"
        except (TimeoutError, ValueError):  # connected, then a slow or odd answer: still reachable
            outcome = "answered"
        except OSError:  # the connection was not even opened in time: what the DROP rule does
            outcome = "dropped"
        except ImmichRemoteError:
            continue
        reports[host.name].checks.append(isolation_check(host, other.name, outcome))
