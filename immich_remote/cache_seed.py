"""Seeding a host's model cache from another host's: the pure part (nothing here runs anything).

A new ML host would download every model from Hugging Face again (rate limits and blocked parallel
downloads are known failures: immich-app/immich#19716, #19955). Instead, `deploy` copies the cache
volume of a host that already has the models, through this machine over the two SSH connections
(no trust between the hosts): `tar -c` in a throw-away container of the ML image on the source,
piped into `tar -x` in one on the target. The image is the one already on each host (`--pull
never`): nothing is pulled and nothing but the two caches is touched. Then both sides list every
file with its size and sha256 (the manifest); the copy counts only when the lists are equal.

Here: the command builders (like hostcmd.py), the manifest parser and comparison, which models
Immich's config needs, and the decision whether to seed a host and from where (`decide_seed`).
The I/O is in seeding.py, the step in steps.py (`seed`, before `up`) and swap.py (`do_seed`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .hostcmd import compose, q, sh
from .humanize import human_bytes
from .names import PROJECT_NAME, HostPaths, cache_volume_name

CACHE = "/cache"  # where the ML image keeps its models (MACHINE_LEARNING_CACHE_FOLDER)
ABSENT, NO_IMAGE = "#absent", "#no-image"  # what a listing prints instead of files (see `read_cache`)


def cache_mount(model_cache: str) -> str:
    """The `-v` source of a host's model cache: its host path, or the volume's engine-side name."""
    return model_cache if model_cache.startswith("/") else cache_volume_name(model_cache)


# --- command builders -------------------------------------------------------------------------------

HELPER_LABEL = "immich-remote.helper"  # seed-list, seed-send, seed-receive, seed-finish, seed-clear


def helper_container(mount: str, image: str, script: str, *, role: str, read_only: bool, stdin: bool = False) -> str:
    """`docker run` of a throw-away container of an image the host already has, with the cache at
    /cache, no network, and `script` run by its sh (the real image and busybox both have tar,
    find, stat and sha256sum). Labelled `immich-remote.helper=seed-<role>`."""
    return (f"docker run --rm {'-i ' if stdin else ''}--pull never --network none --log-driver none "
            f"--label {HELPER_LABEL}=seed-{role} --user 0:0 --entrypoint sh "
            f"-v {q(mount + ':' + CACHE + (':ro' if read_only else ''))} {image} -c {q(script)}")


def _with_image(mount: str, images: Sequence[str], then: str, *, stream: bool = False) -> str:
    """A script that stops (printing ABSENT) when the cache does not exist, so that reading never
    creates an empty volume, and otherwise picks the image: our container's, else the first of
    `images` the host has (NO_IMAGE when none), and runs `then` (which uses "$img"). A `stream`
    (stdout is the tar) says those on stderr and fails instead."""
    exists = f"[ -d {q(mount)} ]" if mount.startswith("/") else f"docker volume inspect {q(mount)} >/dev/null 2>&1"
    candidates = " ".join(q(i) for i in images) or "''"
    absent = f"echo {q('no model cache ' + mount + ' on this host')} >&2; exit 4" if stream else f"echo {q(ABSENT)}; exit 0"
    no_image = "echo 'no ML image on this host to read the cache with' >&2; exit 4" if stream else \
        f"echo {q(NO_IMAGE)}; exit 0"
    return (f"{exists} || {{ {absent}; }}; "
            f"img=$(docker ps -a --filter label=com.docker.compose.project={PROJECT_NAME} --format '{{{{.Image}}}}' "
            f"| head -n 1); "
            f"for c in {candidates}; do [ -n \"$img\" ] && break; "
            f"docker image inspect \"$c\" >/dev/null 2>&1 && img=$c; done; "
            f"[ -n \"$img\" ] || {{ {no_image}; }}; {then}")


def listing_script(*, checksums: bool) -> str:
    """Inside the helper: every file with its size (and sha256), every symlink with its target."""
    sums = "echo '#sums'; find . -type f -exec sha256sum {} +; " if checksums else ""
    return ("cd /cache || exit 3; echo '#sizes'; find . -type f -exec stat -c '%s %n' {} +; " + sums +
            "echo '#links'; find . -type l -exec sh -c 'for l; do echo \"$l -> $(readlink \"$l\")\"; done' sh {} +")


def read_cache(mount: str, images: Sequence[str], *, checksums: bool) -> str:
    """Read-only: the manifest of a host's cache (see `parse_manifest`)."""
    return sh(_with_image(mount, images, helper_container(mount, "\"$img\"", listing_script(checksums=checksums), role="list",
                                                          read_only=True)))


def send_cache(mount: str, images: Sequence[str]) -> str:
    """On the source, read-only: the whole cache as a tar stream on stdout."""
    return sh(_with_image(mount, images, "exec " + helper_container(mount, "\"$img\"", "exec tar -C /cache -cf - .", role="send",
                                                                     read_only=True), stream=True))


def hold_container(paths: HostPaths) -> str:
    """Before the copy: create the container and its cache volume as Compose names and labels them
    (`up --no-start`), and stop the container if one runs, so nothing writes into the cache."""
    return sh(" ".join(q(w) for w in compose(paths, "up", "--no-start", "--pull", "never")) + " && "
              + " ".join(q(w) for w in compose(paths, "stop")))


NOT_EMPTY_EXIT = 17
MARKER = ".immich-remote-seeding"  # in the cache while a copy is unpacked: what `clear_cache` may delete
_EMPTY_IT = "find /cache -mindepth 1 -maxdepth 1 -exec rm -rf {} +"


def receive_cache(mount: str, image: str, *, overwrite: bool) -> str:
    """On the target: unpack the tar stream on stdin into the cache, with MARKER there until the copy
    is verified (`finish_cache`). Refuses (exit NOT_EMPTY_EXIT) a cache that holds any file unless
    `overwrite`, which empties it first."""
    guard = (f"{_EMPTY_IT}; " if overwrite else
             f"if [ -n \"$(find /cache ! -type d | head -n 1)\" ]; then echo 'the model cache is not empty' >&2; "
             f"exit {NOT_EMPTY_EXIT}; fi; ")
    return helper_container(mount, q(image), f"set -e; {guard}: > /cache/{MARKER}; exec tar -C /cache -xf -",
                            role="receive", read_only=False, stdin=True)


def finish_cache(mount: str, image: str) -> str:
    """The copy is verified: it is a cache like any other now."""
    return helper_container(mount, q(image), f"rm -f /cache/{MARKER}", role="finish", read_only=False)


def clear_cache(mount: str, image: str) -> str:
    """Empty the cache after a copy that failed or did not verify, only when that copy began (MARKER):
    it was empty then, or --force said it may be replaced."""
    still = f"docker ps -q --filter label={HELPER_LABEL}=seed-receive"  # an unpacking cut off may still run
    return sh(f"ids=$({still}); [ -z \"$ids\" ] || docker rm -f $ids >/dev/null; "
              + helper_container(mount, q(image), f"[ -e /cache/{MARKER} ] || exit 0; {_EMPTY_IT}; echo removed",
                                 role="clear", read_only=False))


# --- the manifest -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Manifest:
    """A cache's files: path -> (size, sha256 or None when not computed), symlinks: path -> target.
    `state` is "ok", "absent" (no volume or directory yet), "no-image" (exists, cannot be read) or
    "unreachable" (the host did not answer)."""

    files: Mapping[str, tuple[int, str | None]] = field(default_factory=dict)
    links: Mapping[str, str] = field(default_factory=dict)
    state: str = "ok"

    @property
    def empty(self) -> bool:
        return self.state in ("ok", "absent") and not self.files and not self.links

    @property
    def size(self) -> int:
        return sum(size for size, _ in self.files.values())

    def summary(self) -> str:
        if self.state == "no-image":
            return "exists, but no ML image on the host to read it with"
        if self.state == "unreachable":
            return "not readable: the host did not answer"
        if self.empty:
            return "absent" if self.state == "absent" else "empty"
        return f"{len(self.files)} files, {human_bytes(self.size)}"

    @property
    def unfinished(self) -> bool:
        """A copy into this cache began and did not finish (it was empty, or --force said so)."""
        return MARKER in self.files

    def has_model(self, model_dir: str) -> bool:
        return any(path.startswith(model_dir + "/") for path in self.files)

    def differences(self, other: Manifest, limit: int = 3) -> list[str]:
        """What differs from `other` (missing, extra, size, content), the first `limit` of each kind."""
        mine, theirs = (set(m.files) - {MARKER} for m in (self, other))  # a copy's own mark is no difference
        missing, extra = sorted(theirs - mine), sorted(mine - theirs)
        changed = sorted(p for p in mine & theirs if _differs(self.files[p], other.files[p]))
        links = sorted(p for p in set(self.links) | set(other.links) if self.links.get(p) != other.links.get(p))
        found = []
        for word, paths in (("missing", missing), ("not in the source", extra), ("different", changed),
                            ("symlink differs", links)):
            if paths:
                more = f" and {len(paths) - limit} more" if len(paths) > limit else ""
                found.append(f"{len(paths)} {word}: {', '.join(paths[:limit])}{more}")
        return found

    def matches(self, other: Manifest) -> bool:
        return self.state == other.state == "ok" and not self.differences(other)


def _differs(a: tuple[int, str | None], b: tuple[int, str | None]) -> bool:
    return a[0] != b[0] or (a[1] is not None and b[1] is not None and a[1] != b[1])


def parse_manifest(text: str) -> Manifest:
    """The output of `read_cache`: sections `#sizes` (`<size> ./path`), `#sums` (sha256sum's
    `<hash>  ./path`) and `#links` (`./path -> target`); or ABSENT / NO_IMAGE alone."""
    lines = text.splitlines()
    if ABSENT in lines:
        return Manifest(state="absent")
    if NO_IMAGE in lines:
        return Manifest(state="no-image")
    sizes: dict[str, int] = {}
    sums: dict[str, str] = {}
    links: dict[str, str] = {}
    section = ""
    for line in lines:
        if line in ("#sizes", "#sums", "#links"):
            section = line
        elif section == "#sizes" and " " in line:
            size, path = line.split(" ", 1)
            sizes[_rel(path)] = int(size)
        elif section == "#sums" and len(line) > 66:
            sums[_rel(line[66:])] = line[:64]
        elif section == "#links" and " -> " in line:
            path, target = line.split(" -> ", 1)
            links[_rel(path)] = target
    return Manifest({p: (s, sums.get(p)) for p, s in sizes.items()}, links)


def _rel(path: str) -> str:
    return path[2:] if path.startswith("./") else path


# --- which models, and the decision ---------------------------------------------------------------

def _clean(name: str) -> str:
    """Immich ML's `clean_name`: the last path part, `:` and `\\` as `_` (its cache directory name)."""
    return name.split("/")[-1].replace(":", "_").replace("\\", "_")


def wanted_models(config: Mapping[str, Any] | None) -> list[str]:
    """The cache directories (`<task>/<model>`) of the models Immich's config uses; [] when unknown."""
    ml = (config or {}).get("machineLearning") or {}
    if not ml or ml.get("enabled") is False:
        return []
    found = []
    for key, task, default in (("clip", "clip", "ViT-B-32__openai"),
                               ("facialRecognition", "facial-recognition", "buffalo_l"),
                               ("ocr", "ocr", "PP-OCRv5_mobile")):
        section = ml.get(key) or {}
        if section and section.get("enabled", True):
            found.append(f"{task}/{_clean(section.get('modelName') or default)}")
    return found


UNFINISHED = "; this host's cache holds an unfinished copy, which is replaced"


@dataclass(frozen=True)
class SeedPlan:
    """Copy `source`'s cache to the host (`overwrite`: the host's cache is not empty; --force)."""

    source: str
    source_cache: Manifest
    why: str
    overwrite: bool = False

    @property
    def detail(self) -> str:
        return (f"copy the model cache from {self.source} ({self.source_cache.summary()}; {self.why}) over SSH"
                + (", REPLACING this host's cache" if self.overwrite else "")
                + ", then compare sizes and sha256 on both hosts")


@dataclass(frozen=True)
class SeedDecision:
    plan: SeedPlan | None = None
    refusal: str = ""  # why the host is refused (the deploy fails for it), with the fix
    note: str = ""  # why nothing is copied, when that is worth saying


def decide_seed(target: str, target_cache: Manifest, *, explicit: str | None, force: bool, new_host: bool,
                sources: Mapping[str, Manifest], models: Sequence[str]) -> SeedDecision:
    """Pure: seed `target`'s cache, and from which host? `sources` are the other hosts' caches
    (inventory order; with checksums when `explicit` and the target is not empty).

    --seed-cache-from HOST: copy when the target's cache is empty; nothing when it already matches
    (a re-run); refuse a different non-empty cache unless `force`. Automatic (`explicit` None): only
    a new host (nothing deployed) with an empty cache, from the host with the most bytes among
    those whose cache holds every model Immich's config uses."""
    if explicit is not None:
        if explicit == target:
            return SeedDecision(note="this host is the seed source")
        source = sources.get(explicit, Manifest(state="absent"))
        if source.empty or source.state != "ok" or source.unfinished:
            state = "an unfinished copy" if source.unfinished else source.summary()
            return SeedDecision(refusal=f"--seed-cache-from {explicit}: that host's model cache is {state}, "
                                        "nothing to copy. Deploy it and let it load the models first (deploy "
                                        "--warm-models), or name another host.")
        if target_cache.empty or target_cache.unfinished:
            return SeedDecision(SeedPlan(explicit, source, "--seed-cache-from" + UNFINISHED * target_cache.unfinished,
                                         overwrite=target_cache.unfinished))
        if target_cache.matches(source):
            return SeedDecision(note=f"the model cache already matches {explicit}'s ({source.summary()})")
        if force:
            return SeedDecision(SeedPlan(explicit, source, "--seed-cache-from --force", overwrite=True))
        diff = "; ".join(target_cache.differences(source)) or target_cache.summary()
        return SeedDecision(refusal=f"its model cache is not empty ({target_cache.summary()}) and differs from "
                                    f"{explicit}'s ({diff}): not overwritten. Run again with --force to replace "
                                    f"it with {explicit}'s, or without --seed-cache-from to keep it.")
    if not new_host or not (target_cache.empty or target_cache.unfinished):
        return SeedDecision()
    usable = [(name, cache) for name, cache in sources.items() if name != target and cache.state == "ok"
              and not cache.empty and not cache.unfinished and all(cache.has_model(m) for m in models)]
    if not usable:
        return SeedDecision()
    name, cache = max(usable, key=lambda item: item[1].size)  # max keeps the first of equals
    why = "a new host; it has " + (", ".join(models) if models else "a model cache")
    return SeedDecision(SeedPlan(name, cache, why + UNFINISHED * target_cache.unfinished,
                                 overwrite=target_cache.unfinished))
