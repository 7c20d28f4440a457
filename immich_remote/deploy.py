"""Deploying one host, step by step, and registering the healthy hosts in Immich.

Per host: connect -> probe (facts + what is deployed, one round trip) -> preflight -> decide ->
lock -> record -> upload a new release (staging dir + rename) -> pull or ship the image while the
old container still serves -> activate the files (temp + rename) -> `compose up -d` -> health gate.
A failed gate restores the previous release and its container; a host that had nothing before is
cleaned up again. The model-cache volume is never touched.

Then all healthy hosts are registered at once (`register`): GET the config, set only
`machineLearning.urls`, PUT the whole object back, GET and verify.
"""

from __future__ import annotations

import base64
import difflib
import json
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from . import __version__
from .deployment import DEPLOY, RESTART, UNCHANGED, RemoteState, parse_deployment
from .errors import ImmichRemoteError, InputError, LockHeld, RemoteCommandError
from .facts import HostFacts, probe_script, split_sections
from .health import GateResult, PingWatch, wait_serving
from .hostcmd import (
    HostPaths,
    activate,
    adopt_current,
    append_history,
    cache_volume_name,
    commit_release,
    compose_down,
    compose_up,
    image_present,
    prepare_release,
    prune_releases,
    pull,
    release_lock,
    remove_files,
    sh,
    staging_dir,
    take_lock,
    volume_remove,
    write_state,
)
from .immich_api import ImmichClient
from .inventory import Host, Inventory
from .preflight import FAIL, HostReport, host_checks
from .progress import Progress
from .render import MANAGED_FILES, PROJECT_NAME, RenderedFile, Rendering, render_host
from .rollout import Connections, HostResult
from .snapshots import Snapshot, stamp, utc_now, who
from .ssh import Remote
from .steps import HostSteps, plan_steps
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

    def rendering_for(self, host: Host, remote: Remote, found: Probe, report: HostReport) -> Rendering:
        if self.target is not None:
            return self.target(self, host, remote, found, report)
        return render_host(host, self.version, report.backend or "cpu", arch=found.facts.arch,
                           armnn_firmware="/lib/firmware/mali_csffw.bin" in found.facts.files)


@dataclass
class Probe:
    facts: HostFacts
    remote: RemoteState


def probe(remote: Remote, host: Host) -> Probe:
    """Facts and deployment state in one SSH round trip."""
    output = remote.run(sh(probe_script(remote_dir=host.remote_dir)), what="the host probe",
                        timeout=min(remote.command_timeout, 60)).stdout
    sections = split_sections(output)
    return Probe(HostFacts.from_sections(sections),
                 parse_deployment(sections.get("deployment", ""), sections.get("containers", "[]")))


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
        out = self.remote.run(take_lock(self.paths, json.dumps(self.owner), force=self.force), what="taking the lock")
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


def read_remote_files(remote: Remote, paths: HostPaths, names: Sequence[str] = MANAGED_FILES) -> dict[str, bytes]:
    found = {}
    for name in names:
        try:
            with remote.sftp.open(paths.join(name), "rb") as handle:
                found[name] = handle.read()
        except OSError:
            continue
    return found


def read_release_meta(remote: Remote, paths: HostPaths, release_id: str) -> dict[str, Any]:
    try:
        with remote.sftp.open(paths.release(release_id) + "/release.json", "rb") as handle:
            return json.loads(handle.read() or b"{}")
    except (OSError, ValueError):
        return {}


def unified_diff(name: str, before: bytes | None, after: bytes | None) -> str:
    a = (before or b"").decode(errors="replace").splitlines(keepends=True)
    b = (after or b"").decode(errors="replace").splitlines(keepends=True)
    return "".join(difflib.unified_diff(a, b, f"{name} (on host)" if before is not None else "/dev/null",
                                        f"{name} (new)" if after is not None else "/dev/null"))


def ship_image(remote: Remote, image: str) -> None:
    """Stream `image` from this machine's Docker engine into the host's `docker load` over SSH."""
    import docker  # imported here: only --ship-image needs a local engine
    from docker.errors import DockerException, ImageNotFound

    try:
        client = docker.from_env(timeout=60)
        client.images.get(image)
        chunks = client.api.get_image(image, chunk_size=1 << 20)
    except ImageNotFound:
        raise InputError(f"--ship-image: {image} is not in this machine's Docker engine.",
                         hint=f"`docker pull {image}` here first (or build it), then retry.") from None
    except DockerException as exc:
        raise InputError(f"--ship-image needs a Docker engine on this machine: {exc}.") from None
    remote.stream_in("docker load", chunks, what=f"docker load of {image}")


# --- warm-up -------------------------------------------------------------------------------------------

# A 1x1 PNG: enough for the detection models to load, with nothing to find.
_TINY_PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4//8/AAX+Av4N70a4AAAAAElFTkSuQmCC")


def warm_requests(config: dict[str, Any] | None) -> list[tuple[str, dict[str, Any], bool]]:
    """(task, entries, needs image) for each ML task Immich has enabled, with the models it uses."""
    ml = (config or {}).get("machineLearning") or {}
    requests = []
    clip = ml.get("clip") or {}
    if clip.get("enabled", True):
        requests.append(("clip", {"clip": {"textual": {"modelName": clip.get("modelName", "ViT-B-32__openai"),
                                                       "options": {"language": "en"}}}}, False))
    faces = ml.get("facialRecognition") or {}
    if faces.get("enabled", True):
        requests.append(("facial-recognition", {"facial-recognition": {
            "detection": {"modelName": faces.get("modelName", "buffalo_l"), "options": {"minScore": faces.get("minScore", 0.7)}},
            "recognition": {"modelName": faces.get("modelName", "buffalo_l")}}}, True))
    ocr = ml.get("ocr") or {}
    if ocr.get("enabled", False):
        model = ocr.get("modelName", "PP-OCRv5_mobile")
        requests.append(("ocr", {"ocr": {
            "detection": {"modelName": model, "options": {"minScore": ocr.get("minDetectionScore", 0.5),
                                                          "maxResolution": ocr.get("maxResolution", 736)}},
            "recognition": {"modelName": model, "options": {"minScore": ocr.get("minRecognitionScore", 0.8)}}}}, True))
    return requests


def multipart(entries: dict[str, Any], *, image: bytes | None, text: str | None) -> tuple[bytes, str]:
    boundary = "immich-remote-" + uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="entries"\r\n\r\n{json.dumps(entries)}\r\n'.encode()]
    if image is not None:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="warm.png"\r\n'
                     f"Content-Type: image/png\r\n\r\n".encode() + image + b"\r\n")
    if text is not None:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="text"\r\n\r\n{text}\r\n'.encode())
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def warm_models(remote: Remote, host: Host, config: dict[str, Any] | None) -> list[str]:
    """One small /predict per enabled task so the models are downloaded and loaded now."""
    done = []
    for task, entries, needs_image in warm_requests(config):
        body, content_type = multipart(entries, image=_TINY_PNG if needs_image else None,
                                       text=None if needs_image else "immich")
        status, answer = remote.http_request(host.bind_address, host.ml_port, "POST", "/predict", body=body,
                                             headers={"Content-Type": content_type}, timeout=remote.command_timeout)
        if status != 200:
            raise RemoteCommandError(f"Host '{host.name}': warming {task} failed: HTTP {status} {answer[:120]!r}")
        done.append(task)
    return done


# --- one host, in three phases -------------------------------------------------------------------------
#
# prepare (connect, probe, preflight, decide; read-only) -> stage (pull or ship the image while the old
# container serves) -> swap (lock, record, upload, activate, up, gate; roll back on failure).
# A rollout runs `prepare` and `stage` on every host at once, then swaps a canary alone and the
# others in batches (see rollout.py). `deploy_host` chains the three for one host.

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

    @property
    def action(self) -> str:
        return self.plan.action

    @property
    def base(self) -> dict[str, Any]:
        current = self.found.remote.container
        return dict(image=self.rendering.image, backend=self.rendering.backend,
                    previous_image=current.image if current else None)


def preflight_host(ctx: HostContext, host: Host) -> tuple[Remote, Probe, HostReport] | HostResult:
    """Connect, probe and check one host; a `failed` result names every failing check and its fix."""
    remote = ctx.connections.remote(host)
    ctx.progress.step(host.name, "connecting")
    remote.connect()
    ctx.progress.step(host.name, "probing")
    found = probe(remote, host)
    report = host_checks(host, found.facts, found.remote, ctx.version, allow_public=ctx.options.allow_public)
    if not report.ok or report.backend is None:
        failing = [c for c in report.checks if c.status == FAIL]
        return HostResult(host.name, "failed", "; ".join(f"{c.name}: {c.detail}" for c in failing),
                          "; ".join(c.fix for c in failing if c.fix),
                          details={"checks": [c.to_data() for c in report.checks]})
    return remote, found, report


def prepare_host(ctx: HostContext, host: Host) -> Prepared | HostResult:
    """Read-only: preflight and the decision. Final results for a failed preflight, a dry run, or no change."""
    started = time.monotonic()
    checked = preflight_host(ctx, host)
    if isinstance(checked, HostResult):
        return checked
    remote, found, report = checked
    rendering = ctx.rendering_for(host, remote, found, report)
    plan = plan_steps(rendering, found.remote, ship_image=ctx.options.ship_image,
                      warm_models=ctx.options.warm_models)
    prepared = Prepared(host, remote, found, report, rendering, plan)
    if ctx.options.dry_run:
        return dry_run_result(prepared)
    if plan.action == UNCHANGED:
        return HostResult(host.name, "unchanged", "same files, container serving", **prepared.base,
                          duration=time.monotonic() - started, details={"steps": []})
    return prepared


def stage_host(ctx: HostContext, prepared: Prepared) -> Prepared | HostResult:
    """Put the image on the host while the old container keeps serving; nothing else changes."""
    host = prepared.host
    try:
        for step in prepared.plan.stage:  # the image: the only stage step
            ensure_image(ctx, prepared.remote, prepared.rendering.image,
                         lambda text: ctx.progress.step(host.name, text))
            prepared.executed.append(step.name)
    except RemoteCommandError as exc:
        serving = prepared.found.remote.container is not None and prepared.found.remote.container.serving
        return HostResult(host.name, "failed", exc.message + ("; nothing was changed, the current container "
                          "keeps serving" if serving else "; nothing was changed"),
                          "check the image name and the registry (or use --ship-image)", **prepared.base)
    ctx.progress.step(host.name, "ready to swap")
    return prepared


def prepare_and_stage(ctx: HostContext, host: Host) -> Prepared | HostResult:
    prepared = prepare_host(ctx, host)
    return stage_host(ctx, prepared) if isinstance(prepared, Prepared) else prepared


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


def deploy_host(ctx: HostContext, host: Host) -> HostResult:
    """All three phases for one host (rollback uses it; deploy and upgrade go through rollout.canary_rollout)."""
    staged = prepare_and_stage(ctx, host)
    return swap_host(ctx, staged) if isinstance(staged, Prepared) else staged


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
    remote.run(prepare_release(paths, release_id), what="preparing the release directory")
    staging = staging_dir(paths, release_id)
    for f in rendering.files:
        remote.write_file(f"{staging}/{f.name}", f.content)
    remote.write_file(f"{staging}/release.json", (json.dumps(meta, indent=2) + "\n").encode())
    remote.run(commit_release(paths, release_id), what="committing the release")


def ensure_image(ctx: HostContext, remote: Remote, image: str, step: Callable[[str], None]) -> None:
    """Pull (or ship) the image while the old container keeps serving."""
    if remote.run(image_present(image), check=False, what="docker image inspect").ok:
        return
    if ctx.options.ship_image:
        step(f"shipping {image}")
        ship_image(remote, image)
    else:
        step(f"pulling {image}")
        remote.run(pull(image), what=f"docker pull {image}")


def state_record(current: str, previous: str | None, meta: dict[str, Any]) -> str:
    return json.dumps({"current": current, "previous": previous, **{k: meta.get(k) for k in
                       ("image", "version", "backend", "digest", "at", "by", "command", "tool")}})


class Swap:
    """One host's swap: runs the plan's swap steps in order, each recorded in `prepared.executed`.

    The lock is held from the `lock` step to the end (rollback included). A failed step or gate
    stops the plan and hands over to `roll_back`.
    """

    def __init__(self, ctx: HostContext, prepared: Prepared) -> None:
        self.ctx, self.p = ctx, prepared
        self.host, self.remote, self.rendering = prepared.host, prepared.remote, prepared.rendering
        self.paths = HostPaths.for_dir(self.host.remote_dir)
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

    def progress(self, text: str) -> None:
        self.ctx.progress.step(self.host.name, text)

    def run(self) -> HostResult:
        with ExitStack() as stack:
            self.stack = stack
            failure, logs = None, ""
            try:
                for step in self.p.plan.swap:
                    getattr(self, f"do_{step.name}")()
                    self.p.executed.append(step.name)
                    if self.gate is not None and not self.gate.ok:
                        failure, logs = self.gate.detail, self.gate.logs
                        break
            except RemoteCommandError as exc:
                failure, logs = exc.message.split(": ", 1)[-1], exc.stderr.strip()[-600:]
            finally:
                if self.watch is not None:
                    self.watch.stop()
            if failure is None:
                status = {DEPLOY: "deployed", RESTART: "restarted"}[self.p.action]
                return HostResult(self.host.name, status, self.detail, window=self.window,
                                  details={"release": self.release_id})
            self.progress("rolling back")
            return roll_back(self.ctx, self.host, self.remote, self.paths, self.p.action, self.old_current,
                             self.old_state, self.release_id, failure, logs, self.meta)

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
        self.remote.run(adopt_current(self.paths, self.old_current), what="keeping the existing files")
        container = self.p.found.remote.container
        self.old_state = {"current": self.old_current, "previous": None,
                          "image": container.image if container else None}
        self.previous = self.old_current

    def do_upload(self) -> None:
        self.progress("uploading")
        upload_release(self.remote, self.paths, self.release_id, self.rendering, self.meta)

    def do_activate(self) -> None:
        self.progress("starting")
        self.watch = PingWatch(self.remote, self.host).__enter__()  # the window is measured from here
        self.remote.run(activate(self.paths, self.release_id, state_record(self.release_id, self.previous, self.meta)),
                        what="activating the files")

    def do_up(self) -> None:
        self.remote.run(compose_up(self.paths, recreate=self.p.action == RESTART), what="docker compose up")

    def do_gate(self) -> None:
        self.progress("waiting for /ping")
        self.gate = wait_serving(self.remote, self.host, self.rendering.image,
                                 timeout=self.ctx.options.health_timeout, watch=self.watch)
        if self.watch is not None:
            self.watch.stop()
            self.window = self.watch.window()
        self.detail = self.gate.detail

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
                        check=False, what="history")

    def do_prune(self) -> None:
        self.remote.run(prune_releases(self.paths, [self.release_id, self.previous or ""]), check=False,
                        what="pruning old releases")


def roll_back(ctx: HostContext, host: Host, remote: Remote, paths: HostPaths, action: str, old_current: str | None,
              old_state: dict[str, Any], failed_release: str, failure: str, logs: str,
              meta: dict[str, Any]) -> HostResult:
    """Return the host to what ran before; with nothing before, take the failed container down again."""
    details: dict[str, Any] = {"failed_release": failed_release, "logs": logs.splitlines()[-15:]}
    remote.run(append_history(paths, json.dumps({**meta, "event": ctx.options.command, "release": failed_release,
                                                 "result": "failed", "reason": failure})), check=False, what="history")
    if action == RESTART:
        return HostResult(host.name, "failed", f"{failure}; the current release does not start again",
                          "see the container logs (`docker compose logs` on the host)", details=details)
    if old_current is None:
        remote.run(compose_down(paths), check=False, what="docker compose down")
        remote.run(remove_files(paths, purge_state=False), check=False, what="removing the failed files")
        return HostResult(host.name, "failed", f"{failure}; nothing ran here before, so the new container was "
                          "removed again (the model cache is kept)", "fix the cause and deploy again", details=details)
    previous_image = read_release_meta(remote, paths, old_current).get("image") or old_state.get("image")
    try:
        remote.run(activate(paths, old_current, json.dumps(old_state)), what="restoring the previous files")
        remote.run(compose_up(paths), what="docker compose up (previous release)")
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


def dry_run_result(prepared: Prepared) -> HostResult:
    """What a deploy would do, with the real diff of the files on the host (none when they are the same)."""
    remote, action = prepared.remote, prepared.action
    paths = HostPaths.for_dir(prepared.host.remote_dir)
    diffs = {}
    if action == DEPLOY:  # UNCHANGED and RESTART mean the files on the host are already these
        remote_files = read_remote_files(remote, paths)
        for name in sorted(set(remote_files) | {f.name for f in prepared.rendering.files}):
            new = prepared.rendering.file(name)
            diff = unified_diff(name, remote_files.get(name), new.content if new else None)
            if diff:
                diffs[name] = diff
    words = {UNCHANGED: "no change", RESTART: "would start the container again", DEPLOY: "would deploy"}
    plan = prepared.plan
    return HostResult(prepared.host.name, "dry-run", f"{words[action]}: {plan.reason}" if plan.steps else words[action],
                      **prepared.base, details={"action": action, "diff": diffs, "steps": plan.names,
                                                "plan": [s.to_data() for s in plan.steps]})


# --- registration ----------------------------------------------------------------------------------------

def register(client: ImmichClient, compute: Callable[[list[str]], list[str]]) -> tuple[list[str], list[str], bool]:
    """Apply `compute(current urls)` to Immich's config; (before, after, changed). No PUT when equal.

    `compute` is applied to the list as stored right before the write, so a URL someone adds while
    we deploy is kept (see ImmichClient.set_ml_urls)."""
    config = client.get_config()
    before = list(config["machineLearning"]["urls"])
    if compute(before) == before:
        return before, before, False
    replaced, saved = client.set_ml_urls(compute)
    after = list(saved["machineLearning"]["urls"])
    return list(replaced["machineLearning"]["urls"]), after, after != list(replaced["machineLearning"]["urls"])


def ok_hosts(hosts: Sequence[Host], results: Sequence[HostResult]) -> list[Host]:
    good = {r.host for r in results if r.status in ("deployed", "unchanged", "restarted", "upgraded")}
    return [h for h in hosts if h.name in good]


# --- upgrade and rollback reuse the same procedure ---------------------------------------------------

def previous_release(ctx: HostContext, host: Host, remote: Remote, found: Probe, report: HostReport) -> Rendering:
    """`rollback`'s target: the files and image of the release before the current one, read from the host."""
    release = found.remote.previous_release
    if not release:
        raise ImmichRemoteError(f"Host '{host.name}': no previous deployment is recorded on the host.",
                                hint="Nothing to roll back to; deploy a version explicitly with --server-version.")
    paths = HostPaths.for_dir(host.remote_dir)
    meta = read_release_meta(remote, paths, release)
    files: list[RenderedFile] = []
    for name in MANAGED_FILES:
        try:
            with remote.sftp.open(f"{paths.release(release)}/{name}", "rb") as handle:
                files.append(RenderedFile(name, handle.read()))
        except OSError:
            continue
    if not files or not meta.get("image"):
        raise ImmichRemoteError(f"Host '{host.name}': release {release} is incomplete on the host (no files or "
                                "release.json); cannot roll back to it.")
    version = ImmichVersion.parse(meta.get("version") or "0.0.0", source=f"release {release}")
    return Rendering(host=host.name, version=version, backend=meta.get("backend") or "cpu", image=meta["image"],
                     files=tuple(files))


def remove_host(ctx: HostContext, host: Host, *, purge_cache: bool) -> HostResult:
    """`docker compose down` on the host (the model cache volume stays unless `purge_cache`), our active
    files removed; releases and history stay on the host so a later deploy or rollback can use them."""
    remote = ctx.connections.remote(host)
    ctx.progress.step(host.name, "connecting")
    remote.connect()
    found = probe(remote, host)
    paths = HostPaths.for_dir(host.remote_dir)
    current = found.remote.container
    with HostLock(remote, paths, "remove", force=ctx.options.break_lock):
        record_host(ctx, host, remote, paths, found)
        ctx.progress.step(host.name, "docker compose down")
        if found.remote.files:
            remote.run(compose_down(paths), what="docker compose down")
        elif found.remote.containers:  # files gone but containers left: Compose finds them by project name
            remote.run(["docker", "compose", "-p", PROJECT_NAME, "down", "--remove-orphans"], what="docker compose down")
        notes = []
        if purge_cache:
            if host.model_cache_is_path:
                notes.append(f"the model cache is a host path ({host.model_cache}): left in place, delete it by hand")
            else:
                volume = cache_volume_name(host.model_cache)
                done = remote.run(volume_remove(volume), check=False, what="docker volume rm")
                notes.append(f"model cache volume {volume} " + ("removed" if done.ok else f"not removed: "
                                                                  f"{done.stderr.strip()[:120]}"))
        else:
            notes.append("model cache kept")
        record = {"current": None, "previous": found.remote.current_release, "command": "remove", "by": who(),
                  "at": utc_now().isoformat(timespec="seconds"), "image": None}
        remote.run(remove_files(paths, purge_state=False), what="removing the compose files")
        remote.run(write_state(paths, json.dumps(record)), what="recording the removal")
        remote.run(append_history(paths, json.dumps({**record, "event": "remove", "url": host.url,
                                                     "purge_cache": purge_cache})), check=False, what="history")
    return HostResult(host.name, "removed", "; ".join(notes), previous_image=current.image if current else None)
