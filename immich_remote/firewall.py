"""The ML-port firewall, as data and text: which rules a host gets, and the small POSIX sh program that keeps
them in place. Pure: nothing here runs anything (the rendered compose file carries the program; swap.py
asks it to verify the rules; check and status word the verdicts).

The mechanism (docs/firewall.md): a second service, `firewall`, in the host's Compose project, running the
SAME image as the ML service (already on the host: no pull, no internet), with the host's network
namespace, NET_ADMIN/NET_RAW, and the host's root mounted read-only at /host. It `chroot`s into /host to
run the host's own `iptables` (or `ip6tables`): the binary, and so the backend (nft or legacy), that
dockerd itself uses. Every 10 s it checks its rules in Docker's DOCKER-USER chain and (re)installs them
when one is missing: after a reboot or a dockerd restart (`restart: unless-stopped` brings it back with
the engine) and after anyone flushed the chain. On SIGTERM (compose down in `remove`, --remove-orphans
when a host opts out, a recreate) it deletes them. A user in the docker group needs no sudo for any of it.

The rules, in DOCKER-USER order (it runs before Docker's own accept rules for published ports):

    -p tcp -m conntrack --ctorigdst BIND --ctorigdstport PORT --ctdir ORIGINAL -s ALLOWED -j RETURN   (each)
    -p tcp -m conntrack --ctorigdst BIND --ctorigdstport PORT --ctdir ORIGINAL -j DROP

conntrack's original destination is the published address and port (after Docker's DNAT the packet's
own destination is the container's), so exactly this project's port is matched. Connections made on the
host itself (the health gate's /ping through SSH) never traverse FORWARD and are not affected.
"""

from __future__ import annotations

import ipaddress
import shlex
from dataclasses import dataclass

from .checks import FAIL, PASS, WARN, Check
from .inventory import Host

SERVICE = "firewall"  # the firewall's service in docker-compose.yml (the ML service keeps its own name)
LABEL = "immich-remote.firewall"  # on the firewall container: never mistaken for the ML container
CHAIN = "DOCKER-USER"
HOST_ROOT = "/host"  # where the host's root is mounted in the firewall container
INTERVAL = 10  # seconds between checks of the rules
EXIT_CANNOT = 3  # the program's exit status when the host cannot have the rules (it says why on stderr)
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class FirewallPlan:
    """What one host gets: rules (`enabled`) or none, and why, in words for check and status."""

    host: str
    enabled: bool
    state: str  # "on", "off" (firewall: false), "unset" (no source known), "loopback" (not needed)
    detail: str
    fix: str = ""
    command: str = "iptables"
    destination: str = ""
    port: int = 0
    allow: tuple[str, ...] = ()

    @property
    def comment(self) -> str:
        return f"immich-remote ml {self.destination} {self.port}"


def firewall_plan(host: Host) -> FirewallPlan:
    """Pure: whether `host` gets rules, and which."""
    bind = ipaddress.ip_address(host.bind_address)
    where = f"{host.bind_address}:{host.ml_port}"
    if not host.firewall:
        return FirewallPlan(host.name, False, "off", f"firewall: false: the ML port {where} (no authentication) "
                            "answers every host that can route to it",
                            "set allow_from (or immich.server_address) and drop `firewall: false`, or protect "
                            "the port with your own firewall")
    if bind.is_loopback:
        return FirewallPlan(host.name, False, "loopback", f"the ML port is bound to loopback ({where}): only this "
                            "host reaches it, no rules needed")
    if not host.allow_from:
        return FirewallPlan(host.name, False, "unset", f"no firewall rules: the ML port {where} answers every host "
                            "that can route to it, because neither allow_from, immich.server_address nor an IP "
                            "immich.ssh_host says who may reach it",
                            "set immich.server_address to the Immich server's IP as this host sees it (or "
                            "allow_from per host), then deploy; `firewall: false` silences this")
    allowed = ", ".join(host.allow_from)
    return FirewallPlan(host.name, True, "on", f"{CHAIN} drops everything to {where} but {allowed} "
                        f"(from {host.allow_from_origin})", command="ip6tables" if bind.version == 6 else "iptables",
                        destination=host.bind_address, port=host.ml_port, allow=host.allow_from)


def rules(plan: FirewallPlan) -> list[list[str]]:
    """The rule specifications (after the chain name), in chain order: one RETURN per allowed source, then DROP."""
    match = ["-p", "tcp", "-m", "conntrack", "--ctorigdst", plan.destination, "--ctorigdstport", str(plan.port),
             "--ctdir", "ORIGINAL"]
    tag = ["-m", "comment", "--comment", plan.comment]
    return ([[*match, "-s", source, *tag, "-j", "RETURN"] for source in plan.allow]
            + [[*match, *tag, "-j", "DROP"]])


def program(plan: FirewallPlan) -> str:
    """The firewall container's sh program. `$1`: `run` (default: install, keep, remove on SIGTERM), `check`
    (exit 0 when every rule is in place, else 1, naming what is missing), `remove`.

    Exit EXIT_CANNOT, with the reason and the fix on stderr, where the host cannot have the rules."""
    lines = [f"    \"$1\" {position} {shlex.join(spec)} || return 1"
             for position, spec in enumerate(rules(plan), 1)]
    each = "each() {  # $1: has/put/del, called with each rule's position and specification\n" + \
        "\n".join(lines) + "\n}\n"
    return f"""set -u
export PATH={PATH}
ipt() {{ chroot {HOST_ROOT} {plan.command} --wait "$@"; }}
{each}has() {{ shift; ipt -C {CHAIN} "$@" 2>/dev/null; }}
put() {{ p=$1; shift; ipt -I {CHAIN} "$p" "$@"; }}
del() {{ shift; while ipt -D {CHAIN} "$@" 2>/dev/null; do :; done; return 0; }}
say() {{ echo "immich-remote firewall: $*"; }}
cannot() {{ say "CANNOT protect {plan.destination}:{plan.port}: $1" >&2; say "fix: $2" >&2; exit {EXIT_CANNOT}; }}
chroot {HOST_ROOT} /bin/sh -c : 2>/dev/null || cannot "cannot chroot into the host's root at {HOST_ROOT}" \\
    "let the firewall service mount / (a rootless or user-namespaced Docker cannot), or set firewall: false \\
and firewall the port with sudo"
chroot {HOST_ROOT} /bin/sh -c 'command -v {plan.command}' >/dev/null 2>&1 || cannot \\
    "the host has no {plan.command} command (Docker needs it to publish ports)" \\
    "install the host's iptables package (sudo apt-get install iptables), or set firewall: false"
ipt -S {CHAIN} >/dev/null 2>&1 || cannot "Docker's {CHAIN} chain is missing ({plan.command} -S {CHAIN} fails): \\
dockerd runs without iptables (--iptables=false), with its nftables backend, or without IPv6 rules for an \\
IPv6 bind address" "let dockerd manage iptables (the default), or set firewall: false and filter the port \\
with the host's own firewall (sudo)"
case "${{1:-run}}" in
check)
    if each has; then say "rules in place: {plan.comment}"; exit 0; fi
    say "rules missing: {plan.comment}"; exit 1;;
remove)
    each del; say "rules removed"; exit 0;;
esac
trap 'each del; say "rules removed"; exit 0' TERM INT
while :; do
    if ! each has; then
        each del
        each put || cannot "{plan.command} refused a rule (above)" \\
            "make the conntrack and comment matches available (modprobe xt_conntrack xt_comment), or set \\
firewall: false"
        say "rules installed: only {', '.join(plan.allow)} may reach {plan.destination}:{plan.port}"
    fi
    sleep {INTERVAL} & wait $!
done
"""


def firewall_check(host: Host) -> Check:
    """The verdict `check` shows per host (a warning where the ML port stays open)."""
    plan = firewall_plan(host)
    return Check("firewall", PASS if plan.state in ("on", "loopback") else WARN, plan.detail, plan.fix)


def verify_script(plan: FirewallPlan, compose_ps: str) -> str:
    """sh: find the firewall container (`compose_ps` lists its id) and run the program's `check` in it.
    Exit 0: every rule in place; 1: not (yet); EXIT_CANNOT: the host cannot have them (reason on stderr);
    10: no firewall container. Reads the chain only."""
    return (f"id=$({compose_ps} 2>/dev/null | head -n 1); [ -n \"$id\" ] || exit 10; "
            f"docker exec \"$id\" /bin/sh -c {shlex.quote(program(plan))} immich-remote-firewall check 2>&1; rc=$?; "
            f"[ $rc -eq 0 ] || docker logs --tail 4 \"$id\" 2>&1; exit $rc")


def firewall_status(host: Host, services: dict[str, str]) -> tuple[str, str]:
    """Pure: (state, detail) for `status`, from the project's containers (service -> Docker state word).
    state: "on", "stopped" (rules expected, container not running), or the plan's off/unset/loopback."""
    plan = firewall_plan(host)
    if not plan.enabled:
        return plan.state, plan.detail + (f"; fix: {plan.fix}" if plan.fix else "")
    running = services.get(SERVICE)
    if running == "running":
        return "on", plan.detail
    return "stopped", (f"the firewall container is {running or 'missing'}, so nothing guards "
                       f"{plan.destination}:{plan.port}; fix: immich-remote deploy")


def isolation_check(host: Host, other: str, outcome: str) -> Check:
    """`check`'s verdict on GET /ping to `host`'s ML port made from another ML host, `other`: the rules must
    drop it. `outcome`: "dropped" (no answer in time), "refused" or "answered"."""
    where = f"{host.bind_address}:{host.ml_port}"
    if outcome == "dropped":
        return Check("firewall from others", PASS, f"{other} (another ML host) gets no answer from {where}: dropped")
    if outcome == "refused":
        return Check("firewall from others", WARN, f"{other}'s connection to {where} was refused: nothing listens "
                     "yet, or something rejects it before the firewall's drop", "deploy; then it should be dropped")
    return Check("firewall from others", FAIL, f"{other} (another ML host) gets an answer from {where}: the ML "
                 "port's firewall is not in place", "immich-remote deploy (its firewall step verifies the rules); "
                 "see docs/firewall.md")
