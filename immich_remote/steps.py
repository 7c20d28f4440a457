"""The steps of one host's change, as data: decided from what the host should run (a Rendering) and
what it has now (RemoteState), with nothing executed. `deploy --dry-run` prints them and deploy,
upgrade and rollback execute exactly them, in this order (deploy.py); a run records the steps it
executed, so the two can be compared.

    image     pull (or ship) the image unless the host has it; runs while the old container serves
    lock      take the host's lock (released when the swap ends, whatever happens)
    record    save the host's files and state into the local snapshot
    adopt     keep files from a manual setup as a release, so a rollback can return to them
    upload    a new release directory (staging dir + rename)
    activate  put the release's files in place (temp file + rename) and record it as current
    seed      copy the model cache from another host, verified by sha256 (cache_seed.py, seeding.py)
    up        `docker compose up -d` (recreating a stopped or broken container)
    gate      wait for pong from the new container, running without restarts
    firewall  verify the ML port's firewall rules are in place (hosts with the firewall, firewall.py)
    warm      load the models Immich uses (--warm-models)
    history   append the change to the host's history
    prune     remove old releases (the current and the previous one stay)

A failed gate leaves the plan: the host goes back to its previous release (deploy.roll_back).
"""

from __future__ import annotations

from dataclasses import dataclass

from .deployment import DEPLOY, RESTART, UNCHANGED, RemoteState, decide
from .firewall import SERVICE as FIREWALL_SERVICE
from .render import Rendering

STAGE_STEPS = frozenset({"image"})  # run for every host at once, before any host swaps


@dataclass(frozen=True)
class Step:
    name: str
    detail: str

    def to_data(self) -> dict[str, str]:
        return {"name": self.name, "detail": self.detail}


@dataclass(frozen=True)
class HostSteps:
    """What one host needs: its action (unchanged, start, deploy), why, and the steps."""

    action: str
    reason: str
    steps: tuple[Step, ...]

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.steps]

    @property
    def stage(self) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.name in STAGE_STEPS)

    @property
    def swap(self) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.name not in STAGE_STEPS)

    def has(self, name: str) -> bool:
        return name in self.names


def plan_steps(rendering: Rendering, state: RemoteState, *, ship_image: bool = False,
               warm_models: bool = False, seed: str | None = None) -> HostSteps:
    """Pure: the ordered steps that bring a host from `state` to `rendering` (none when unchanged).
    `seed`: the model cache is copied from another host first (cache_seed.SeedPlan.detail)."""
    action = decide(rendering, state)
    firewall_down = action == UNCHANGED and rendering.firewall and not any(
        c.service == FIREWALL_SERVICE and c.state == "running" for c in state.containers)
    if firewall_down:  # the ML container serves, but the firewall that guards its port does not run
        action = RESTART
    container = state.container
    if action == UNCHANGED and seed is None:
        return HostSteps(action, "same files, container serving the same image", ())
    if action == UNCHANGED:  # only the cache changes: the same release, its container again on it
        action, reason = RESTART, "same files, but the model cache is seeded"
    elif action == DEPLOY:
        reason = "new files" if state.files else "nothing deployed yet"
    elif container is None:
        reason = "same files, but no container"
    elif container.image != rendering.image:
        reason = f"same files, but the container runs {container.image}"
    else:
        reason = f"same files, but the container is {container.state}" + (
            f" ({container.health})" if container.health else "")
    if firewall_down:
        reason = "same files, but the firewall container is not running"
    steps = [Step("image", f"{'ship' if ship_image else 'pull'} {rendering.image} unless the host has it"),
             Step("lock", "take the host's lock"),
             Step("record", "save the host's files and state in the local snapshot")]
    if action == DEPLOY and state.current_release is None and state.files:
        steps.append(Step("adopt", "keep the files found on the host (a manual setup) as a release"))
    if action == DEPLOY:
        steps.append(Step("upload", f"new release {rendering.digest[:12]}: "
                                    + ", ".join(f.name for f in rendering.files)))
    steps.append(Step("activate", "put the release's files in place and record it as current"))
    if seed:
        steps.append(Step("seed", seed))
    steps.append(Step("up", "docker compose up -d" + (" --force-recreate" if action == RESTART else "")))
    steps.append(Step("gate", "wait until the new container answers /ping with pong, running without restarts"))
    if rendering.firewall:
        steps.append(Step("firewall", "verify the ML port's rules in DOCKER-USER (docs/firewall.md)"))
    if warm_models:
        steps.append(Step("warm", "load the models Immich uses"))
    steps.append(Step("history", "append the change to the host's history"))
    steps.append(Step("prune", "remove releases older than the previous one"))
    return HostSteps(action, reason, tuple(steps))


def plan_removal(state: RemoteState, *, purge_cache: bool, cache_volume: str | None) -> HostSteps:
    """Pure: the steps of `remove` on one host (none when nothing of ours is there).

    down       `docker compose down` (the model cache volume stays)
    purge      `docker volume rm` of the model cache (only with --purge-cache; a host-path cache is never deleted)
    unlink     remove the active compose files (releases and history stay for a later deploy or rollback)
    state      record that nothing is current
    """
    if not state.files and not state.containers and state.current_release is None:
        return HostSteps("remove", "nothing deployed", ())
    steps = [Step("lock", "take the host's lock"),
             Step("record", "save the host's files and state in the local snapshot")]
    if state.files or state.containers:
        steps.append(Step("down", "docker compose down (the model cache stays)"))
    if purge_cache and cache_volume:
        steps.append(Step("purge", f"docker volume rm {cache_volume} (models download again on first use)"))
    if state.files:
        steps.append(Step("unlink", "remove the compose files (releases and history stay)"))
    steps.append(Step("state", "record that nothing is current"))
    steps.append(Step("history", "append the removal to the host's history"))
    reason = f"container {state.container.state}" if state.container else "files without a container"
    return HostSteps("remove", reason, tuple(steps))
