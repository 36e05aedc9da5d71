"""The static HTML report: an index of studies, one page per study, and the Reproductions page.

Pages open from the file system with no server: figures are PNG files beside the pages,
styles are inline. Each study page shows its figures and tables, the paper numbers beside
ours, the exact command and configuration, the software versions, the machine and the wall
time, all read from the results store. The Reproductions page (``reproductions.html``) has one
row per registered :class:`~smithing.experiment.Reproduction`: the paper's value beside ours
(every stored run of the reproduction's recipe), the target, wall time, machine, date,
command, departures and recipe status; a reproduction without runs is "not run yet".
"""

from __future__ import annotations

import datetime as _dt
import html
import json
import time
import traceback
from pathlib import Path

from smithing.experiment.store import Store

__all__ = ["CSS", "write_study_page", "write_reproductions_page", "write_report"]

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
h1,h2,h3{font-weight:600} a{color:#0b62a4} code,pre{background:#f5f5f5;border-radius:3px}
pre{padding:.7em;overflow-x:auto;font-size:.85em} table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left;font-size:.92em}
th{background:#f0f0f0} figure{margin:1.2em 0} figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:.9em;color:#555} .muted{color:#777;font-size:.9em}
.err{color:#a00} .met{color:#060;font-weight:600} .miss{color:#a00;font-weight:600}
td ul{margin:0;padding-left:1.1em}
"""


def _page(title: str, body: str) -> str:
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
        f"</title><style>{CSS}</style></head><body>{body}</body></html>"
    )


def _table_html(table) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.columns)
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(c))}</td>" for c in r) + "</tr>"
        for r in table.rows
    )
    cap = f"<caption>{html.escape(table.caption)}</caption>" if table.caption else ""
    return f"<table>{cap}<tr>{head}</tr>{rows}</table>"


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _markdownish(text: str) -> str:
    """Tiny markdown: paragraphs (hard-wrapped lines joined), ``- `` lists, pipe tables.

    A blank line ends a paragraph or a list; a line starting with ``- `` or ``* `` starts a
    list item, and the lines after it continue that item until a blank line or the next item.
    """
    out: list[str] = []
    para: list[str] = []
    items: list[list[str]] = []

    def flush() -> None:
        if para:
            out.append(f"<p>{html.escape(' '.join(para))}</p>")
            para.clear()
        if items:
            lis = "".join(f"<li>{html.escape(' '.join(it))}</li>" for it in items)
            out.append(f"<ul>{lis}</ul>")
            items.clear()

    lines = text.strip().splitlines()
    i = 0
    while i < len(lines):
        s = lines[i].strip()
        if s.startswith("|"):
            flush()
            rows = []
            while i < len(lines) and lines[i].strip().startswith("|"):
                cells = [c.strip() for c in lines[i].strip().strip("|").split("|")]
                if not all(set(c) <= set("-: ") for c in cells):
                    rows.append(cells)
                i += 1
            if rows:
                head = "".join(f"<th>{html.escape(c)}</th>" for c in rows[0])
                body = "".join(
                    "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>"
                    for r in rows[1:]
                )
                out.append(f"<table><tr>{head}</tr>{body}</table>")
            continue
        if not s:
            flush()
        elif s.startswith(("- ", "* ")):
            if para:
                flush()
            items.append([s[2:]])
        elif items:
            items[-1].append(s)  # a wrapped line of the current item
        else:
            para.append(s)  # a wrapped line of the current paragraph
        i += 1
    flush()
    return "\n".join(out)


def write_study_page(store: Store, study_name: str, report_dir: Path) -> dict:
    from smithing.experiment import STUDIES

    study = STUDIES.get(study_name) if study_name in STUDIES else None
    # the runs of the latest invocation (older configurations stay in the store, unshown)
    last = store.last_session(study_name)
    results = store.results(study_name, run_ids=(last or {}).get("run_ids") or None)
    fig_dir = report_dir / study_name
    fig_dir.mkdir(parents=True, exist_ok=True)
    parts = [
        f"<p><a href='index.html'>&larr; all studies</a></p><h1>{html.escape(study_name)}</h1>"
    ]
    if study is not None:
        parts.append(f"<p>{html.escape(study.description)}</p>")
    counts: dict[str, int] = {}
    for r in results.runs:
        counts[r.status] = counts.get(r.status, 0) + 1
    parts.append(
        "<p class='muted'>runs: "
        + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        + "</p>"
    )
    done = [r for r in results.runs if r.status in ("done", "diverged")]
    if study is not None and done:
        if study.table is not None:
            try:
                parts.append("<h2>Results</h2>" + _table_html(study.table(results)))
            except Exception:  # noqa: BLE001 - a broken table must not lose the page
                parts.append(f"<pre class='err'>{html.escape(traceback.format_exc())}</pre>")
        if study.figures is not None:
            try:
                figs = study.figures(results, str(fig_dir))
            except Exception:  # noqa: BLE001
                figs = []
                parts.append(f"<pre class='err'>{html.escape(traceback.format_exc())}</pre>")
            for f in figs:
                parts.append(
                    f"<figure><img src='{html.escape(study_name)}/{html.escape(f.path)}'"
                    f" alt='{html.escape(f.caption)}'><figcaption>"
                    f"{html.escape(f.caption)}</figcaption></figure>"
                )
        if study.references:
            parts.append("<h2>Published numbers</h2>" + _markdownish(study.references))
    failed = [r for r in results.runs if r.status == "failed"]
    if failed:
        parts.append(
            "<h2>Failed runs</h2><ul>"
            + "".join(
                f"<li>{html.escape(r.variant)} seed {r.seed}: {html.escape(r.message)}</li>"
                for r in failed
            )
            + "</ul>"
        )
    meta = results.meta
    if meta:
        started = _dt.datetime.fromtimestamp(meta["started"]).isoformat(timespec="seconds")
        parts.append("<h2>How these results were made</h2>")
        parts.append(
            f"<p>Command: <code>{html.escape(meta['command'])}</code> (scale "
            f"{html.escape(meta['scale'])}, started {started}, wall time "
            f"{(meta.get('seconds') or 0):.1f} s)</p>"
        )
        env = meta.get("environment", {})
        parts.append(
            "<table>"
            + "".join(
                f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
                for k, v in env.items()
            )
            + "</table>"
        )
    configs = {}
    for r in results.runs:
        cfg = dict(r.config)
        configs.setdefault(r.variant, cfg)
    parts.append(
        "<h2>Configuration of each variant</h2><pre>"
        + html.escape(json.dumps(configs, indent=1, default=str))
        + "</pre>"
    )
    (report_dir / f"{study_name}.html").write_text(
        _page(f"smithing: {study_name}", "\n".join(parts))
    )
    return {
        "study": study_name,
        "description": study.description if study else "",
        "runs": len(results.runs),
        "counts": counts,
        "meta": meta,
    }


def _when(t: float | None) -> str:
    return "" if not t else _dt.datetime.fromtimestamp(t).isoformat(timespec="seconds")


def _machine(env: dict) -> str:
    """One line for a session's environment: processor, CPUs, threads, device, GPU."""
    parts = [str(env.get("processor") or env.get("platform") or "")]
    if env.get("cpu_count"):
        parts.append(f"{env['cpu_count']} CPUs")
    if env.get("torch_threads"):
        parts.append(f"torch threads {env['torch_threads']}")
    if env.get("device"):
        parts.append(f"device {env['device']}")
    if env.get("gpu"):
        parts.append(str(env["gpu"]))
    if env.get("platform"):
        parts.append(str(env["platform"]))
    if env.get("torch"):
        parts.append(f"torch {env['torch']}")
    return ", ".join(p for p in parts if p)


def _ours(outcome) -> str:
    rep = outcome.reproduction
    lines = []
    for row in outcome.rows:
        if row.missing:
            lines.append(f"{row.label}: not a variant of the study yet")
            continue
        text = (
            f"{rep.number(row.mean)} ± {rep.format(row.std)}, n = {row.n} "
            f"(seeds {', '.join(map(str, row.seeds))}; min {rep.number(row.min)}, "
            f"max {rep.number(row.max)})"
            if row.n
            else "no complete run"
        )
        counts = ("diverged", "failed", "pending")
        notes = [f"{k} {getattr(row, k)}" for k in counts if getattr(row, k)]
        if row.chosen:
            pairs = zip(row.seeds, row.chosen)
            notes.append("chosen: " + ", ".join(f"seed {s} {v}" for s, v in pairs))
        lines.append(f"{row.label}: {text}" + (f" [{'; '.join(notes)}]" if notes else ""))
    return "<br>".join(html.escape(x) for x in lines)


def write_reproductions_page(store: Store, report_dir: Path) -> Path:
    """``reproductions.html``: one row per registered reproduction (see the module doc)."""
    from smithing.experiment import REPRODUCTIONS
    from smithing.experiment.reproductions import format_time, stored

    done, not_run = [], []
    for entry in REPRODUCTIONS.entries():
        rep = entry.obj
        try:
            outcome = stored(store, rep)
        except Exception:  # noqa: BLE001 - one broken declaration must not lose the page
            done.append(
                f"<tr><td>{html.escape(rep.name)}</td><td colspan='12'><pre class='err'>"
                f"{html.escape(traceback.format_exc())}</pre></td></tr>"
            )
            continue
        if not outcome.runs:
            basis = (
                rep.time_basis and f"<br><span class='muted'>{html.escape(rep.time_basis)}</span>"
            )
            not_run.append(
                f"<tr><td>{html.escape(rep.name)}</td><td>{html.escape(rep.paper.cite())}</td>"
                f"<td>{html.escape(rep.result)}</td><td>{html.escape(rep.published_text())}</td>"
                f"<td>{html.escape(rep.target_text())}</td><td>not run yet</td>"
                f"<td>{html.escape(format_time(rep.cpu_time))}{basis}</td>"
                f"<td>{html.escape(format_time(rep.gpu_time))}</td>"
                f"<td><code>smithing reproduce {html.escape(rep.name)}</code></td></tr>"
            )
            continue
        last = outcome.last_session or {}
        verdict = {True: "met", False: "not met", None: "not judged"}[outcome.met]
        css = {True: "met", False: "miss", None: "muted"}[outcome.met]
        departures = "".join(f"<li>{html.escape(d)}</li>" for d in rep.departures)
        done.append(
            f"<tr><td>{html.escape(rep.name)}<br><a href='{html.escape(rep.study)}.html'>"
            f"study {html.escape(rep.study)}</a></td>"
            f"<td>{html.escape(rep.paper.cite())}</td><td>{html.escape(rep.result)}</td>"
            f"<td>{html.escape(rep.published_text())}</td><td>{_ours(outcome)}</td>"
            f"<td>{html.escape(rep.target_text())}<br><span class='{css}'>{verdict}</span>"
            f"<br><span class='muted'>{html.escape(outcome.verdict)}</span></td>"
            f"<td>{format_time(outcome.seconds)} of training ({outcome.runs} runs); "
            f"sessions {format_time(outcome.session_seconds)} ({len(outcome.sessions)})"
            f"<br><span class='muted'>expected per seed: CPU "
            f"{html.escape(format_time(rep.cpu_time))}, GPU "
            f"{html.escape(format_time(rep.gpu_time))}</span></td>"
            f"<td>{html.escape(_machine(last.get('environment') or {}))}</td>"
            f"<td>{_when(last.get('started'))}</td>"
            f"<td><code>{html.escape(last.get('command', ''))}</code></td>"
            f"<td><ul>{departures}</ul></td><td>{html.escape(rep.recipe_status)}</td></tr>"
        )
    head = (
        "<tr><th>reproduction</th><th>paper</th><th>result</th><th>published</th>"
        "<th>ours: mean ± sample std over seeds</th><th>target</th><th>wall time</th>"
        "<th>machine</th><th>date</th><th>command</th><th>departures from the paper</th>"
        "<th>recipe status</th></tr>"
    )
    body = [
        "<p><a href='index.html'>&larr; all studies</a></p><h1>Reproductions</h1>",
        "<p>Published results and our runs of their recipes. Our value is over every stored "
        "run of the reproduction's recipe (its study, scale, variants and configuration); a "
        "value chosen on validation is, per seed, the test value of the variant with the best "
        "validation value. Wall time: the runs' own training seconds, summed, and the wall "
        "time of the sessions that ran them (a session may have run other variants too). "
        "Machine, date and command: the latest such session.</p>",
    ]
    if done:
        body.append("<table>" + head + "".join(done) + "</table>")
    if not_run:
        body.append(
            "<h2>Not run yet</h2><table><tr><th>reproduction</th><th>paper</th><th>result</th>"
            "<th>published</th><th>target</th><th>ours</th><th>expected CPU time / seed</th>"
            "<th>expected GPU time / seed</th><th>command</th></tr>" + "".join(not_run) + "</table>"
        )
    if not done and not not_run:
        body.append("<p class='muted'>No reproduction is registered.</p>")
    path = report_dir / "reproductions.html"
    path.write_text(_page("smithing: reproductions", "\n".join(body)))
    return path


def write_report(out_dir: str | Path, studies: list[str] | None = None) -> Path:
    """(Re)write ``<out>/report/``: pages for ``studies`` (default all) and the index."""
    out_dir = Path(out_dir)
    report_dir = out_dir / "report"
    report_dir.mkdir(parents=True, exist_ok=True)
    with Store(out_dir) as store:
        names = store.studies()
        for name in studies if studies is not None else names:
            if name in names:
                write_study_page(store, name, report_dir)
        rows = []
        for name in names:
            res_meta = store.last_session(name) or {}
            counts = store.counts(name)
            rows.append((name, counts, res_meta))
        write_reproductions_page(store, report_dir)
    from smithing.experiment import STUDIES

    items = []
    for name, counts, meta in rows:
        desc = STUDIES.get(name).description if name in STUDIES else ""
        when = (
            _dt.datetime.fromtimestamp(meta["started"]).isoformat(timespec="seconds")
            if meta
            else ""
        )
        items.append(
            f"<tr><td><a href='{html.escape(name)}.html'>{html.escape(name)}</a></td>"
            f"<td>{html.escape(desc)}</td><td>{sum(counts.values())}</td>"
            f"<td>{html.escape(meta.get('scale', '') if meta else '')}</td>"
            f"<td>{when}</td></tr>"
        )
    body = (
        "<h1>smithing report</h1><p>Each study trains its variants over several seeds; "
        "click a study for its figures and tables. <a href='reproductions.html'>Reproductions"
        "</a>: published results beside ours.</p><table><tr><th>study</th>"
        "<th>what it shows</th><th>runs</th><th>scale</th><th>last run</th></tr>"
        + "".join(items)
        + "</table>"
        f"<p class='muted'>written {time.strftime('%Y-%m-%d %H:%M:%S')}</p>"
    )
    index = report_dir / "index.html"
    index.write_text(_page("smithing report", body))
    return index
