"""What every per-host procedure shares: the run's options and context, the host probe, and a host
that passed its preflight with its planned steps (`Prepared`). Data and one read; no decisions."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .cache_seed import Manifest, SeedPlan
from .deployment import RemoteState, parse_deployment
from .facts import HostFacts, probe_scripts, split_sections
from .hostcmd import (
    sh,
)
from .inventory import Host, Inventory
from .preflight import HostReport
from .progress import Progress
from .render import Rendering, render_target
from .rollout import Connections
from .snapshots import Snapshot
from .ssh import Remote
from .steps import HostSteps
from .versions import ImmichVersion


@dataclass
class DeployOptions:
    dry_run: bool = False
    allow_public: bool = False
    break_lock: bool = False
    ship_image: bool = False
    warm_models: bool = False
    health_timeout: float | None = None
    command: str = "deploy"
    seed_from: str | None = None  # --seed-cache-from HOST
    auto_seed: bool = False  # deploy without --no-seed: a new host copies another host's model cache
    force_seed: bool = False  # --force: a non-empty cache may be replaced by the seed

@dataclass
class HostContext:
    """Everything the per-host procedure needs, shared read-only across worker threads."""

    inventory: Inventory
    version: ImmichVersion
    options: DeployOptions
    connections: Connections
    progress: Progress
    snapshot: Snapshot | None
    immich_config: dict[str, Any] | None = None
    # What a host should run; default: render the inventory for `version`. `rollback` swaps in the
    # previous release's files here and reuses everything else.
    target: Callable[[HostContext, Host, Remote, Probe, HostReport], Rendering] | None = None
    caches: dict[tuple[str, bool], Manifest] = field(default_factory=dict)  # model-cache manifests read (seeding.py)
    # One reader per manifest: hosts staging at once would otherwise each read the same other host's cache.
    cache_locks: dict[tuple[str, bool], threading.Lock] = field(default_factory=dict)
    cache_guard: threading.Lock = field(default_factory=threading.Lock)

    def rendering_for(self, host: Host, remote: Remote, found: Probe, report: HostReport) -> Rendering:
        if self.target is not None:
            return self.target(self, host, remote, found, report)
        return render_target(host, self.inventory, self.version, report.backend or "cpu", arch=found.facts.arch,
                             armnn_firmware="/lib/firmware/mali_csffw.bin" in found.facts.files)

@dataclass
class Probe:
    facts: HostFacts
    remote: RemoteState

def probe(remote: Remote, host: Host) -> Probe:
    """Facts and deployment state in one SSH round trip: the probe's two scripts on two channels at once
    (the Docker daemon queries beside the rest), so it takes as long as the slower one."""
    scripts = [sh(script) for script in probe_scripts(remote_dir=host.remote_dir, service=host.service)]
    done = remote.run_all(scripts, what="the host probe", timeout=min(remote.command_timeout, 60))
    sections = split_sections("\n".join(result.stdout for result in done))
    return Probe(HostFacts.from_sections(sections),
                 parse_deployment(sections.get("deployment", ""), sections.get("containers", "[]")))

@dataclass
class Prepared:
    """A host that passed its preflight, with what it should run and what the deploy has to do."""

    host: Host
    remote: Remote
    found: Probe
    report: HostReport
    rendering: Rendering
    plan: HostSteps
    executed: list[str] = field(default_factory=list)  # the steps run so far, in order
    seed: SeedPlan | None = None  # when the model cache is copied from another host

    @property
    def action(self) -> str:
        return self.plan.action

    @property
    def base(self) -> dict[str, Any]:
        current = self.found.remote.container
        return dict(image=self.rendering.image, backend=self.rendering.backend,
                    previous_image=current.image if current else None)
