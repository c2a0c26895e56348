"""index.html: the page people open on the share, rendered from the status snapshot.

The page is whole without script (a browser that runs none reloads it through a
``<noscript>`` refresh).  With script, ``page.js`` loads ``status.js`` again every
``refresh_s`` seconds and patches ``<main>`` with the new HTML this module rendered,
keeping every element whose key and content are unchanged: a video playing, a
scrolled table, an opened details block stay as they are.

Every element the patch must match across updates carries ``data-key``.  States
are words with an icon, never colour alone; tables have captions and scoped
header cells.  Links are relative, so the page works from ``file://`` and behind
any static web server, and nothing is fetched from anywhere else.
"""

from __future__ import annotations

import functools
import html
from dataclasses import dataclass
from datetime import datetime, tzinfo
from importlib import resources
from typing import Any, Iterable
from urllib.parse import quote

from .times import clock_time, parse, relative, time_left, zone_label

#: the icon beside each state's word (aria-hidden: the word is what is read out)
ICONS = {"done": "✔", "partial": "◐", "failed": "✖", "running": "▶", "queued": "◷", "waiting": "…"}
STATE_WORDS = {"done": "done", "partial": "partly done", "failed": "failed"}
#: the words for the kinds of notices the daemon gives (StatusBoard.notice); others show as given
NOTICE_WORDS = {"notify": "notification", "retention": "retention", "cache": "cache"}


@dataclass(frozen=True)
class PageView:
    """How to show the snapshot: the zone times are in, the clock they are relative to."""

    zone: tzinfo
    now: datetime
    refresh_s: float = 5.0


@functools.cache
def _asset(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def render_page(data: dict[str, Any], view: PageView) -> str:
    """The whole document: head, the live banner, ``<main>`` and the inline script."""
    title = esc(page_title(data))
    refresh = max(10, int(view.refresh_s))
    return (
        "<!doctype html>\n<html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width, initial-scale=1'>"
        f"<title>{title}</title>"
        f"<noscript><meta http-equiv=refresh content={refresh}></noscript>"
        f"<style>{_asset('page.css')}</style></head>\n"
        f"<body data-refresh='{view.refresh_s:g}' data-global='heygemStatus'>"
        "<p id=live class=live role=status aria-live=polite></p>\n"
        f"<main id=status>{render_main(data, view)}</main>\n"
        f"<script>{_asset('page.js')}</script></body></html>\n"
    )


def page_title(data: dict[str, Any]) -> str:
    running = len(data["running"])
    return f"{data.get('title') or 'heygem-daemon'}" + (f" ({running} running)" if running else "")


def render_main(data: dict[str, Any], view: PageView) -> str:
    """``<main>``'s content: what status.js carries for the page's script to patch in."""
    recent, notices = data["recent"], data.get("notices", [])
    parts = [
        _header(data, view),
        _problem(data.get("problem")),
        _section("running", "Running", "Jobs being made now", ("Job", "Progress", "Started"),
                 [_running_row(j, view) for j in data["running"]], "Nothing is being made now."),
        _section("queued", "Queued", "Jobs waiting for their turn, the next first", ("#", "Job", "Detail"),
                 [_queued_row(i, j) for i, j in enumerate(data["queued"], 1)], "No job is waiting for its turn."),
        _section("waiting", "Arriving", "Job folders still being copied into the inbox", ("Job", "Waiting for"),
                 [_waiting_row(j) for j in data["waiting"]], "No job folder is being copied in."),
        _section("finished", "Finished", "Finished jobs, newest first, with their videos",
                 ("Job", "Outcome", "Finished", "Result"),
                 [_finished_row(j, k, view) for j, k in zip(recent, _unique(map(_finished_key, recent)))],
                 "No job has finished yet."),
        _section("notices", "Notices", "Notifications that failed, old jobs cleared away, newest first",
                 ("When", "What", "Details"),
                 [_notice_row(n, k, view) for n, k in zip(notices, _unique(map(_notice_key, notices)))],
                 "No notices."),
    ]
    return "".join(p for p in parts if p)


# -- pieces ------------------------------------------------------------------------------------
def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def href(*names: str) -> str:
    """A relative link to a file in the outbox; names that are not UTF-8 keep their bytes."""
    return "/".join(quote(n.encode("utf-8", "surrogateescape"), safe="") for n in names)


def _time(iso: str | None, view: PageView) -> str:
    stamp = parse(iso)
    if stamp is None:
        return ""
    local = stamp.astimezone(view.zone)
    return (f"<time datetime='{esc(iso)}' title='{esc(local.strftime('%Y-%m-%d %H:%M:%S %Z'))}'>"
            f"{esc(clock_time(stamp, view.zone, view.now))}</time> "
            f"<span class=ago data-since='{esc(iso)}'>{esc(relative(stamp, view.now))}</span>")


def _icon(state: str) -> str:
    return f"<span class=icon aria-hidden=true>{ICONS.get(state, '•')}</span>"


def _header(data: dict[str, Any], view: PageView) -> str:
    counts = [f"{len(data['running'])} running", f"{len(data['queued'])} queued",
              f"{len(data['waiting'])} arriving", f"{len(data['recent'])} finished"]
    return (
        f"<header data-key=header><h1>{esc(data.get('title') or 'heygem-daemon')}</h1>"
        f"<p class=meta>{esc(' · '.join(counts))}</p>"
        f"<p class=meta>Host {esc(data['host'])} · updated {_time(data['updated_at'], view)}"
        f" · times in {esc(zone_label(view.zone, view.now))}</p></header>"
    )


def _problem(problem: str | None) -> str:
    if not problem:
        return ""
    return f"<p class=problem role=alert data-key=problem><span aria-hidden=true>⚠</span> {esc(problem)}</p>"


def _section(key: str, title: str, caption: str, columns: Iterable[str], rows: list[str], empty: str) -> str:
    heading = f"<h2 id={key}-heading>{esc(title)} ({len(rows)})</h2>"
    if not rows:
        body = f"{heading}<p class=none>{esc(empty)}</p>"
    else:
        head = "".join(f"<th scope=col>{esc(c)}</th>" for c in columns)
        body = (f"{heading}<table aria-labelledby={key}-heading><caption>{esc(caption)}</caption>"
                f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")
    return f"<section id={key} data-key={key} aria-labelledby={key}-heading>{body}</section>"


def _row(key: str, state: str, cells: str) -> str:
    return f"<tr data-key='{esc(key)}' class=state-{esc(state)}>{cells}</tr>"


def _running_row(job: dict[str, Any], view: PageView) -> str:
    fraction = job.get("progress")
    name = esc(job["job"])
    if fraction is None:
        bar = f"<progress aria-label='{name}: starting'></progress>"
        figures = "starting"
    else:
        percent = int(max(0.0, min(1.0, fraction)) * 100)
        bar = f"<progress max=100 value={percent} aria-label='{name}: {percent}% done'>{percent}%</progress>"
        figures = f"{percent}% done"
        if job.get("eta_s") is not None:
            figures += f" · {time_left(job['eta_s'])}"
    cells = (f"<th scope=row>{_icon('running')} {name}</th>"
             f"<td class=progress><p class=detail>{esc(job.get('detail', ''))}</p>{bar}"
             f"<p class=figures>{esc(figures)}</p></td>"
             f"<td>{_time(job.get('since'), view)}</td>")
    return _row(f"run:{job['job']}", "running", cells)


def _queued_row(place: int, job: dict[str, Any]) -> str:
    cells = (f"<td>{place}</td><th scope=row>{_icon('queued')} {esc(job['job'])}</th>"
             f"<td>{esc(job.get('detail', ''))}</td>")
    return _row(f"queue:{job['job']}", "queued", cells)


def _waiting_row(job: dict[str, Any]) -> str:
    cells = f"<th scope=row>{_icon('waiting')} {esc(job['job'])}</th><td>{esc(job.get('detail', ''))}</td>"
    return _row(f"wait:{job['job']}", "waiting", cells)


def _finished_key(job: dict[str, Any]) -> str:
    return f"done:{job.get('outbox_name') or ''}:{job.get('since', '')}:{job['job']}"


def _finished_row(job: dict[str, Any], key: str, view: PageView) -> str:
    state, folder = job.get("state", ""), job.get("outbox_name")
    outputs = job.get("outputs") or []
    name = esc(job["job"])
    title = f"<a href='{esc(href(folder))}/'>{name}</a>" if folder else name
    word = STATE_WORDS.get(state, state)
    made = [o for o in outputs if o.get("status") == "done"]
    if state == "partial" and outputs:
        word += f" ({len(made)} of {len(outputs)} videos)"
    if job.get("detail") and job["detail"] != "published":
        word += f", {job['detail']}"
    cells = (f"<th scope=row>{title}</th>"
             f"<td class=state>{_icon(state)} {esc(word)}</td>"
             f"<td>{_time(job.get('since'), view)}</td>"
             f"<td class=result>{_reason(job, folder)}{_outputs(outputs, folder, failed=not job.get('reason'))}</td>")
    return _row(key, state, cells)


def _reason(job: dict[str, Any], folder: str | None) -> str:
    reason = job.get("reason")
    if not reason:
        return ""
    bullets = [b.strip() for b in ("\n" + reason).split("\n- ") if b.strip()]
    if len(bullets) > 1:
        items = "".join(f"<li>{esc(b)}</li>" for b in bullets)
        text = f"<div class=reason><strong>Why:</strong><ul>{items}</ul></div>"
    else:
        text = f"<p class=reason><strong>Why:</strong> {esc(bullets[0] if bullets else reason)}</p>"
    if folder:
        text += f"<p class=more><a href='{esc(href(folder, 'ERROR.txt'))}'>All of ERROR.txt</a></p>"
    return text


def _outputs(outputs: list[dict[str, Any]], folder: str | None, *, failed: bool) -> str:
    """The videos made; the failed ones too when no reason above names them already."""
    if not outputs or not folder:
        return ""
    items = []
    for out in outputs:
        source = f"{out.get('video', '')} with {out.get('audio', '')}"
        if out.get("status") != "done" or not out.get("file"):
            if failed:
                items.append(f"<li class=output-failed>{_icon('failed')} {esc(source)}: "
                             f"{esc(out.get('error') or 'failed')}</li>")
            continue
        items.append(f"<li class=output>{_player(out, folder)}<p class=caption>"
                     f"<a href='{esc(href(folder, out['file']))}'>{esc(out['file'])}</a>"
                     f" <span class=source>({esc(source)})</span></p></li>")
    return f"<ul class=outputs>{''.join(items)}</ul>" if items else ""


def _player(out: dict[str, Any], folder: str) -> str:
    """The video in place; its poster is the thumbnail, and only the poster loads until played."""
    video = esc(href(folder, out["file"]))
    label = esc(f"Play {out['file']}")
    if not out.get("poster"):
        return f"<video controls preload=metadata src='{video}' aria-label='{label}'></video>"
    poster = esc(href(folder, out["poster"]))
    fallback = f"<a href='{video}'><img src='{poster}' alt='{esc(out['file'])}'></a>"
    return f"<video controls preload=none poster='{poster}' src='{video}' aria-label='{label}'>{fallback}</video>"


def _notice_key(notice: dict[str, str]) -> str:
    return f"note:{notice.get('at', '')}:{notice.get('kind', '')}:{notice.get('text', '')[:80]}"


def _notice_row(notice: dict[str, str], key: str, view: PageView) -> str:
    kind = notice.get("kind", "")
    # notifications are noticed only when they fail; retention and cache notices are news
    icon = "⚠" if kind.startswith("notif") or any(w in kind for w in ("fail", "error", "warn")) else "ℹ"
    label = NOTICE_WORDS.get(kind, kind.replace("_", " "))
    cells = (f"<td>{_time(notice.get('at'), view)}</td>"
             f"<th scope=row><span class=icon aria-hidden=true>{icon}</span> {esc(label)}</th>"
             f"<td>{esc(notice.get('text', ''))}</td>")
    return _row(key, "notice", cells)


def _unique(keys: Iterable[str]) -> list[str]:
    """Keys for the patch, each once: the second of two equal ones gets ``#2``."""
    seen: dict[str, int] = {}
    unique = []
    for key in keys:
        seen[key] = seen.get(key, 0) + 1
        unique.append(key if seen[key] == 1 else f"{key}#{seen[key]}")
    return unique
