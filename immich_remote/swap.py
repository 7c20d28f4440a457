"""Executing one host's swap: the plan's steps in order (steps.py), the host lock, the local record
of what was there, and the way back when the gate fails (`roll_back`). The model cache is never
touched: a failed first deploy removes the new container, keeps the cache volume."""

from __future__ import annotations

import difflib
import json
import shlex
import time
import uuid
from collections.abc import Sequence
from contextlib import ExitStack
from typing import Any

from . import __version__
from .context import HostContext, Prepared, Probe
from .deployment import DEPLOY, RESTART
from .errors import ImmichRemoteError, LockHeld, RemoteCommandError, SSHError
from .firewall import EXIT_CANNOT, firewall_plan, verify_script
from .firewall import SERVICE as FIREWALL_SERVICE
from .health import GateResult, PingWatch, wait_serving
from .hostcmd import (
    activate,
    adopt_current,
    append_history,
    commit_release,
    compose,
    compose_down,
    compose_up,
    prepare_release,
    prune_releases,
    release_lock,
    remove_files,
    sh,
    staging_dir,
    take_lock,
)
from .inventory import Host
from .ml_api import warm_models
from .names import HostPaths
from .render import Rendering
from .rollout import HostResult
from .seeding import seed_cache
from .snapshots import stamp, utc_now, who
from .ssh import Remote

# Everything a swap runs on the host (files, `compose up`, history) is quick: the image is already
# there. A host that does not answer one of them within this bound is hung, not slow.
QUICK_COMMAND = 120.0
FIREWALL_WAIT = 30.0  # the firewall container installs its rules within a second of starting
FULL_BELOW_KB = 1024  # a write of a few KB that fails with less than this left: the disk is full


def quick(remote: Remote) -> float:
    return min(remote.command_timeout, QUICK_COMMAND)


def owner_record(command: str) -> dict[str, Any]:
    return {"by": who(), "at": utc_now().isoformat(timespec="seconds"), "command": command,
            "run": uuid.uuid4().hex[:12], "tool": f"immich-remote {__version__}"}

class HostLock:
    """The per-host deploy lock (a directory, created atomically); a context manager."""

    def __init__(self, remote: Remote, paths: HostPaths, command: str, *, force: bool = False) -> None:
        self.remote, self.paths, self.force = remote, paths, force
        self.owner = owner_record(command)
        self.held = False

    def __enter__(self) -> HostLock:
        out = self.remote.run(take_lock(self.paths, json.dumps(self.owner), force=self.force), timeout=quick(self.remote), what="taking the lock")
        lines = out.stdout.strip().splitlines()
        if not lines or lines[0] != "LOCKED":
            try:
                holder = json.loads("\n".join(lines[1:]) or "{}")
            except json.JSONDecodeError:
                holder = {"by": " ".join(lines[1:]) or "unknown"}
            raise LockHeld(
                f"Host '{self.remote.target.label}' is locked by {holder.get('by', '?')} since {holder.get('at', '?')} "
                f"({holder.get('command', '?')}, run {holder.get('run', '?')}).",
                hint="Wait for that run to finish. If it died, rerun with --break-lock.")
        self.held = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self.held:
            try:
                self.remote.run(release_lock(self.paths), what="releasing the lock", timeout=30)
            except ImmichRemoteError:
                pass  # the run's real outcome matters more; a stale lock names its owner

def read_remote_files(remote: Remote, paths: HostPaths, names: Sequence[str] | None = None) -> dict[str, bytes]:
    found = {}
    for name in (paths.managed if names is None else names):
        content = remote.read_file(paths.join(name))
        if content is not None:
            found[name] = content
    return found

def read_release_meta(remote: Remote, paths: HostPaths, release_id: str) -> dict[str, Any]:
    content = remote.read_file(paths.release(release_id) + "/release.json")
    if content is None:
        return {}
    try:
        return json.loads(content or b"{}")
    except ValueError:
        return {}

def unified_diff(name: str, before: bytes | None, after: bytes | None) -> str:
    a = (before or b"").decode(errors="replace").splitlines(keepends=True)
    b = (after or b"").decode(errors="replace").splitlines(keepends=True)
    return "".join(difflib.unified_diff(a, b, f"{name} (on host)" if before is not None else "/dev/null",
                                        f"{name} (new)" if after is not None else "/dev/null"))

def record_host(ctx: HostContext, host: Host, remote: Remote, paths: HostPaths, found: Probe) -> None:
    """Save the host's current files and state into the local snapshot before changing anything."""
    if ctx.snapshot is None:
        return
    for name, content in read_remote_files(remote, paths).items():
        ctx.snapshot.write_bytes(f"hosts/{host.name}/files/{name}", content)
    ctx.snapshot.write_json(f"hosts/{host.name}/state.json", {
        "state": found.remote.state, "files": found.remote.files, "releases": found.remote.releases,
        "container": found.remote.container.__dict__ if found.remote.container else None})

def release_meta(host: Host, rendering: Rendering, command: str) -> dict[str, Any]:
    return {"host": host.name, "image": rendering.image, "version": rendering.version.tag,
            "backend": rendering.backend, "digest": rendering.digest, "files": rendering.hashes,
            "at": utc_now().isoformat(timespec="seconds"), "by": who(), "command": command,
            "tool": f"immich-remote {__version__}"}

def upload_release(remote: Remote, paths: HostPaths, release_id: str, rendering: Rendering, meta: dict[str, Any]) -> None:
    """The release's files into a staging directory, renamed into place when complete. A failed upload
    removes its staging directory again (a host that stopped answering keeps it until the next run's
    `prepare_release`), and a full disk is named as such: SFTP reports it only as "Failure"."""
    staging = staging_dir(paths, release_id)
    try:
        remote.run(prepare_release(paths, release_id), timeout=quick(remote), what="preparing the release directory")
        for f in rendering.files:
            remote.write_file(f"{staging}/{f.name}", f.content)
        remote.write_file(f"{staging}/release.json", (json.dumps(meta, indent=2) + "\n").encode())
        remote.run(commit_release(paths, release_id), timeout=quick(remote), what="committing the release")
    except SSHError:
        full = None if remote.stopped_answering else disk_full(remote, paths.root)
        try:
            remote.run(sh(f"rm -rf {shlex.quote(staging)}"), check=False, timeout=quick(remote),
                       what="removing the partial upload")
        except ImmichRemoteError:
            pass
        if full:
            where = paths.root if paths.root.startswith("/") else f"~/{paths.root}"
            raise RemoteCommandError(f"Host '{remote.target.label}': disk full: {full} while uploading the new "
                                     "files", hint=f"free space on the host (`df -h {where}`), then run the "
                                     "same command again") from None
        raise

def disk_full(remote: Remote, path: str) -> str | None:
    """'no space left on <mount> (N KB free)' when the filesystem holding `path` has (almost) no room."""
    try:
        out = remote.run(f"df -Pk {shlex.quote(path)} | tail -n 1", check=False, timeout=30, what="df").stdout.split()
    except ImmichRemoteError:
        return None
    if len(out) >= 6 and out[3].isdigit() and int(out[3]) < FULL_BELOW_KB:
        return f"no space left on {out[5]} ({out[3]} KB free)"
    return None

def state_record(current: str, previous: str | None, meta: dict[str, Any]) -> str:
    return json.dumps({"current": current, "previous": previous, **{k: meta.get(k) for k in
                       ("image", "version", "backend", "digest", "at", "by", "command", "tool")}})

def swap_host(ctx: HostContext, prepared: Prepared) -> HostResult:
    """Execute the host's swap steps in order (see steps.py); back to the previous release on failure."""
    started = time.monotonic()
    base = prepared.base
    result = Swap(ctx, prepared).run()
    result.image, result.backend, result.previous_image = base["image"], base["backend"], base["previous_image"]
    if result.status == "rolled-back":  # what runs now is the old image; say what was attempted
        result.details["attempted_image"], result.image = result.image, base["previous_image"]
    result.details["steps"] = list(prepared.executed)
    result.duration = time.monotonic() - started
    return result

class Swap:
    """One host's swap: runs the plan's swap steps in order, each recorded in `prepared.executed`.

    The lock is held from the `lock` step to the end (rollback included). A failed step or gate
    stops the plan and hands over to `roll_back`.
    """

    def __init__(self, ctx: HostContext, prepared: Prepared) -> None:
        self.ctx, self.p = ctx, prepared
        self.host, self.remote, self.rendering = prepared.host, prepared.remote, prepared.rendering
        self.paths = self.host.paths
        state = prepared.found.remote
        self.old_state: dict[str, Any] = state.state or {}
        self.old_current = state.current_release
        self.meta = release_meta(self.host, self.rendering, ctx.options.command)
        restart = prepared.action == RESTART and self.old_current
        self.release_id = self.old_current if restart else f"{stamp()}-{self.rendering.digest[:12]}"
        self.previous = self.old_current if self.release_id != self.old_current else self.old_state.get("previous")
        self.watch: PingWatch | None = None
        self.gate: GateResult | None = None
        self.window: float | None = None
        self.detail = ""
        self.seeded: dict[str, Any] = {}  # what do_seed copied: shown and in --json as `seed`
        self.touched = False  # set when the active files start to change (`activate`)

    def progress(self, text: str) -> None:
        self.ctx.progress.step(self.host.name, text)

    def run(self) -> HostResult:
        with ExitStack() as stack:
            self.stack = stack
            failure, logs, fix = None, "", None
            try:
                for step in self.p.plan.swap:
                    getattr(self, f"do_{step.name}")()
                    self.p.executed.append(step.name)
                    if self.gate is not None and not self.gate.ok:
                        failure, logs = self.gate.detail, self.gate.logs
                        break
            except SSHError as exc:  # a command failed, or the host stopped answering
                failure, logs = exc.message.split(": ", 1)[-1], getattr(exc, "stderr", "").strip()[-600:]
                fix = exc.hint
            finally:
                if self.watch is not None:
                    self.watch.stop()
            if failure is None:
                status = {DEPLOY: "deployed", RESTART: "restarted"}[self.p.action]
                seeded = {"seed": self.seeded} if self.seeded else {}
                return HostResult(self.host.name, status, "; ".join(filter(None, [self.detail, self.seeded.get(
                    "summary")])), window=self.window, details={"release": self.release_id, **seeded})
            failure = failure.rstrip(".")
            if not self.touched:  # failed before `activate`: the host's files and container are as they were
                serving = self.p.found.remote.container is not None and self.p.found.remote.container.serving
                return HostResult(self.host.name, "failed", f"{failure}; nothing was changed on the host"
                                  + ("; the current container keeps serving" if serving else ""),
                                  fix or "fix the cause and run the same command again",
                                  details={"failed_release": self.release_id})
            self.progress("rolling back")
            try:
                return roll_back(self.ctx, self.host, self.remote, self.paths, self.p.action, self.old_current,
                                 self.old_state, self.release_id, failure, logs, self.meta)
            except ImmichRemoteError as exc:  # the host stopped answering: it cannot be rolled back from here
                why = "the host stopped answering" if self.remote.stopped_answering else \
                    exc.message.split(": ", 1)[-1].rstrip(".")
                return HostResult(self.host.name, "failed", f"{failure}; rolling back was not possible: {why}",
                                  "check the host; when it answers again, run the same command again (add "
                                  "--break-lock if it says the lock is held by this run)",
                                  details={"failed_release": self.release_id})

    # --- the steps (names as in steps.py) ---------------------------------------------------------
    def do_lock(self) -> None:
        self.progress("locking")
        self.stack.enter_context(HostLock(self.remote, self.paths, self.ctx.options.command,
                                          force=self.ctx.options.break_lock))

    def do_record(self) -> None:
        record_host(self.ctx, self.host, self.remote, self.paths, self.p.found)

    def do_adopt(self) -> None:
        # Files from a manual setup: keep them as a release so rollback can return to them.
        self.old_current = f"{stamp()}-adopted"
        self.remote.run(adopt_current(self.paths, self.old_current), timeout=quick(self.remote), what="keeping the existing files")
        container = self.p.found.remote.container
        self.old_state = {"current": self.old_current, "previous": None,
                          "image": container.image if container else None}
        self.previous = self.old_current

    def do_upload(self) -> None:
        self.progress("uploading")
        upload_release(self.remote, self.paths, self.release_id, self.rendering, self.meta)

    def do_activate(self) -> None:
        self.progress("starting")
        self.touched = True
        running = self.p.found.remote.container
        if running is not None and running.serving:  # a window exists only where something served before
            self.watch = PingWatch(self.remote, self.host).__enter__()  # the window is measured from here
            self.ctx.progress.watching(self.host.name, self.watch.window_so_far)  # the live view's counter
        self.remote.run(activate(self.paths, self.release_id, state_record(self.release_id, self.previous, self.meta)),
                        timeout=quick(self.remote), what="activating the files")

    def do_seed(self) -> None:
        self.progress(f"seeding the model cache from {self.p.seed.source if self.p.seed else '?'}")
        self.seeded = seed_cache(self.ctx, self.p)

    def do_up(self) -> None:
        self.remote.run(compose_up(self.paths, recreate=self.p.action == RESTART), timeout=quick(self.remote), what="docker compose up")

    def do_gate(self) -> None:
        self.progress("waiting for /ping")
        self.gate = wait_serving(self.remote, self.host, self.rendering.image,
                                 timeout=self.ctx.options.health_timeout, watch=self.watch,
                                 report=lambda why: self.progress(
                                     f"waiting for /ping: {why.removeprefix('/ping: ').removeprefix('/ping ')}"))
        if self.watch is not None:
            self.watch.stop()
            self.window = self.watch.window()
        self.detail = self.gate.detail

    def do_firewall(self) -> None:
        """Read back the ML port's rules through the firewall container; a host that cannot have them is
        refused (rolled back) with the program's reason and fix."""
        self.progress("verifying the firewall")
        plan = firewall_plan(self.host)
        script = verify_script(plan, shlex.join(compose(self.paths, "ps", "-a", "-q", FIREWALL_SERVICE)))
        deadline = time.monotonic() + FIREWALL_WAIT
        while True:
            done = self.remote.run(sh(script), check=False, timeout=quick(self.remote), what="firewall check")
            if done.ok:
                self.detail += f"; firewall: {plan.detail}"
                return
            if done.exit_status == EXIT_CANNOT or time.monotonic() > deadline:
                out = (done.stdout + done.stderr).strip()
                said = [line.split("firewall: ", 1)[1] for line in out.splitlines() if "CANNOT" in line or
                        "firewall: fix:" in line] or out.splitlines()[-1:] or ["no answer"]
                raise RemoteCommandError(f"the ML port's firewall is not in place: {'; '.join(dict.fromkeys(said))}",
                                         stderr=out, exit_status=done.exit_status)
            time.sleep(0.5)

    def do_warm(self) -> None:
        self.progress("warming models")
        try:
            self.detail += f"; models loaded: {', '.join(warm_models(self.remote, self.host, self.ctx.immich_config))}"
        except (RemoteCommandError, OSError, ValueError) as exc:  # the host serves; only the warm-up failed
            self.detail += (f"; warming the models failed ({getattr(exc, 'message', exc)}): "
                            "the first jobs will load them")

    def do_history(self) -> None:
        self.remote.run(append_history(self.paths, json.dumps({**self.meta, "event": self.ctx.options.command,
                                                               "release": self.release_id, "result": "ok",
                                                               "window": self.window})),
                        check=False, timeout=quick(self.remote), what="history")

    def do_prune(self) -> None:
        self.remote.run(prune_releases(self.paths, [self.release_id, self.previous or ""]), check=False,
                        timeout=quick(self.remote), what="pruning old releases")


def roll_back(ctx: HostContext, host: Host, remote: Remote, paths: HostPaths, action: str, old_current: str | None,
              old_state: dict[str, Any], failed_release: str, failure: str, logs: str,
              meta: dict[str, Any]) -> HostResult:
    """Return the host to what ran before; with nothing before, take the failed container down again."""
    details: dict[str, Any] = {"failed_release": failed_release, "logs": logs.splitlines()[-15:]}
    remote.run(append_history(paths, json.dumps({**meta, "event": ctx.options.command, "release": failed_release,
                                                 "result": "failed", "reason": failure})), check=False, timeout=quick(remote), what="history")
    if action == RESTART:
        return HostResult(host.name, "failed", f"{failure}; the current release does not start again",
                          "see the container logs (`docker compose logs` on the host)", details=details)
    if old_current is None:
        remote.run(compose_down(paths), check=False, timeout=quick(remote), what="docker compose down")
        remote.run(remove_files(paths), check=False, timeout=quick(remote), what="removing the failed files")
        return HostResult(host.name, "failed", f"{failure}; nothing ran here before, so the new container was "
                          "removed again (the model cache is kept)", "fix the cause and deploy again", details=details)
    previous_image = read_release_meta(remote, paths, old_current).get("image") or old_state.get("image")
    try:
        remote.run(activate(paths, old_current, json.dumps(old_state)), timeout=quick(remote), what="restoring the previous files")
        remote.run(compose_up(paths), timeout=quick(remote), what="docker compose up (previous release)")
        gate = wait_serving(remote, host, previous_image, timeout=ctx.options.health_timeout) if previous_image \
            else None
    except RemoteCommandError as exc:
        return HostResult(host.name, "failed", f"{failure}; rolling back ALSO failed: {exc.message}",
                          "inspect the host: `docker compose ps` in the project directory", details=details)
    if gate is not None and not gate.ok:
        return HostResult(host.name, "failed", f"{failure}; the previous release is back but not healthy: "
                          f"{gate.detail}", "inspect the host", details=details)
    return HostResult(host.name, "rolled-back", f"{failure}; the previous release ({previous_image}) serves again",
                      "see the logs (--json, or `docker compose logs` on the host)", details=details)
