"""`immich-remote drill HOST`: the guide's planned-reboot test, measured.

The decisions (what the fallback mode promises, the verdict, the timings, the host's command lines)
are pure, in `immich_remote.drill`; this module does the I/O in order and prints the step table.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

from ..app import App, pass_app
from ..errors import EXIT_FAILED, ImmichAPIError, ImmichPermissionError, ImmichRemoteError, InputError
from ..options import break_lock_option, complete_hosts, json_option

if TYPE_CHECKING:
    from ..drill import SearchOutcome, Step
    from ..immich_api import ImmichClient
    from ..inventory import Host, Inventory
    from ..ssh import Remote

now = time.monotonic


@click.command()
@click.argument("host_name", metavar="HOST", shell_complete=complete_hosts)
@click.option("--method", type=click.Choice(["stop", "reboot"]), default="stop", show_default=True,
              help="stop: `docker compose stop` the ML service (its container stays), then `start` it. reboot: `sudo -n reboot` "
              "the host and wait for it and its container (asks first, unless --yes).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask before rebooting the host, or before a drill that makes "
              "ML jobs fail (remote-only with no other ML URL).")
@click.option("--run-missing", is_flag=True, help="At the end, queue the assets whose ML jobs have not run "
              "(`jobs run-missing`: force false, the queues enabled in Immich).")
@break_lock_option
@json_option
@pass_app
@click.pass_context
def drill(ctx: click.Context, app: App, host_name: str, method: str, yes: bool, run_missing: bool,
          break_lock: bool) -> None:
    """Take one host's ML away and prove what Immich does, then bring it back: timed.

    \b
    1. record the ML queue counts and Immich's URL list; one smart search while all is up;
    2. take the host's ML away (--method stop: its container; reboot: the host);
    3. while it is down, a smart search through Immich (POST /api/search/smart, with a query
       Immich has not seen, so the server calls ML through its own URL list);
    4. bring it back through the health gate (running, not restarted, /ping = pong);
    5. search again, and the jobs that failed during the drill;
    6. `jobs run-missing` with --run-missing (otherwise the command to run).

    keep-local: the search while down must succeed (the local fallback answered). remote-only with
    the host as Immich's only URL: it must fail (Immich answers 500), and the drill says plainly
    that ML jobs fail while the host is down. The host is locked during the drill. The key needs
    asset.read besides what `jobs` needs and the config-read permission.

    \b
    Examples:
      immich-remote drill gpu-box
      immich-remote drill gpu-box --method reboot --yes --run-missing
    Exit 0 when Immich behaved as the fallback mode promises and the host serves again (in
    remote-only that includes "the search failed while the host was down"), 1 otherwise.
    """
    ctx.exit(drill_command(app, host_name, method=method, yes=yes, run_missing=run_missing, break_lock=break_lock))


COMMANDS = (drill,)


def _search(client: ImmichClient, deadline: float) -> SearchOutcome:
    """One smart search with a fresh query; retried (every second, up to `deadline` s) only while
    Immich itself does not answer. An HTTP answer, success or error, ends it."""
    from ..drill import SearchOutcome, probe_query

    started, tries = now(), 0
    while True:
        tries += 1
        try:
            client.smart_search(probe_query())
            return SearchOutcome(True, now() - started, 200, tries=tries)
        except ImmichPermissionError:
            raise
        except ImmichAPIError as exc:
            if exc.status is not None or now() - started >= deadline:
                return SearchOutcome(False, now() - started, exc.status, exc.message, tries)
        time.sleep(1.0)


def _confirm(app: App, question: str, yes: bool) -> None:
    if yes:
        return
    if app.json or not sys.stdin.isatty():
        raise InputError(f"{question} Nobody can answer here: pass --yes.")
    if not click.confirm(question, default=False, err=True):
        raise InputError("Not confirmed: nothing was changed.")


def _baseline(client: ImmichClient) -> SearchOutcome:
    from ..drill import SEARCH_DEADLINE

    outcome = _search(client, SEARCH_DEADLINE)
    if outcome.ok:
        return outcome
    if outcome.status == 400:
        raise ImmichRemoteError(f"Immich refuses smart search ({outcome.error}); the drill proves the fallback "
                                "with one.", hint="Enable Smart Search in Administration > Settings > Machine "
                                "Learning (machineLearning.enabled and clip.enabled), then run the drill again.")
    raise ImmichRemoteError(f"Immich cannot answer a smart search even before the drill ({outcome.error}); "
                            "nothing was changed.", hint="Fix that first: `immich-remote status` shows which ML "
                            "URL answers.")


def _wait_down(remote: Remote, host: Host, deadline: float) -> tuple[bool, str]:
    from ..ml_api import ping

    started = now()
    while True:
        try:
            answered, what = ping(remote, host, timeout=2.0)
        except EOFError:  # the SSH connection died under the request: the host is going down
            answered, what = False, "/ping: the SSH connection closed"
        if not answered:
            return True, what
        if now() - started >= deadline:
            return False, f"still answers /ping {deadline:g}s later"
        time.sleep(0.2)


def _reconnect(inv: Inventory, host: Host, deadline: float) -> Remote:
    """A new SSH connection to a rebooted host, tried every 2 s until `deadline` s have passed."""
    from ..rollout import Connections

    started = now()
    while True:
        conns = Connections(inv)
        try:
            return conns.remote(host).connect()
        except ImmichRemoteError as exc:
            conns.close()
            if now() - started >= deadline:
                raise ImmichRemoteError(f"Host '{host.name}' did not answer SSH within {deadline:g}s after the "
                                        f"reboot ({exc.message}).", hint="Check the host's console.") from None
        time.sleep(2.0)


@contextmanager
def _restart_if_interrupted(app: App, remote: Remote, host: Host, start: list[str], method: str,
                            times: Any) -> Iterator[None]:
    """Ctrl-C (or SIGTERM) after `docker compose stop` and before `start`: start the container again
    before exiting, so an interrupted drill never leaves the host's ML stopped."""
    try:
        yield
    except KeyboardInterrupt:
        if method == "stop" and times.down_started is not None and times.back_started is None:
            app.out.warn(f"interrupted: starting {host.name}'s ML container again (`docker compose start`)")
            try:
                remote.run(start, check=False, timeout=60, what="docker compose start")
            except ImmichRemoteError as exc:
                app.out.warn(f"could not start it: {exc.message}; run `docker compose start` on {host.name}")
        raise


def drill_command(app: App, name: str, *, method: str, yes: bool, run_missing: bool, break_lock: bool) -> int:
    from ..context import probe
    from ..drill import (
        DOWN_DEADLINE,
        REBOOT,
        REBOOT_DEADLINE,
        SEARCH_DEADLINE,
        Timings,
        expectation,
        failed_during,
        new_steps,
        reboot_command,
        start_command,
        stop_command,
        url_position,
        verdict,
    )
    from ..health import wait_serving
    from ..immich_api import ImmichClient
    from ..ml_api import ping
    from ..names import HostPaths
    from ..rollout import Connections
    from ..swap import HostLock, quick
    from .jobs import read_queues

    inv = app.inventory
    host = inv.host(name)
    steps, times = new_steps(), Timings()
    say = app.out.info
    with ImmichClient(inv.immich) as client, Connections(inv) as conns:
        # 1. record (reads only)
        started = now()
        urls = list((client.get_config().get("machineLearning") or {}).get("urls") or [])
        position = url_position(urls, host.url)
        if position is None:
            raise InputError(f"Host '{name}' ({host.url}) is not in Immich's ML URL list ({', '.join(urls) or 'empty'}): "
                             "a drill would prove nothing about Immich.", hint=f"`immich-remote deploy {name}` first.")
        expect = expectation(inv.immich.fallback, urls, host.url, inv.immich.local_ml_url)
        before = read_queues(client)
        baseline = _baseline(client)
        remote = conns.remote(host).connect()
        found = probe(remote, host)
        container = found.remote.container
        if container is None or not container.serving:
            raise ImmichRemoteError(f"Host '{name}' has no serving ML container ({container.state if container else 'none'}); "
                                    "nothing was changed.", hint=f"`immich-remote deploy {name}` first.")
        answered, what = ping(remote, host)
        if not answered:
            raise ImmichRemoteError(f"Host '{name}' does not answer /ping ({what}); nothing was changed.",
                                    hint="`immich-remote status` shows what is wrong.")
        steps["record"].ok, steps["record"].seconds = True, now() - started
        steps["record"].detail = (f"host is #{position} of {len(urls)} URL(s); queues read; search answered in "
                                  f"{baseline.seconds:.1f}s")
        if method == REBOOT:
            _confirm(app, f"Reboot host '{name}' ({host.address}) now?", yes)
        elif not expect.served:
            _confirm(app, f"{expect.why}: ML jobs that run during the drill will fail. Stop {name}'s ML now?", yes)

        paths = HostPaths.for_dir(host.remote_dir)
        has_files = bool(found.remote.files)
        lock = HostLock(remote, paths, "drill", force=break_lock)
        down = after = None
        back_ok, back_detail = False, "not tried"
        with lock, _restart_if_interrupted(app, remote, host, start_command(paths, has_files), method, times):
            # 2. take down
            say(f"{name}: taking ML down ({method})")
            times.down_started = now()
            step = steps["take down"]
            try:
                if method == REBOOT:
                    result = None
                    try:
                        result = remote.run(reboot_command(), check=False, timeout=30, what="sudo -n reboot")
                    except ImmichRemoteError:
                        pass  # the connection dropped: the reboot has begun
                    if result is not None and not result.ok:
                        raise ImmichRemoteError(
                            f"Host '{name}': `sudo -n reboot` failed (exit {result.exit_status}): "
                            f"{(result.stderr or result.stdout).strip()[:200]}; nothing was changed.",
                            hint=f"Allow {host.ssh_user or 'the SSH user'} to run reboot without a password "
                            "(sudoers: NOPASSWD: /sbin/reboot), or use --method stop.")
                else:
                    remote.run(stop_command(paths, has_files), timeout=quick(remote), what="docker compose stop")
                is_down, what = _wait_down(remote, host, DOWN_DEADLINE)
                times.down = now()
                step.ok, step.seconds = is_down, times.down - times.down_started
                step.detail = f"/ping fails: {what.removeprefix('/ping: ')}" if is_down else what
            except ImmichRemoteError as exc:
                step.ok, step.seconds, step.detail = False, now() - times.down_started, exc.message
                if method == REBOOT:
                    raise
            # 3. search while down
            if step.ok:
                say(f"{name}: down; smart search through Immich")
                down = _search(client, SEARCH_DEADLINE)
                times.fallback_answered = now()
                steps["search while down"] = _search_step("search while down", down, expect.served)
            # 4. bring back
            say(f"{name}: bringing it back")
            back = steps["bring back"]
            try:
                if method == REBOOT:
                    remote = _reconnect(inv, host, REBOOT_DEADLINE)
                    lock.remote = remote
                    times.back_started = now()
                else:
                    times.back_started = now()
                    remote.run(start_command(paths, has_files), timeout=quick(remote), what="docker compose start")
                gate = wait_serving(remote, host, container.image)
                back_ok, back_detail = gate.ok, gate.detail
            except ImmichRemoteError as exc:
                back_ok, back_detail = False, exc.message
            if back_ok:
                times.back = now()
            back.ok, back.seconds, back.detail = back_ok, now() - (times.back_started or now()), back_detail
        # 5. search after, failed jobs
        if back_ok:
            say(f"{name}: serving again; smart search through Immich")
            after = _search(client, SEARCH_DEADLINE)
            steps["search after"] = _search_step("search after", after, True)
        reading = read_queues(client)
        failed = failed_during(before.queues, reading.queues)
        if steps["search after"].ok is not None:
            steps["search after"].detail += "; failed jobs during the drill: " + (
                ", ".join(f"{q} +{n}" for q, n in failed.items()) or "none")
        # 6. run-missing
        sent: list[dict[str, Any]] | None = None
        if run_missing and back_ok:
            sent = _run_missing(client, reading, steps["run-missing"])
    result = verdict(host=name, fallback=inv.immich.fallback, expect=expect, down=down, back_ok=back_ok,
                     back_detail=back_detail, after=after, failed=failed)
    if sent is not None and any(e["result"] == "failed" for e in sent):
        result.ok = False
        result.headline += " (run-missing: a queue refused the start)"
    data = {"host": name, "url": host.url, "method": method, "fallback": inv.immich.fallback,
            "server": before.server_data(), "urls": urls, "expected": expect.to_data(),
            "steps": [s.to_data() for s in steps.values()], "timings": times.to_data(),
            "search": {"before": baseline.to_data(), "whileDown": down.to_data() if down else None,
                       "after": after.to_data() if after else None},
            "queues": {"before": before.queues, "after": reading.queues, "failedDuring": failed},
            "runMissing": sent, "ok": result.ok, "verdict": result.headline, "notes": result.notes}
    if app.json:
        app.out.data(data)
    else:
        _print(app, data, run_missing=run_missing)
    return 0 if result.ok else EXIT_FAILED


def _search_step(name: str, outcome: SearchOutcome, should_serve: bool) -> Step:
    from ..drill import Step

    if outcome.ok:
        detail = "Immich answered (HTTP 200)"
    elif outcome.ml_failed:
        detail = "Immich answered HTTP 500: every ML URL in its list failed"
    else:
        detail = f"{outcome.error or 'no answer'}"
    if outcome.tries > 1:
        detail += f" ({outcome.tries} tries)"
    ok = outcome.ok if should_serve else outcome.ml_failed
    return Step(name, ok, outcome.seconds, detail + ("" if ok else " - not what the fallback mode promises"))


def _run_missing(client: ImmichClient, reading: Any, step: Step) -> list[dict[str, Any]]:
    """`jobs run-missing` with its defaults: `force: false` to the ML queues enabled in Immich's config."""
    from ..jobs import enabled_ml_queues

    started = now()
    chosen, _disabled = enabled_ml_queues(client.get_config(), reading.queues)
    sent = []
    for queue in chosen:
        entry: dict[str, Any] = {"queue": queue}
        try:
            client.start_missing(queue)
            entry["result"] = "started"
        except ImmichAPIError as exc:
            if exc.status != 400:
                raise
            entry["result"] = "already-running" if "already running" in exc.message.lower() else "failed"
            entry["error"] = exc.message
        sent.append(entry)
    step.ok = not any(e["result"] == "failed" for e in sent)
    step.seconds = now() - started
    step.detail = ", ".join(f"{e['queue']} {e['result']}" for e in sent) or "no ML queue is enabled"
    return sent


def _print(app: App, data: dict[str, Any], *, run_missing: bool) -> None:
    out = app.out
    out.line(f"Drill of {data['host']} ({data['url']}, --method {data['method']}, fallback {data['fallback']}) "
             f"on Immich {data['server']['version']}", style="bold")
    out.line(f"Immich's URL list: {', '.join(data['urls'])}")
    out.line(f"Expected while down: {'a search succeeds' if data['expected']['servedWhileDown'] else 'searches fail'} "
             f"({data['expected']['why']})")
    out.table(["step", "result", "time", "detail"],
              [(s["step"], s["result"], "" if s["seconds"] is None else f"{s['seconds']:.1f}s", s["detail"])
               for s in data["steps"]], status_column="result")
    t = data["timings"]

    def fmt(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}s"

    answered = "fallback answered" if data["expected"]["servedWhileDown"] else "Immich answered (no ML)"
    out.line(f"Timings: {answered} {fmt(t['fallbackAnswered'])} after the host went down; "
             f"downtime {fmt(t['downtime'])}; back {fmt(t['timeBack'])} after the restart")
    out.line(data["verdict"], style="green" if data["ok"] else "red")
    for note in data["notes"]:
        out.line(note, style="yellow")
    if not run_missing and (data["queues"]["failedDuring"] or not data["expected"]["servedWhileDown"]):
        out.line("Queue what failed: `immich-remote jobs run-missing` (or rerun the drill with --run-missing).",
                 style="yellow")
