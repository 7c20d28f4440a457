"""Render the files uploaded to a host: `docker-compose.yml` and, for an accelerator, `hwaccel.ml.yml`.

Pure and deterministic: the same host, version and backend give the same bytes and the same hash,
which is what lets a second deploy prove that nothing changed without touching the host.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import jinja2

from .firewall import HOST_ROOT, LABEL, SERVICE, firewall_plan, program
from .hwaccel import BACKENDS, Backend, check_platform, image_ref
from .inventory import Host, Inventory, Pool
from .names import BALANCER_CONFIG_FILE, COMPOSE_FILE, OVERLAY_FILE, PROJECT_NAME
from .versions import ImmichVersion

if TYPE_CHECKING:
    from .haproxy import BalancerSpec


def template_dir() -> Path:
    """Templates ship inside the wheel (immich_remote/templates); a source checkout has them at the top."""
    packaged = resources.files("immich_remote") / "templates"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parent.parent / "templates"


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template_dir())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )


@dataclass(frozen=True)
class RenderedFile:
    name: str
    content: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


@dataclass(frozen=True)
class Rendering:
    """What one host should run: its image and the exact files for its project directory."""

    host: str
    version: ImmichVersion
    backend: str
    image: str
    files: tuple[RenderedFile, ...]
    firewall: bool = False  # the compose project has the firewall service (firewall.py)

    @property
    def digest(self) -> str:
        """One hash over the whole file set (names and contents)."""
        h = hashlib.sha256()
        for f in sorted(self.files, key=lambda f: f.name):
            h.update(f"{f.name}\0{f.sha256}\n".encode())
        return h.hexdigest()

    def file(self, name: str) -> RenderedFile | None:
        return next((f for f in self.files if f.name == name), None)

    @property
    def hashes(self) -> dict[str, str]:
        return {f.name: f.sha256 for f in self.files}


def compose_duration(seconds: float) -> str:
    """Seconds -> a Compose duration (`10s`, `500ms`, `1m30s`)."""
    ms = round(seconds * 1000)
    if ms % 1000:
        return f"{ms}ms"
    s = ms // 1000
    return f"{s // 60}m{s % 60}s" if s >= 60 and s % 60 else (f"{s // 60}m" if s >= 60 else f"{s}s")


def render_host(host: Host, version: ImmichVersion, backend_name: str, *, arch: str | None = None,
                armnn_firmware: bool = True) -> Rendering:
    """Render one host's files for a resolved backend (never `auto`).

    `arch` (from a probe, or the inventory's `arch`) refuses a backend that has no image for it.
    `armnn_firmware=False` leaves out the Mali firmware mount when the host has no such file
    (Docker would otherwise create an empty directory in its place).
    """
    backend: Backend = BACKENDS[backend_name]
    if arch or host.arch:
        check_platform(backend_name, arch or host.arch or "", host=host.name)
    image = image_ref(version.tag, backend_name, registry=host.registry, repository=host.image_repository)
    env = _environment()
    overlay = OVERLAY_FILE if backend.name != "cpu" else None
    device_ids = [d.strip() for d in host.env.get("MACHINE_LEARNING_DEVICE_IDS", "").split(",") if d.strip()]
    context = {
        "host": host,
        "backend": backend,
        "image": image,
        "version_tag": version.tag,
        "project": PROJECT_NAME,
        "overlay": overlay,
        "env": host.env,
        "health_interval": compose_duration(host.health_interval),
        "device_ids": device_ids,
        "armnn_firmware": armnn_firmware,
    }
    plan = firewall_plan(host)
    if plan.enabled:  # `$$`: Compose would interpolate the program's own `$1`, `$!`...
        context.update(firewall=plan, firewall_service=SERVICE, firewall_root=HOST_ROOT, firewall_label=LABEL,
                       firewall_program=program(plan).replace("$", "$$"))
    else:
        context["firewall"] = None
    files = [RenderedFile(COMPOSE_FILE, env.get_template(f"{COMPOSE_FILE}.j2").render(context).encode())]
    if overlay:
        files.append(RenderedFile(OVERLAY_FILE, env.get_template(f"{OVERLAY_FILE}.j2").render(context).encode()))
    return Rendering(host=host.name, version=version, backend=backend.name, image=image, files=tuple(files),
                     firewall=plan.enabled)


BALANCER_BACKEND = "balancer"  # Rendering.backend of a pool's balancer (it has no accelerator)


def haproxy_config(spec: BalancerSpec) -> str:
    """The balancer's haproxy.cfg for `spec` (haproxy.config_context validates it): the same spec always
    gives the same text."""
    from .haproxy import config_context

    return _environment().get_template(f"{BALANCER_CONFIG_FILE}.j2").render(config_context(spec))


def render_target(target: Host, inventory: Inventory, version: ImmichVersion, backend_name: str, *,
                  arch: str | None = None, armnn_firmware: bool = True) -> Rendering:
    """What a deploy target runs: the ML service (render_host), or its pool's balancer (render_balancer)."""
    pool = inventory.pool(target.service.pool) if target.service.pool else None
    if pool is not None:
        return render_balancer(pool, inventory, version)
    return render_host(target, version, backend_name, arch=arch, armnn_firmware=armnn_firmware)


def render_balancer(pool: Pool, inventory: Inventory, version: ImmichVersion) -> Rendering:
    """A pool's balancer: HAProxy's config (haproxy.py) and the compose file that runs it, host network."""
    from .haproxy import CONFIG_PATH, BalancerSpec, Member

    members = tuple(Member(m.host, inventory.host(m.host).bind_address, inventory.host(m.host).ml_port, m.weight)
                    for m in pool.members)
    config = RenderedFile(BALANCER_CONFIG_FILE, haproxy_config(BalancerSpec(
        pool=pool.name, listen_port=pool.port, admin_port=pool.admin_port, members=members,
        bind_address=pool.bind_address, allow_from=pool.allow_from)).encode())
    target = pool.target
    context = {"pool": pool, "project": target.service.project, "service": target.service.service,
               "image": pool.image, "config_file": BALANCER_CONFIG_FILE, "config_path": CONFIG_PATH,
               "config_sha256": config.sha256}
    compose = RenderedFile(COMPOSE_FILE, _environment().get_template("balancer.compose.yml.j2").render(context).encode())
    return Rendering(host=target.name, version=version, backend=BALANCER_BACKEND, image=pool.image,
                     files=(compose, config))
