"""`immich-remote trust HOST`: show a host's SSH key fingerprint and record it after confirmation."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..app import App, pass_app
from ..errors import InputError
from ..options import complete_hosts, json_option

if TYPE_CHECKING:
    from paramiko import PKey

    from ..ssh import Target


@click.command()
@click.argument("host_name", metavar="HOST", shell_complete=complete_hosts)
@click.option("--yes", "-y", is_flag=True, help="Record without asking (for scripts; check the fingerprint first!).")
@json_option
@pass_app
def trust(app: App, host_name: str, yes: bool) -> None:
    """Show a host's SSH host-key fingerprint and record it in known_hosts after you confirm.

    The key goes into the inventory's ssh.known_hosts file when set, else ~/.ssh/known_hosts.
    A host whose recorded key differs is refused (remove the old key with ssh-keygen -R first).
    Use `immich` as HOST for the Immich server's own ssh_host.

    \b
    Example:
      immich-remote trust gpu-box
    """
    trust_command(app, host_name, yes=yes)


COMMANDS = (trust,)


class OfferedKey:
    """The host key a host offers now, and what known_hosts records for it (`trust` and `init` share this)."""

    def __init__(self, address: str, port: int, key: PKey, known: PKey | None, path: Path) -> None:
        self.address, self.port, self.key, self.known, self.path = address, port, key, known, path

    @property
    def trusted(self) -> bool:
        return self.known is not None and self.known == self.key

    @property
    def changed(self) -> bool:
        """known_hosts records another key of this type for the host: it may be an attack."""
        return self.known is not None and self.known != self.key

    def record(self) -> str:
        """Append the offered key to `path` (created 0600); returns the line written."""
        from ..ssh import append_known_host

        return append_known_host(self.path, self.address, self.port, self.key)


def offered_key(target: Target, *, known_hosts: str | Path | None, ssh_config: Path | None = None,
                timeout: float = 10) -> OfferedKey:
    """Resolve `target` as OpenSSH would, fetch its host key (no login), and look it up in ~/.ssh/known_hosts
    and `known_hosts` (the file a new key goes to; default ~/.ssh/known_hosts). Reads only."""
    from ..ssh import DEFAULT_KNOWN_HOSTS, host_key_of, known_host_key, resolve_target

    address, port, _user = resolve_target(target, ssh_config)
    key = host_key_of(address, port, timeout=timeout)
    path = Path(known_hosts or DEFAULT_KNOWN_HOSTS).expanduser()
    known = known_host_key([DEFAULT_KNOWN_HOSTS.expanduser(), path], address, port, key.get_name())
    return OfferedKey(address, port, key, known, path)


def trust_command(app: App, name: str, *, yes: bool) -> None:
    from ..ssh import Target, fingerprint, known_hosts_name

    inv = app.inventory
    if name in ("immich", "@immich") and inv.immich.ssh_host:
        s = inv.immich
        target = Target("immich server", s.ssh_host, s.ssh_user, s.ssh_port, s.ssh_key)
    else:
        h = inv.host(name)
        target = Target(h.name, h.address, h.ssh_user, h.ssh_port, h.ssh_key)
    offer = offered_key(target, known_hosts=inv.ssh.known_hosts, ssh_config=inv.ssh.config,
                        timeout=inv.ssh.connect_timeout)
    address, port, key, path = offer.address, offer.port, offer.key, offer.path
    if offer.trusted:
        app.out.line(f"{target.label} ({address}:{port}) is already trusted: {fingerprint(key)}.")
        return
    if offer.changed:
        raise InputError(f"{target.label} ({address}:{port}) now offers {fingerprint(key)}, but known_hosts records "
                         f"{fingerprint(offer.known)} for it. This can be an attack; nothing was written.",
                         hint=f"If the host was reinstalled, remove the old key with `ssh-keygen -R "
                         f"'{known_hosts_name(address, port)}'` and run trust again.")
    shown = f"{target.label} ({address}:{port}) offers a {key.get_name()} key: {fingerprint(key)}"
    if app.json and not yes:
        raise InputError("trust with --json needs --yes (nothing can be confirmed interactively).")
    app.out.line(shown)
    if not yes and not click.confirm(f"Record it in {path}?", default=False, err=True):
        raise InputError("Not trusted; nothing was written.")
    line = offer.record()
    if app.json:
        app.out.data({"host": target.label, "address": address, "port": port, "key_type": key.get_name(),
                      "fingerprint": fingerprint(key), "known_hosts": str(path), "line": line})
    else:
        app.out.line(f"Recorded in {path}.", style="green")
