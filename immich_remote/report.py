"""The ops record behind `immich-remote report`, pure: facts in, JSON-ready data and Markdown out.

The facts are gathered by the command with the code `status` uses (status.collect: each host read
live, Immich's version and URL list) plus the local snapshots (snapshots.list_snapshots). Here they
become the record the user's guide asks an admin to keep: every ML host (address, backend, running
version, bind address, firewall, model cache), Immich's URL list in order, the fallback in plain
words, the last deploy or upgrade with the snapshot that restores the settings before it, and the
update and backup notes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .hwaccel import BACKENDS
from .inventory import Host
from .urls import url_key

ROLLOUT_COMMANDS = ("deploy", "upgrade")
UPDATE_NOTE = ("After updating the Immich server (`docker compose pull && docker compose up -d` there), run "
               "`immich-remote upgrade --wait-server`: the ML hosts must run the server's exact version, and "
               "`immich-remote upgrade --check` exits 1 while one is behind.")


def backup_note(inventory_path: str, state_dir: str) -> str:
    return ("The ML hosts hold no media and no database: nothing on them needs a backup. The model cache can be "
            "downloaded again (the first jobs after losing it are slower while the models download). Keep the "
            f"inventory ({inventory_path}) and the state directory ({state_dir}): its snapshots restore "
            "Immich's settings as they were before each change, and guard.json names the queues the guard paused.")


def backend_of(image: str | None) -> str | None:
    """The accelerator backend a running image was built for, from its tag's suffix (`v2.7.5-cuda`:
    cuda; no suffix: cpu). None without an image."""
    if not image:
        return None
    tag = image.rsplit(":", 1)[-1] if ":" in image.rsplit("/", 1)[-1] else ""
    for name, backend in sorted(BACKENDS.items(), key=lambda item: -len(item[1].suffix)):
        if backend.suffix and tag.endswith(backend.suffix):
            return "openvino" if backend.suffix == "-openvino" else name
    return "cpu"


def size_text(n: int | None) -> str:
    if n is None:
        return "unknown"
    value = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return "unknown"


def firewall_facts(host: Host, status: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The host's ML-port firewall: as read on the host by `status` (on, stopped, off, unset, loopback,
    with its detail) when it was read, else as the inventory sets it (`firewall`, `allow_from`)."""
    allow = list(getattr(host, "allow_from", ()) or ())
    live = (status or {}).get("firewall")
    if live:
        detail = (status or {}).get("firewall_detail") or ""
        sources = f"allow_from {', '.join(allow)}" if allow and live == "on" else ""
        text = f"{live} ({'; '.join(p for p in (sources, detail) if p)})" if sources or detail else live
        return {"state": live, "allow_from": allow, "text": text, "read_on_host": True}
    if not hasattr(host, "firewall"):
        return {"state": "not managed", "allow_from": [], "text": "not managed", "read_on_host": False}
    if getattr(host, "firewall"):  # noqa: B009 - older inventories have no such field
        text = f"on (allow_from {', '.join(allow)})" if allow else "on (no allowed source known)"
        return {"state": "on", "allow_from": allow, "text": text + "; as configured, not read on the host",
                "read_on_host": False}
    return {"state": "off", "allow_from": allow, "read_on_host": False,
            "text": "off (firewall: false: the ML port answers anyone who can reach it; the ML API has no "
                    "authentication)"}


def host_facts(host: Host, status: Mapping[str, Any], server_version: str | None) -> dict[str, Any]:
    """One ML host's record from its inventory entry and its live status (`HostStatus.to_data()`)."""
    image = status.get("image")
    container = status.get("state")
    if container and status.get("health"):
        container = f"{container} ({status['health']})"
    return {
        "name": host.name, "address": host.address, "url": host.url, "bind_address": host.bind_address,
        "port": host.ml_port, "accel": host.accel, "backend": backend_of(image),
        "image": image, "running_version": status.get("running_version"), "server_version": server_version,
        "version_matches": status.get("version_matches"), "reachable": bool(status.get("reachable")),
        "error": status.get("error"), "container": container, "ping_ms": status.get("ping_ms"),
        "url_position": status.get("registered_position"), "firewall": firewall_facts(host, status),
        "model_cache": {"where": host.model_cache, "kind": "path" if host.model_cache_is_path else "volume",
                        "volume": status.get("cache_volume"), "bytes": status.get("cache_bytes"),
                        "size": size_text(status.get("cache_bytes"))},
        "last_change": dict(status.get("last_change") or {}), "locked_by": status.get("locked_by"),
    }


def url_list(urls: Sequence[str] | None, hosts: Sequence[Mapping[str, Any]], local_url: str,
             health: Mapping[str, str], would_use: str | None,
             pools: Sequence[Mapping[str, Any]] = ()) -> list[dict[str, Any]]:
    """Immich's URLs in order, each with what it is: an inventory host, a pool, Immich's own ML, or added by hand."""
    by_key = {url_key(h["url"]): f"ML host {h['name']}" for h in hosts}
    by_key.update({url_key(p["url"]): f"ML pool {p['name']} (balancer on {p['balancer']})" for p in pools})
    rows = []
    for position, url in enumerate(urls or [], 1):
        key = url_key(url)
        what = by_key[key] if key in by_key else \
            "Immich's own ML (the local fallback)" if key == url_key(local_url) else "added by hand (not in the inventory)"
        rows.append({"position": position, "url": url, "what": what, "health_from_here": health.get(url),
                     "would_be_used_now": url == would_use})
    return rows


def fallback_words(fallback: str, urls: Sequence[str] | None, local_url: str) -> str:
    """The fallback mode in plain words, checked against the URL list Immich really has."""
    has_local = urls is not None and url_key(local_url) in {url_key(u) for u in urls}
    if fallback == "keep-local":
        text = (f"Local kept as fallback: Immich's own ML ({local_url}) stays last in the list, so when every "
                "remote host is down Immich uses it (slower, but ML jobs keep working).")
        if urls is not None and not has_local:
            text += f" But Immich's list does not hold {local_url} now: run `immich-remote deploy` to put it back."
        return text
    text = ("Remote only: the local ML URL was removed, so while every remote host is down, ML jobs (smart search, "
            "face detection, OCR) fail; `immich-remote guard` pauses the ML queues during such an outage, and "
            "`immich-remote jobs run-missing` queues what failed.")
    if has_local:
        text += f" Immich's list still holds {local_url}, though: it would serve as a fallback."
    return text


def last_rollout(snapshots: Sequence[tuple[str, str, Mapping[str, Any]]]) -> dict[str, Any] | None:
    """The newest deploy or upgrade from the local snapshots `(name, path, meta)` (oldest first), with
    the command that puts Immich's settings back as they were before it."""
    for name, path, meta in reversed(snapshots):
        if meta.get("command") not in ROLLOUT_COMMANDS:
            continue
        results = [{"host": r.get("host"), "status": r.get("status"), "image": r.get("image"),
                    "previous_image": r.get("previous_image")} for r in meta.get("results") or []
                   if isinstance(r, Mapping)]
        return {"command": meta.get("command"), "by": meta.get("by"), "at": meta.get("at"),
                "server_version": meta.get("server_version"), "hosts": list(meta.get("hosts") or []),
                "results": results, "urls_before": meta.get("urls_before"), "urls_after": meta.get("urls_after"),
                "snapshot": name, "snapshot_path": path,
                "restore": f"immich-remote config restore {name}",
                "restore_all": f"immich-remote config restore --all {name}"}
    return None


def guard_words(memory: Mapping[str, Any] | None) -> str:
    """What the outage guard holds, from its guard.json (None: no guard ran with this state directory)."""
    if memory is None:
        return ("No guard state in this state directory: `immich-remote guard` pauses the ML queues while no ML "
                "URL answers (docs/guard.md).")
    if memory.get("error"):
        return f"unknown: {memory['error']}"
    if not memory.get("paused"):
        return "The outage guard holds no queue paused."
    return (f"The outage guard paused {', '.join(memory['paused'])} at {memory.get('since') or '?'} "
            f"({memory.get('reason') or 'no reason recorded'}); it resumes them when an ML URL answers again.")


def report_data(*, generated_at: str, inventory_path: str, state_dir: str, server: Mapping[str, Any],
                local_url: str, hosts: Sequence[Mapping[str, Any]], last: Mapping[str, Any] | None,
                guard: Mapping[str, Any] | None = None, pools: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """The whole record, JSON-ready. `server` is `ServerStatus.to_data()`; `guard` the guard's memory;
    `pools` each `pool.PoolStatus.to_data()` (the members as the balancer sees them)."""
    urls = server.get("urls")
    return {
        "generated_at": generated_at, "inventory": inventory_path, "state_dir": state_dir,
        "immich": {"url": server.get("url"), "version": server.get("version"), "error": server.get("error"),
                   "urls": url_list(urls, hosts, local_url, server.get("url_health") or {}, server.get("would_use"),
                                    pools),
                   "fallback": server.get("fallback"),
                   "fallback_words": fallback_words(str(server.get("fallback")), urls, local_url)},
        "hosts": [dict(h) for h in hosts],
        "pools": [dict(p) for p in pools],
        "last_rollout": dict(last) if last else None,
        "guard": {"paused": list((guard or {}).get("paused") or []), "since": (guard or {}).get("since"),
                  "text": guard_words(guard)},
        "update_note": UPDATE_NOTE,
        "backup_note": backup_note(inventory_path, state_dir),
    }


def _cell(value: Any) -> str:
    return str(value if value not in (None, "") else "-").replace("|", "\\|")


def _host_rows(hosts: Sequence[Mapping[str, Any]]) -> list[str]:
    rows = ["| host | address | URL | backend | running | bind address | firewall | model cache |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for h in hosts:
        if not h["reachable"]:
            running = f"unreachable: {h.get('error') or '?'}"
        else:
            running = h.get("running_version") or "no container"
            if h.get("container"):
                running += f" ({h['container']})"
            if h.get("version_matches") is False:
                running += f", server runs {h.get('server_version')}"
        cache = h["model_cache"]
        where = f"{cache['kind']} {cache['where']}" + (f" ({cache['volume']})" if cache.get("volume") and
                                                         cache["volume"] != cache["where"] else "")
        backend = h.get("backend") or f"{h.get('accel')} (configured)"
        rows.append("| " + " | ".join(_cell(v) for v in (
            h["name"], h["address"], h["url"], backend, running, f"{h['bind_address']}:{h['port']}",
            h["firewall"]["text"], f"{where}, {cache['size']}")) + " |")
    return rows


def _pool_rows(pools: Sequence[Mapping[str, Any]]) -> list[str]:
    lines: list[str] = []
    for p in pools:
        lines += ["", f"## ML pool {p['name']}", "", f"- URL (the one Immich gets): {p['url']}; balancer (HAProxy) on "
                  f"{p['balancer']}"]
        if p.get("error"):
            lines.append(f"- The balancer does not answer: {p['error']}")
            continue
        lines += [f"- Requests in flight: {p.get('current')}; since the balancer started: {p.get('requests')}", "",
                  "| member | state | health check | weight | in flight | requests | errors |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        lines += ["| " + " | ".join(_cell(v) for v in (m["name"], m["state"], f"{m['status']} {m.get('check') or ''}",
                                                          m["weight"], m["current"], m["requests"], m["errors"])) + " |"
                  for m in p["members"]]
    return lines


def to_markdown(data: Mapping[str, Any]) -> str:
    immich = data["immich"]
    lines = ["# Immich remote machine learning: operations record", "",
             f"Generated {data['generated_at']} by `immich-remote report` from the inventory "
             f"`{data['inventory']}`.", "", "## Immich server", "",
             f"- URL: {immich['url']}", f"- Version: {immich.get('version') or 'unknown'}"
             + (f" (could not be read: {immich['error']})" if immich.get("error") else ""),
             "- `machineLearning.urls`, in the order Immich tries them:"]
    for row in immich["urls"]:
        now = "; would be used now" if row["would_be_used_now"] else ""
        health = f" [{row['health_from_here']}{now}]" if row.get("health_from_here") else ""
        lines.append(f"  {row['position']}. {row['url']}: {row['what']}{health}")
    if not immich["urls"]:
        lines.append("  (unknown: the config could not be read)" if immich.get("error") else "  (empty)")
    lines += [f"- Fallback ({immich['fallback']}): {immich['fallback_words']}",
              f"- Outage guard: {data['guard']['text']}", "", "## ML hosts", ""]
    lines += _host_rows(data["hosts"]) if data["hosts"] else ["No ML host in the inventory."]
    lines += _pool_rows(data.get("pools") or [])
    changes = [f"- {h['name']}: {c.get('command', '?')} at {c.get('at', '?')} by {c.get('by', '?')}"
               + (f" ({c['image']})" if c.get("image") else "")
               for h in data["hosts"] if (c := h.get("last_change"))]
    if changes:
        lines += ["", "Last change recorded on each host:", "", *changes]
    lines += ["", "## Last deploy or upgrade", ""]
    last = data.get("last_rollout")
    if last:
        outcome = ", ".join(f"{r['host']} {r['status']}" + (f" ({r['image']})" if r.get("image") else "")
                            for r in last["results"]) or ", ".join(last["hosts"]) or "no host"
        lines += [f"- `{last['command']}` by {last.get('by') or '?'} at {last.get('at') or '?'}"
                  + (f" (Immich {last['server_version']})" if last.get("server_version") else ""),
                  f"- Hosts: {outcome}",
                  f"- URL list before: {', '.join(last.get('urls_before') or []) or '-'}",
                  f"- URL list after: {', '.join(last.get('urls_after') or []) or 'unchanged'}",
                  f"- Snapshot with the settings before it: `{last['snapshot']}` ({last['snapshot_path']})",
                  f"- To put the ML URL list back: `{last['restore']}` (the whole config: `{last['restore_all']}`)"]
    else:
        lines.append(f"No deploy or upgrade recorded in {data['state_dir']} (snapshots are kept where the command "
                     "ran).")
    lines += ["", "## After updating the Immich server", "", data["update_note"], "",
              "## Backups", "", data["backup_note"], ""]
    return "\n".join(lines)
