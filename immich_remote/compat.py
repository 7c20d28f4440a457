"""Crossing Immich 3.0: what it removed that a host still uses, checked before the host is touched.

Pure: inventory host, probe facts and versions in, preflight `Check`s out. `major_upgrade_blockers`
has something to say only when a host goes from 2.x (or from nothing deployed, or an unknown version)
to 3.x or later; 2.x -> 2.y and 3.x -> 3.y give nothing.

What Immich 3.0 changed for the `immich-machine-learning` container, and where it is written:

- The migration guide, https://immich.app/blog/v3-migration (2026-07-01), section "Environment
  variables": removed `MACHINE_LEARNING_PRELOAD__CLIP` (use `..._CLIP__TEXTUAL` and `..._CLIP__VISUAL`),
  removed `MACHINE_LEARNING_PRELOAD__FACIAL_RECOGNITION` (use `..._FACIAL_RECOGNITION__DETECTION` and
  `..._FACIAL_RECOGNITION__RECOGNITION`), removed the *server's* `IMMICH_MACHINE_LEARNING_PING_TIMEOUT`
  (use the admin setting `machineLearning.availabilityChecks.timeout`); section "Machine learning >
  Hardware requirements": x86 CPUs must be x86-64-v2 or higher (numpy bump).
- The ML settings class (pydantic `Settings`, env_prefix `MACHINE_LEARNING_`, case-insensitive,
  nested delimiter `__`). Before 3.0: immich-app/immich:machine-learning/immich_ml/config.py@84c35e35d629
  (a pre-3.0 commit, tag not pinned: `PreloadModelData` reads the two old names with `os.getenv`, copies
  each value into both new names and deletes the old one before `Settings()` parses the environment); the
  matching "Deprecated env variable" warnings are in immich_ml/main.py `preload_models` next to the OCR
  preloads, i.e. still in 2.x. The split came with immich-app/immich#15398 (Jan 2025), so the
  new names work on every 2.x release too. 3.x: the fallbacks are gone (immich-app/immich#28326
  "chore(ml)!: remove deprecated envs", May 2026; the stored config.py@042e5d5bda11 has no fallback and
  no other field removed or renamed against @84c35e35d629 - that commit could not be pinned to a tag).
- Effect of an old name on 3.x: pydantic-settings turns `MACHINE_LEARNING_PRELOAD__CLIP=<model>` into
  `preload.clip = "<model>"`, which is not a `ClipSettings`, so the container stops at start-up with
  `SettingsError: error parsing value for field "preload"` (seen in the wild:
  gavinmcfall/home-ops#2444, "the machine-learning pod crashloops"). Reproduced here with that settings
  shape under pydantic-settings 2.14.1: either old name, in any case, alone or next to the new names, raises
  that SettingsError; the new names parse; unknown names such as MACHINE_LEARNING_PING_TIMEOUT are ignored.
  Hence FAIL, not WARN (the ML image's own pydantic-settings version was not checked).

Not found in the migration guide, the 3.0 release notes draft or the ML settings: any removed image tag or
hardware backend, or a changed ML default that needs an env change. Nothing here checks for one.
"""

from __future__ import annotations

from dataclasses import dataclass

from .checks import FAIL, WARN, Check
from .errors import VersionError
from .facts import HostFacts
from .inventory import Host
from .versions import ImmichVersion

V3 = ImmichVersion(3, 0, 0)
MIGRATION_GUIDE = "https://immich.app/blog/v3-migration"

ENV_CHECK = "v3 env"
CPU_CHECK = "v3 cpu"


@dataclass(frozen=True)
class EnvChange:
    """An environment variable that Immich 3.0 removed, and what takes its place."""

    name: str
    status: str  # FAIL: the 3.x ML container will not start with it; WARN: it has no effect there
    replaces_with: tuple[str, ...]  # ML variables that take the same value; empty when none does
    effect: str  # what happens on 3.x with the old name set on the ML host
    instead: str  # what to do when there is no replacement variable
    source: str  # where this is written (URL or repo:path@ref)


V3_ENV_CHANGES: tuple[EnvChange, ...] = (
    # immich.app/blog/v3-migration "Removed MACHINE_LEARNING_PRELOAD__CLIP"; 2.x fallback:
    # immich-app/immich:machine-learning/immich_ml/config.py@84c35e35d629 (value copied to TEXTUAL and VISUAL);
    # removed by immich-app/immich#28326; 3.x crash: gavinmcfall/home-ops#2444.
    EnvChange(
        name="MACHINE_LEARNING_PRELOAD__CLIP",
        status=FAIL,
        replaces_with=("MACHINE_LEARNING_PRELOAD__CLIP__TEXTUAL", "MACHINE_LEARNING_PRELOAD__CLIP__VISUAL"),
        effect="the ML container stops at start-up (SettingsError parsing field 'preload')",
        instead="",
        source=MIGRATION_GUIDE + "; immich-app/immich#28326",
    ),
    # immich.app/blog/v3-migration "Removed MACHINE_LEARNING_PRELOAD__FACIAL_RECOGNITION"; 2.x fallback:
    # immich-app/immich:machine-learning/immich_ml/config.py@84c35e35d629 (value copied to RECOGNITION and
    # DETECTION); removed by immich-app/immich#28326; 3.x crash: gavinmcfall/home-ops#2444.
    EnvChange(
        name="MACHINE_LEARNING_PRELOAD__FACIAL_RECOGNITION",
        status=FAIL,
        replaces_with=("MACHINE_LEARNING_PRELOAD__FACIAL_RECOGNITION__DETECTION",
                       "MACHINE_LEARNING_PRELOAD__FACIAL_RECOGNITION__RECOGNITION"),
        effect="the ML container stops at start-up (SettingsError parsing field 'preload')",
        instead="",
        source=MIGRATION_GUIDE + "; immich-app/immich#28326",
    ),
    # immich.app/blog/v3-migration "Removed IMMICH_MACHINE_LEARNING_PING_TIMEOUT"; immich-app/immich#27802
    # ("chore!: remove deprecated env variables"). A *server* variable: it seeded
    # machineLearning.availabilityChecks.timeout in the server's defaults (server/src/config.ts, 2.x). The ML
    # container never read it (no such field in immich_ml/config.py), so on an ML host it did nothing before
    # and does nothing after: WARN.
    EnvChange(
        name="IMMICH_MACHINE_LEARNING_PING_TIMEOUT",
        status=WARN,
        replaces_with=(),
        effect="it is a server variable that the ML container never read, and Immich 3.0 removed it from the "
               "server as well",
        instead="set machineLearning.availabilityChecks.timeout (ms) in the Immich server's Machine Learning "
                "settings",
        source=MIGRATION_GUIDE + "; immich-app/immich#27802",
    ),
    # [unconfirmed for 3.0] Deprecated in the 2.x server (system-config.service.spec.ts in the code index logs a
    # deprecation for it next to IMMICH_MACHINE_LEARNING_PING_TIMEOUT). Its removal in 3.0 is only stated in a
    # fork's copy of that spec ("removed outright upstream (PR #27802)"); the migration guide does not list it.
    # Server-only either way, so WARN. The mapping to availabilityChecks.interval is the closest setting, not a
    # documented replacement.
    EnvChange(
        name="IMMICH_MACHINE_LEARNING_AVAILABILITY_BACKOFF_TIME",
        status=WARN,
        replaces_with=(),
        effect="it is a server variable that the ML container never read (deprecated in 2.x; its removal in "
               "3.0 is not confirmed by the migration guide)",
        instead="set the availability-check interval (machineLearning.availabilityChecks.interval, in ms) "
                "in the Immich server's Machine Learning settings",
        source="immich-app/immich:server/src/services/system-config.service.spec.ts (2.x); " + MIGRATION_GUIDE,
    ),
    # The names before immich-app/immich#22185 (server/src/constants.ts: MACHINE_LEARNING_PING_TIMEOUT,
    # MACHINE_LEARNING_AVAILABILITY_BACKOFF_TIME), replaced by machineLearning.availabilityChecks in the system
    # config. Already gone from the server before 3.0 (#22185 merged Sep 2025, release not pinned); the ML
    # Settings class has no such fields, so on an ML host they never did anything: WARN.
    EnvChange(
        name="MACHINE_LEARNING_PING_TIMEOUT",
        status=WARN,
        replaces_with=(),
        effect="it was a server variable (until immich-app/immich#22185) that the ML container never read",
        instead="set machineLearning.availabilityChecks.timeout (ms) in the Immich server's Machine Learning "
                "settings",
        source="immich-app/immich:server/src/constants.ts (before #22185); immich-app/immich#22185",
    ),
    EnvChange(
        name="MACHINE_LEARNING_AVAILABILITY_BACKOFF_TIME",
        status=WARN,
        replaces_with=(),
        effect="it was a server variable (until immich-app/immich#22185) that the ML container never read",
        instead="set machineLearning.availabilityChecks.interval (ms) in the Immich server's Machine Learning "
                "settings",
        source="immich-app/immich:server/src/constants.ts (before #22185); immich-app/immich#22185",
    ),
)


def crosses_v3(running: ImmichVersion | None, target: ImmichVersion) -> bool:
    """True when the host goes from below 3.0 (or nothing/unknown) to 3.0 or later."""
    return target >= V3 and (running is None or running < V3)


def running_version(text: str | None) -> ImmichVersion | None:
    """The version a container reports (`v2.7.5`, see deployment.ContainerState.version) or None.

    None (nothing deployed, or a ref that is not a release such as `main`) makes the checks run."""
    if not text:
        return None
    try:
        return ImmichVersion.parse(text, source="the running container")
    except VersionError:  # moving tags, prereleases, branch names
        return None


def major_upgrade_blockers(host: Host, facts: HostFacts | None, running: ImmichVersion | None,
                           target: ImmichVersion, *, check_cpu: bool = True) -> list[Check]:
    """What stops `host` from running `target` when that crosses Immich 3.0; empty otherwise.

    FAIL: the 3.x container would not start (removed preload variables, a CPU below x86-64-v2).
    WARN: a variable that does nothing on the ML host and that 3.0 removed from the server.

    `check_cpu=False` leaves the CPU to preflight's `arch` check (same predicate, same verdict); use it
    where `preflight.host_checks` runs too, so a host is not refused twice for one reason.
    """
    if not crosses_v3(running, target):
        return []
    checks: list[Check] = []
    env_upper = {key.upper(): key for key in host.env}  # the ML settings are case-insensitive
    for change in V3_ENV_CHANGES:
        key = env_upper.get(change.name)
        if key is None:
            continue
        checks.append(_env_check(change, key, host.env[key], env_upper, running, target))
    if check_cpu:
        cpu = _cpu_check(facts, target)
        if cpu is not None:
            checks.append(cpu)
    return checks


def _env_check(change: EnvChange, key: str, value: str, env_upper: dict[str, str],
               running: ImmichVersion | None, target: ImmichVersion) -> Check:
    if change.status == FAIL:
        was = f"{running.tag} still reads it" if running else "2.x still read it"
        detail = f"{key}={value} was removed in Immich 3.0 ({was}); on {target.tag} {change.effect}"
    else:
        detail = f"{key}={value} does nothing on this ML host: {change.effect}"
    if change.replaces_with:
        present = [name for name in change.replaces_with if name in env_upper]
        missing = [name for name in change.replaces_with if name not in env_upper]
        if missing:
            sets = " and ".join(f"{name}={value}" for name in missing)
            fix = f"in this host's env (inventory), replace {key} with {sets}"
            if present:
                fix += f" ({', '.join(present)} already set)"
        else:
            fix = f"remove {key} from this host's env (inventory): {', '.join(change.replaces_with)} are already set"
        fix += "; the new names work on Immich 2.x too, so change it before upgrading"
    else:
        fix = f"remove {key} from this host's env (inventory) and {change.instead}"
    return Check(ENV_CHECK, change.status, detail, f"{fix} (see {MIGRATION_GUIDE})")


def _cpu_check(facts: HostFacts | None, target: ImmichVersion) -> Check | None:
    """The same predicate as preflight's `arch` check: only a probed amd64 CPU lacking a v2 flag fails."""
    if facts is None or not (target.needs_x86_64_v2 and facts.x86_64_v2 is False):
        return None
    lacking = sorted({"cx16", "lahf_lm", "popcnt", "sse4_1", "sse4_2", "ssse3"} - facts.cpu_flags)
    # immich.app/blog/v3-migration "Hardware requirements": numpy bump -> x86-64-v2; exit code 132 on older
    # CPUs: immich-app/immich#29873.
    return Check(CPU_CHECK, FAIL,
                 f"{facts.arch} CPU without x86-64-v2 (lacks {', '.join(lacking)}): Immich {target.tag} ML images "
                 "exit with code 132 on it",
                 f"use a newer CPU, or stay on Immich 2.x (see {MIGRATION_GUIDE})")
