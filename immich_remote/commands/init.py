"""`immich-remote init`: from nothing to a valid inventory. Asks (or takes flags), reads the server's
version and the key's permissions, trusts and probes each host, proposes the accelerator and the bind
address, and writes a commented inventory (never the key). The text itself comes from immich_remote/init.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..app import App, pass_app
from ..errors import ImmichRemoteError, InputError
from ..options import json_option

if TYPE_CHECKING:
    from ..facts import HostFacts
    from ..init import InitAnswers, InitHost


@click.command()
@click.option("--immich-url", metavar="URL", help="The Immich server, e.g. http://192.168.1.10:2283.")
@click.option("--api-key-env", metavar="VAR", help="The API key is in this environment variable [IMMICH_API_KEY].")
@click.option("--api-key-file", metavar="FILE", help="The API key is in this file (chmod 600).")
@click.option("--api-key-command", metavar="CMD", help="This command prints the API key (e.g. `pass show immich`).")
@click.option("--host", "hosts", multiple=True, metavar="NAME=ADDRESS[:PORT]",
              help="An ML host (repeatable); :PORT is its SSH port.")
@click.option("--ssh-user", metavar="USER", help="SSH user on the hosts (in their docker group).")
@click.option("--ssh-key", metavar="FILE", help="SSH private key [ssh-agent and your usual keys].")
@click.option("--known-hosts", metavar="FILE", help="Record and check host keys in this file [~/.ssh/known_hosts].")
@click.option("--out", "-o", "out", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the inventory [-i, else inventory/hosts.yml].")
@click.option("--force", is_flag=True, help="Overwrite an existing inventory.")
@click.option("--yes", "-y", is_flag=True, help="Ask nothing: take the flags and the proposals, trust the host "
              "keys shown (check the fingerprints!).")
@json_option
@pass_app
def init(app: App, **answers: Any) -> None:
    """Write a first inventory: ask, check the server and key, trust and probe the hosts.

    Reads the server's version and what the API key may do (GET /api/api-keys/me, read only),
    shows each host's SSH key fingerprint and records it when you confirm (as `trust` does),
    probes the host and proposes its accelerator and the private address its ML port binds to.
    A host that cannot be reached is written anyway, with what could not be verified. The key
    itself is never written. An existing file is kept unless --force.

    \b
    Examples:
      immich-remote init                      # asks, with defaults
      immich-remote init --yes --immich-url http://192.168.1.10:2283 \\
          --api-key-file ~/.config/immich-key --host gpu-box=192.168.1.50 --ssh-user deploy
    """
    init_command(app, Flags(**answers))


COMMANDS = (init,)


@dataclass
class Flags:
    immich_url: str | None = None
    api_key_env: str | None = None
    api_key_file: str | None = None
    api_key_command: str | None = None
    hosts: tuple[str, ...] = ()
    ssh_user: str | None = None
    ssh_key: str | None = None
    known_hosts: str | None = None
    out: Path | None = None
    force: bool = False
    yes: bool = False
    problems: list[str] = field(default_factory=list)  # what could not be verified, for the summary


def init_command(app: App, flags: Flags) -> None:
    from .. import __version__
    from ..init import InitAnswers, render_inventory
    from ..inventory import default_inventory_path

    path = flags.out or app.inventory_path or default_inventory_path()
    if path.exists() and not flags.force:
        raise InputError(f"{path} already exists; init keeps it as it is.",
                         hint="Pass --force to overwrite it, or --out FILE to write another file.")
    if app.json and not flags.yes:
        raise InputError("init with --json needs --yes (nothing can be asked interactively).")
    ask = not flags.yes
    answers = InitAnswers(immich_url=_immich_url(flags, ask))
    answers.key_source, answers.key_value = _key_source(flags, ask)
    answers.written_by = f"immich-remote {__version__} on {_today()}"
    _check_server(app, flags, answers)

    specs = list(flags.hosts)
    if not specs and ask:
        specs = _ask_hosts()
    if not specs:
        raise InputError("init needs at least one ML host.", hint="Pass --host NAME=ADDRESS (repeatable).")
    answers.ssh_user = flags.ssh_user if flags.ssh_user is not None or not ask else \
        click.prompt("SSH user on the hosts (empty: ~/.ssh/config or your user)", default="", err=True) or None
    answers.ssh_key, answers.known_hosts = flags.ssh_key, flags.known_hosts
    probes: dict[str, Any] = {}
    from ..init import parse_host_spec

    for spec in specs:
        host, found = _one_host(app, flags, answers, *parse_host_spec(spec), ask=ask)
        answers.hosts.append(host)
        if found is not None:
            probes[host.name] = found
    _write(path, render_inventory(answers, path=str(path)))
    _report(app, flags, answers, path, probes)


def _today() -> str:
    import datetime

    return datetime.date.today().isoformat()


def _immich_url(flags: Flags, ask: bool) -> str:
    from ..urls import normalise_url

    url = flags.immich_url
    if url is None:
        if not ask:
            raise InputError("init --yes needs --immich-url (the Immich server, e.g. http://192.168.1.10:2283).")
        url = click.prompt("Immich server URL (as this machine reaches it)", default="http://192.168.1.10:2283",
                           err=True)
    while True:
        try:
            return normalise_url(url, where="--immich-url")
        except InputError as exc:
            if not ask:
                raise
            click.echo(str(exc), err=True)
            url = click.prompt("Immich server URL", err=True)


def _key_source(flags: Flags, ask: bool) -> tuple[str, str]:
    given = [(k, v) for k, v in (("api_key_env", flags.api_key_env), ("api_key_file", flags.api_key_file),
                                 ("api_key_command", flags.api_key_command)) if v]
    if len(given) > 1:
        raise InputError("Give only one of --api-key-env, --api-key-file, --api-key-command.")
    if given:
        return given[0]
    if not ask:
        return "api_key_env", "IMMICH_API_KEY"
    kind = click.prompt("Where is the API key: env (a variable), file, or command?",
                        type=click.Choice(["env", "file", "command"]), default="env", show_choices=False, err=True)
    default = {"env": "IMMICH_API_KEY", "file": "~/.config/immich-remote/api-key",
               "command": "pass show immich/api-key"}[kind]
    label = {"env": "Variable name", "file": "File holding only the key", "command": "Command printing the key"}
    return f"api_key_{kind}", click.prompt(label[kind], default=default, err=True)


def _server(answers: InitAnswers) -> Any:
    from ..inventory import ImmichServer

    value = answers.key_value
    return ImmichServer(url=answers.immich_url, api_key_env=value if answers.key_source == "api_key_env" else None,
                        api_key_file=Path(value).expanduser() if answers.key_source == "api_key_file" else None,
                        api_key_command=value if answers.key_source == "api_key_command" else None,
                        local_ml_url="http://immich-machine-learning:3003", fallback="keep-local", timeout=10.0,
                        verify_tls=True)


def _check_server(app: App, flags: Flags, answers: InitAnswers) -> None:
    """The server's version (public) and the key's permissions (GET /api/api-keys/me): reads only."""
    from ..immich_api import ImmichClient
    from ..init import needed_permissions, permission_verdict

    with ImmichClient(_server(answers)) as client:
        try:
            version = client.version()
        except ImmichRemoteError as exc:
            flags.problems.append(f"Immich server: {exc.message}")
            app.out.warn(f"Immich server not verified: {exc.message}")
            return
        answers.server_version = str(version.tag).lstrip("v")
        app.out.line(f"Immich {version.tag} at {answers.immich_url}.")
        try:
            key = client.my_api_key()
        except ImmichRemoteError as exc:
            flags.problems.append(f"API key: {exc.message}")
            app.out.warn(f"API key not verified: {exc.message}" + (f" {exc.hint}" if exc.hint else ""))
            return
    required, optional = permission_verdict(key.permissions, needed_permissions(
        version.has_admin_config_api, version.has_queues_api))
    if required:
        flags.problems.append(f"API key lacks {', '.join(required)}")
        app.out.warn(f"The API key '{key.name}' lacks: {'; '.join(required)}. Edit it in Immich (Account Settings "
                     "> API Keys) and grant them (or `all`); its user must be an admin.")
    else:
        app.out.line(f"API key '{key.name}' may read and save Immich's settings.", style="green")
    if optional:
        app.out.line(f"  Optional, missing: {'; '.join(optional)}.", style="yellow")


def _ask_hosts() -> list[str]:
    specs: list[str] = []
    while True:
        name = click.prompt("ML host name (empty when done)" if specs else "ML host name", default="" if specs
                            else "gpu-box", err=True, show_default=not specs)
        if not name:
            return specs
        address = click.prompt(f"Address of {name} (IP or DNS name, :PORT for another SSH port)", err=True)
        specs.append(f"{name}={address}")


def _one_host(app: App, flags: Flags, answers: InitAnswers, name: str, address: str, port: int | None, *,
              ask: bool) -> tuple[InitHost, Any]:
    """Trust, probe and propose for one host; an unreachable one comes back with notes and accel auto."""
    from ..init import InitHost

    host = InitHost(name, address, port)
    app.out.line(f"{name} ({address}{':' + str(port) if port else ''}):", style="bold")
    try:
        found = _trust_and_probe(app, flags, answers, host, ask=ask)
    except ImmichRemoteError as exc:
        found = None
        host.notes.append(f"NOT verified by init: {_one_line(exc.message)}")
        flags.problems.append(f"{name}: {exc.message}")
        app.out.warn(f"{name} not verified: {exc}")
    _propose(app, host, found[0] if found else None, ask=ask)
    return host, found


def _one_line(text: str) -> str:
    return " ".join(text.split())[:200]


def _trust_and_probe(app: App, flags: Flags, answers: InitAnswers, host: InitHost, *, ask: bool) -> Any:
    from ..deployment import parse_deployment
    from ..facts import HostFacts, probe_script, split_sections
    from ..hostcmd import sh
    from ..inventory import DEFAULT_REMOTE_DIR
    from ..ssh import Remote, Target, fingerprint
    from .trust import offered_key

    target = Target(host.name, host.address, answers.ssh_user, host.ssh_port,
                    Path(answers.ssh_key).expanduser() if answers.ssh_key else None)
    offer = offered_key(target, known_hosts=answers.known_hosts, timeout=10)
    address, port, key, path = offer.address, offer.port, offer.key, offer.path
    if offer.changed:
        raise InputError(f"{address}:{port} offers {fingerprint(key)}, but known_hosts records "
                         f"{fingerprint(offer.known)}. This can be an attack; nothing was recorded.",
                         hint=f"If the host was reinstalled, `ssh-keygen -R '{address}'` and run init again.")
    if offer.known is None:
        app.out.line(f"  offers a {key.get_name()} key: {fingerprint(key)}")
        if ask and not click.confirm(f"  Record it in {path}?", default=False, err=True):
            raise InputError("host key not trusted, so it was not probed",
                             hint=f"Run `immich-remote trust {host.name}` after checking the fingerprint.")
        offer.record()
        app.out.line(f"  host key recorded in {path}", style="green")
    else:
        app.out.line(f"  host key already trusted: {fingerprint(key)}")
    with Remote(target, known_hosts=[path], connect_timeout=10, command_timeout=60) as remote:
        output = remote.run(sh(probe_script(remote_dir=DEFAULT_REMOTE_DIR)), what="the host probe", timeout=60).stdout
    sections = split_sections(output)
    host.verified = True
    return HostFacts.from_sections(sections), parse_deployment(sections.get("deployment", ""),
                                                                sections.get("containers", "[]"))


def _propose(app: App, host: InitHost, facts: HostFacts | None, *, ask: bool) -> None:
    """The accelerator and bind address to write: from the probe, confirmed (or changed) at the prompt."""
    from ..errors import UnsupportedBackend
    from ..hwaccel import ACCEL_CHOICES, choose
    from ..init import propose_bind
    from ..urls import classify_address

    bind, why = (None, "")
    if facts is not None:
        try:
            choice = choose("auto", facts, host=host.name)
            host.accel = choice.backend
            host.notes.append(f"probed: {facts.arch} ({facts.cpus or '?'} CPUs); accel {choice.reason}")
        except UnsupportedBackend as exc:
            host.notes.append(f"probed: {exc.message}")
        bind, why = propose_bind(host.address, facts.addresses)
    elif classify_address(host.address) == "name":
        bind, why = _resolve_here(host.address)
    if facts is not None or bind:
        app.out.line(f"  proposed: accel {host.accel}; bind {bind or '?'} ({why})")
    if ask:
        host.accel = click.prompt("  Accelerator", type=click.Choice(ACCEL_CHOICES), default=host.accel, err=True)
        bind = click.prompt("  Bind the ML port to (a private IP of the host)", default=bind or host.address,
                            err=True) or bind
    if bind is None and classify_address(host.address) == "name":
        raise InputError(f"Host '{host.name}': {host.address} is a name and no private address of the host is "
                         "known, so the ML port's bind address cannot be chosen.",
                         hint=f"Give its IP: --host {host.name}=192.168.1.50 (or run init where it resolves).")
    host.bind_address = bind


def _resolve_here(name: str) -> tuple[str | None, str]:
    """A name's private address as this machine resolves it (a guess for an unreachable host)."""
    import socket

    from ..urls import classify_address

    try:
        found = [info[4][0] for info in socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)]
    except OSError:
        return None, f"{name} does not resolve here"
    private = [a for a in found if classify_address(a) in ("private", "cgnat", "ula")]
    return (private[0], f"{name} resolves to it here") if private else (None, f"{name} resolves to no private address")


def _write(path: Path, text: str) -> None:
    """Write through a temp file, after proving the text loads as a valid inventory."""
    import os
    import tempfile

    from ..inventory import load_inventory

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".init-", suffix=".yml", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        load_inventory(tmp)  # an InventoryError here is a bug in init.py; nothing is left behind
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _report(app: App, flags: Flags, answers: InitAnswers, path: Path, probes: dict[str, Any]) -> None:
    """Each probed host's preflight verdicts (from the written inventory), what is unverified, what to run next."""
    import os

    from ..init import next_steps
    from ..inventory import load_inventory
    from ..preflight import host_checks
    from ..versions import ImmichVersion
    from .report import print_checks

    inventory = load_inventory(path)
    version = ImmichVersion.parse(answers.server_version) if answers.server_version else None
    reports = {}
    for host in inventory.hosts:
        if host.name in probes:
            facts, state = probes[host.name]
            reports[host.name] = host_checks(host, facts, state, version)
    unverified = [h.name for h in answers.hosts if not h.verified]
    key_env = answers.key_value if answers.key_source == "api_key_env" and not os.environ.get(answers.key_value) \
        else None
    steps = next_steps(str(path), key_env_unset=key_env, untrusted=unverified, unverified=unverified)
    if app.json:
        app.out.data({"inventory": str(path), "server_version": answers.server_version,
                      "hosts": {h.name: {"verified": h.verified, "accel": h.accel, "bind_address": h.bind_address,
                                         "checks": [c.to_data() for c in reports[h.name].checks]
                                         if h.name in reports else []} for h in answers.hosts},
                      "not_verified": flags.problems, "next": steps})
        return
    for name, report in reports.items():
        print_checks(app, f"{name} ({report.status})", report.checks)
    app.out.line(f"Wrote {path} (no API key in it).", style="green")
    if flags.problems:
        app.out.warn("Not verified (run `check` once fixed):\n" + "\n".join(f"  - {_one_line(p)}" for p in flags.problems))
    app.out.line("Next:")
    for step in steps:
        app.out.line(f"  {step}")
