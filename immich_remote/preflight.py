"""Preflight checks: can each host run the ML container, and may we change Immich's settings?

`host_checks` is pure (facts in, verdicts out); the Immich-side checks call the API. `check` runs
them as a command, and `deploy` runs them as its first step and refuses a host that fails any.
"""

from __future__ import annotations

from dataclasses import dataclass

from .checks import FAIL, PASS, WARN, Check
from .compat import major_upgrade_blockers, running_version
from .deployment import RemoteState
from .errors import ConfigLocked, ImmichAPIError, ImmichRemoteError, UnsupportedBackend
from .facts import HostFacts
from .hwaccel import check_platform, choose
from .immich_api import ImmichClient
from .inventory import Host
from .urls import classify_address
from .versions import ImmichVersion

# Free space (GiB) a backend's image and first models need; below it: warn. Below 1 GiB: fail.
DISK_NEEDED_GIB = {"cpu": 5, "cuda": 15, "rocm": 35, "openvino": 8, "openvino-wsl": 8, "armnn": 5, "rknn": 5}


@dataclass
class HostReport:
    """Every check for one host, and the backend it resolved to (None when it cannot run)."""

    host: str
    checks: list[Check]
    backend: str | None = None

    @property
    def ok(self) -> bool:
        return all(c.status != FAIL for c in self.checks)

    @property
    def status(self) -> str:
        if not self.ok:
            return FAIL
        return WARN if any(c.status == WARN for c in self.checks) else PASS


def host_checks(host: Host, facts: HostFacts, remote: RemoteState, version: ImmichVersion | None, *,
                allow_public: bool = False) -> HostReport:
    checks: list[Check] = []
    add = checks.append

    # Docker engine and Compose v2, usable by the deploy user.
    if facts.docker_server_version:
        add(Check("docker", PASS, f"Docker Engine {facts.docker_server_version}, usable by {_user(facts)}"))
    elif not facts.docker_installed:
        add(Check("docker", FAIL, "Docker is not installed",
                  "install Docker Engine (Debian/Ubuntu: `apt install docker.io`, or docs.docker.com/engine/install)"))
    elif "permission denied" in (facts.docker_error or "").lower():
        add(Check("docker", FAIL, f"{_user(facts)} may not use the Docker socket",
                  f"`sudo usermod -aG docker {_user(facts)}` on the host, then log in again"))
    else:
        add(Check("docker", FAIL, f"the Docker daemon does not answer: {_first_line(facts.docker_error)}",
                  "start it: `sudo systemctl enable --now docker`"))
    if facts.compose_version and facts.compose_version.split(".")[0].isdigit() and int(
            facts.compose_version.split(".")[0]) >= 2:
        add(Check("compose", PASS, f"Compose v{facts.compose_version}"))
    elif facts.docker_installed:
        add(Check("compose", FAIL, f"Compose v2 is missing ({_first_line(facts.compose_error)})",
                  "install the Compose v2 plugin (`apt install docker-compose-plugin` or `docker-compose-v2`)"))

    # Architecture (and the x86-64-v2 floor of Immich 3.x).
    if facts.arch is None:
        add(Check("arch", FAIL, f"CPU architecture '{facts.machine or 'unknown'}' has no Immich ML image",
                  "use an x86_64 or aarch64 host"))
    elif version and version.needs_x86_64_v2 and facts.x86_64_v2 is False:
        add(Check("arch", FAIL, f"{facts.arch} CPU without x86-64-v2 (SSE4.2/POPCNT): Immich {version.tag} ML "
                  "images exit with code 132 on it", "use a newer CPU, or stay on Immich 2.x"))
    else:
        add(Check("arch", PASS, f"{facts.arch} ({facts.machine}), {facts.cpus or '?'} CPUs"
                  + (f", {facts.mem_total / 2**30:.1f} GiB RAM" if facts.mem_total else "")))

    # Crossing Immich 3.0: variables it removed (the CPU floor is the arch check above).
    if version:
        running = running_version(remote.container.version if remote.container else None)
        checks.extend(major_upgrade_blockers(host, facts, running, version, check_cpu=False))

    # Accelerator.
    report = HostReport(host.name, checks)
    try:
        if host.accel != "auto" and facts.arch:
            check_platform(host.accel, facts.arch, host=host.name)
        choice = choose(host.accel, facts, host=host.name)
        report.backend = choice.backend
        add(Check("accel", PASS, f"{choice.backend}: {choice.reason}"))
    except UnsupportedBackend as exc:
        add(Check("accel", FAIL, exc.message.split(": ", 1)[-1], exc.hint or ""))

    # Disk for images and the model cache.
    if facts.disk_free_gib is not None:
        needed = DISK_NEEDED_GIB.get(report.backend or "cpu", 5)
        if facts.disk_free_gib < 1:
            add(Check("disk", FAIL, f"{facts.disk_free_gib:.1f} GiB free for Docker", "free space on the host"))
        elif facts.disk_free_gib < needed:
            add(Check("disk", WARN, f"{facts.disk_free_gib:.1f} GiB free; the {report.backend or 'cpu'} image and "
                      f"models want about {needed} GiB", "free space before the first pull"))
        else:
            add(Check("disk", PASS, f"{facts.disk_free_gib:.0f} GiB free"))

    # Where the ML port listens.
    add(_bind_check(host, facts, allow_public))
    add(_port_check(host, facts, remote))

    if remote.lock:
        add(Check("lock", WARN, f"locked by {_lock_owner(remote.lock)}",
                  "wait for that run, or use --break-lock if it is dead"))
    return report


def _user(facts: HostFacts) -> str:
    ident = facts.identity
    if ident.startswith("uid=") and "(" in ident:
        return ident.split("(", 1)[1].split(")", 1)[0]
    return "the deploy user"


def _first_line(text: str | None) -> str:
    return (text or "no output").strip().splitlines()[0][:160] if (text or "").strip() else "no output"


def _lock_owner(lock: dict) -> str:
    return f"{lock.get('by', lock.get('owner', '?'))} since {lock.get('at', '?')} ({lock.get('command', '?')})"


def _bind_check(host: Host, facts: HostFacts, allow_public: bool) -> Check:
    kind = classify_address(host.bind_address)
    if kind in ("public", "unspecified"):
        what = "a public address" if kind == "public" else "every interface"
        if allow_public:
            return Check("bind", WARN, f"{host.bind_address}:{host.ml_port} is {what}, allowed by --allow-public; "
                         "the ML API has no authentication", "firewall the port to the Immich server")
        return Check("bind", FAIL, f"{host.bind_address}:{host.ml_port} is {what}: the ML API has no "
                     "authentication and would be exposed",
                     "set bind_address to a private IP of the host (LAN, VPN/Tailscale), or pass --allow-public")
    if facts.addresses and host.bind_address not in facts.addresses:
        return Check("bind", FAIL, f"{host.bind_address} is not an address of this host "
                     f"(it has {', '.join(sorted(facts.addresses))})", "set bind_address to one of those")
    return Check("bind", PASS, f"{host.bind_address}:{host.ml_port} ({kind})")


def _port_check(host: Host, facts: HostFacts, remote: RemoteState) -> Check:
    ours = remote.container
    ours_published = ours is not None and any(p.endswith(f":{host.ml_port}") for p in ours.published)
    if not host.service.is_ml and ours is not None:  # a pool's balancer listens on the host's network itself
        ours_published = ours.state == "running"
    busy = [f"{a}:{p}" for a, p in facts.listeners if p == host.ml_port and
            a in (host.bind_address, "0.0.0.0", "::", "*")]
    if ours_published and ours is not None and ours.state == "running":
        return Check("port", PASS, f"{host.ml_port} is ours (container {ours.name})")
    if busy:
        return Check("port", FAIL, f"port {host.ml_port} is already in use on {', '.join(busy)} by another program",
                     "stop it, or set ml_port to a free port")
    return Check("port", PASS, f"{host.ml_port} free")


# --- the Immich side ----------------------------------------------------------------------------------

@dataclass
class ImmichReport:
    checks: list[Check]
    version: ImmichVersion | None = None
    config: dict | None = None
    locked: bool = False

    @property
    def ok(self) -> bool:
        return all(c.status != FAIL for c in self.checks)


def immich_checks(client: ImmichClient, *, pinned: ImmichVersion | None = None,
                  need_jobs: bool = False) -> ImmichReport:
    """Reachable, version, API key and permissions, config not locked. Sends GET requests only.

    What the key may do comes from `GET /api-keys/me` (its permission list), so a missing update or
    job permission is reported before anything changes, without a write request to find out. Reading
    the config proves the read permission and that the key's user is an admin.
    """
    report = ImmichReport([])
    add = report.checks.append
    server = client.server
    try:
        version = client.version()
    except ImmichRemoteError as exc:
        add(Check("server", FAIL, exc.message, exc.hint or ""))
        return report
    report.version = pinned or version
    pin_note = f"; pinned to {pinned.tag} by --server-version" if pinned and pinned != version else ""
    add(Check("server", PASS if not pin_note else WARN, f"Immich {version.tag} at {server.url}{pin_note}",
              "ML hosts must run the server's version" if pin_note else ""))
    endpoint = client.endpoint
    try:
        key = client.my_api_key()
    except ImmichAPIError as exc:
        if exc.status != 404:  # 401: the key is wrong; anything else: the server is not answering right
            add(Check("api key", FAIL, exc.message, exc.hint or ""))
            return report
        key = None  # a server without /api-keys/me: the permissions cannot be read without a write
    except ImmichRemoteError as exc:
        add(Check("api key", FAIL, exc.message, exc.hint or ""))
        return report
    try:
        report.config = client.get_config()
        add(Check("api key", PASS, f"key from {server.api_key_source} may read the config ({endpoint.read_permission})"))
    except ImmichRemoteError as exc:
        add(Check("api key", FAIL, exc.message, exc.hint or ""))
    update = [endpoint.update_permission]
    add(_permission_check(update, key.missing(*update) if key else None, version))
    if need_jobs:
        jobs = [client.queue_read_permission, "job.create"]
        add(_jobs_check(jobs, key.missing(*jobs) if key else None, version))
    if report.config is None:
        return report
    try:
        report.locked = client.config_locked()
    except (ImmichAPIError, ConfigLocked):
        report.locked = False
    if report.locked:
        add(Check("config", WARN, "settings are managed by IMMICH_CONFIG_FILE: the API cannot change the ML URLs",
                  "deploy prints the machineLearning JSON to put into that file"))
    else:
        add(Check("config", PASS, "settings are editable through the API"))
    return report


def _grant_fix(missing: list[str]) -> str:
    return (f"Edit the key in Immich (Account Settings > API Keys) and grant {' and '.join(missing)} (or `all`); "
            "the key's user must be an admin.")


def _unknown(name: str, needed: list[str], version: ImmichVersion, when: str) -> Check:
    """A server without `GET /api-keys/me` cannot tell what a key may do without a write request."""
    return Check(name, WARN, f"Immich {version.tag} does not report the key's permissions (no GET "
                 f"/api/api-keys/me): {' and '.join(needed)} will only be known {when}",
                 f"make sure the key has {' and '.join(needed)}")


def _permission_check(needed: list[str], missing: list[str] | None, version: ImmichVersion) -> Check:
    """May the key save the config? `missing` is read from its permission list (`None`: unknown)."""
    if missing is None:
        return _unknown("permission", needed, version, "when the ML URLs are saved")
    if missing:
        return Check("permission", FAIL, f"The API key lacks permission {' and '.join(missing)}: it may not save "
                     "the ML URLs in Immich's config", _grant_fix(missing))
    return Check("permission", PASS, f"key has {' and '.join(needed)} (may save the ML URLs)")


def _jobs_check(needed: list[str], missing: list[str] | None, version: ImmichVersion) -> Check:
    """May the key read the job queues and start the "missing" ML jobs (`--run-missing`)?"""
    if missing is None:
        return _unknown("jobs", needed, version, "when the jobs start")
    if missing:
        return Check("jobs", FAIL, f"The API key lacks permission {' and '.join(missing)}: it may not start the "
                     "missing ML jobs (--run-missing)", _grant_fix(missing))
    return Check("jobs", PASS, f"key has {' and '.join(needed)} (may read the queues and start jobs)")
