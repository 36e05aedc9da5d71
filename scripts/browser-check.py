#!/usr/bin/env python3
"""Open the report and doctor pages in headless Chromium; fail on anything broken.

    python scripts/browser-check.py [--report DIR] [--only STUDY ...] [--out DIR]

Without ``--report`` it first writes a report of its own: ``smithing tour --seeds 1`` (every
tour study at quick scale, one seed; ``--only`` narrows it) into ``OUT/tour``. It also writes two
doctor pages (a deep sigmoid net with N(0, 1e-2) weights, and a He-initialized ReLU net) into
``OUT/doctor-*``. Then it opens the report's index, every page the index links to, and the
doctor pages in headless Chromium (Debian's ``chromium``, driven by Playwright without
downloading a browser of its own), and fails when a page does not load, an image is missing
or broken, the page logs a console error or throws, or a report page shows a Python traceback
(``.err``). Full-page screenshots go to ``OUT/screenshots/``. Exit code 0 when every page is
clean, 1 otherwise, with one line per problem.

``--site DIR`` also checks the built documentation site (``make docs`` writes ``site/``): every
page, and that its formulas render. The site's formulas are MathML written at build time
(``scripts/docs_hooks.py``); Chromium lays MathML out natively, so a formula that rendered has
a box of non-zero size, and one left as TeX source (``.arithmatex``, a formula the build did
not convert) or laid out empty is a problem. Every request off the machine is blocked: the
site must show everything offline.

Needs: ``apt-get install chromium`` and ``pip install playwright`` (``make browser-check``
installs Playwright into the venv).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

NETS = textwrap.dedent(
    """
    import torch
    from torch import nn


    def _net(act, depth, init):
        g = torch.Generator().manual_seed(0)
        layers, n = [], 64
        for _ in range(depth):
            layers += [nn.Linear(n, 100), act()]
            n = 100
        net = nn.Sequential(*layers, nn.Linear(n, 10))
        for m in net:
            if isinstance(m, nn.Linear):
                init(m.weight, g)
                nn.init.zeros_(m.bias)
        return net


    def sick():
        return _net(nn.Sigmoid, 10, lambda w, g: nn.init.normal_(w, 0.0, 1e-2, generator=g))


    def healthy():
        return _net(nn.ReLU, 4, lambda w, g: nn.init.kaiming_normal_(w, generator=g))
    """
)

# images that did not load, or loaded as nothing
BROKEN_IMAGES = """() => Array.from(document.images)
    .filter(i => !i.complete || i.naturalWidth === 0)
    .map(i => i.getAttribute('src').slice(0, 80))"""
LOCAL_LINKS = """() => Array.from(document.querySelectorAll('a[href]'))
    .map(a => a.href).filter(h => h.startsWith('file:') && h.split('#')[0].endsWith('.html'))"""


def _smithing(*args: str, cwd: Path | None = None, env: dict | None = None) -> None:
    cmd = [sys.executable, "-m", "smithing", *args]
    print("+", " ".join(cmd[2:]), flush=True)
    subprocess.run(cmd, check=True, cwd=cwd, env=env)


def build_pages(out: Path, only: list[str] | None) -> tuple[Path, list[Path]]:
    tour = out / "tour"
    args = ["tour", "--seeds", "1", "--out", str(tour), "--quiet", "--threads", "1"]
    _smithing(*args, *(["--only", *only] if only else []))
    (out / "browsercheck_nets.py").write_text(NETS)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(out), os.environ.get("PYTHONPATH", "")]),
    }
    doctors = []
    for name in ("sick", "healthy"):
        _smithing(
            "doctor", f"browsercheck_nets:{name}", "--out", str(out / f"doctor-{name}"), env=env
        )
        doctors.append(out / f"doctor-{name}" / "doctor.html")
    return tour / "report", doctors


#: per page: MathML formulas, how many laid out with an empty box, TeX left unconverted
FORMULAS = """() => {
  const maths = [...document.querySelectorAll('math')];
  const empty = maths.filter(m => { const r = m.getBoundingClientRect();
                                    return r.width < 1 || r.height < 1; });
  return [maths.length, empty.length, document.querySelectorAll('.arithmatex').length];
}"""


def check_pages(
    index: Path | None,
    extra: list[Path],
    shots: Path,
    chromium: str,
) -> list[str]:
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError:
        sys.exit(
            "browser-check needs playwright: pip install playwright (it drives the "
            "system chromium: apt-get install chromium)"
        )
    problems: list[str] = []
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        log: list[str] = []
        page.on(
            "console",
            lambda m: (
                log.append(f"console {m.type}: {m.text}")
                if m.type == "error" and "ERR_BLOCKED_BY_CLIENT" not in m.text  # our own blocking
                else None
            ),
        )
        page.on("pageerror", lambda e: log.append(f"uncaught exception: {e}"))
        page.on(
            "requestfailed",
            lambda r: (
                None
                if r.url.startswith("http")
                else log.append(f"failed to load {r.url[:100]}: {r.failure}")
            ),
        )

        def offline(route):  # nothing leaves the machine
            blocked.append(route.request.url)
            route.abort("blockedbyclient")

        blocked: list[str] = []
        page.route(re.compile(r"^https?://"), offline)
        start = [index.resolve().as_uri()] if index is not None else []
        todo, seen = [*start, *(p.resolve().as_uri() for p in extra)], set()
        while todo:
            url = todo.pop(0)
            if url in seen:
                continue
            seen.add(url)
            log.clear()
            name = url.rsplit("/", 2)[-2] + "-" + url.rsplit("/", 1)[-1].removesuffix(".html")
            try:
                page.goto(url, wait_until="load", timeout=30_000)
            except PlaywrightError as e:
                problems.append(f"{url}: did not load ({str(e).splitlines()[0]})")
                continue
            broken = page.evaluate(BROKEN_IMAGES)
            n_images = page.evaluate("() => document.images.length")
            tracebacks = page.locator(".err").count()
            formulas, empty, raw_tex = page.evaluate(FORMULAS)
            if empty:
                log.append(f"{empty} of {formulas} formulas laid out with an empty box")
            if raw_tex:
                log.append(f"{raw_tex} formula(s) left as TeX source (not converted to MathML)")
            page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
            problems += [f"{url}: missing or broken image {src}" for src in broken]
            problems += [f"{url}: {line}" for line in log]
            if tracebacks:
                problems.append(f"{url}: {tracebacks} error block(s) (a Python traceback)")
            if not page.title():
                problems.append(f"{url}: no title")
            print(
                f"{'ok  ' if not (broken or log or tracebacks) else 'FAIL'} {name}: "
                f"{n_images} images" + (f", {formulas} formulas" if formulas else ""),
                flush=True,
            )
            if (
                index is not None and url == index.resolve().as_uri()
            ):  # the index links to every study page
                todo += [h.split("#")[0] for h in page.evaluate(LOCAL_LINKS)]
        browser.close()
    if blocked:
        print(f"({len(set(blocked))} request(s) off the machine blocked, e.g. {blocked[0][:80]})")
    return problems


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="browser-check", help="where pages and screenshots go")
    p.add_argument("--report", default=None, help="an existing report folder (with index.html)")
    p.add_argument("--only", nargs="+", default=None, metavar="STUDY", help="tour studies")
    p.add_argument("--doctor", nargs="*", default=None, help="existing doctor pages to check")
    p.add_argument("--site", default=None, help="also check the docs site built in this folder")
    p.add_argument("--no-report", action="store_true", help="only --site and --doctor pages")
    p.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if not Path(args.chromium).exists():
        sys.exit(f"browser-check: no chromium at {args.chromium}: apt-get install chromium")
    index, doctors = None, [Path(d) for d in args.doctor or []]
    if not args.no_report:
        if args.report is None:
            report, doctors = build_pages(out, args.only)
        else:
            report = Path(args.report)
        index = report / "index.html"
        if not index.exists():
            sys.exit(f"browser-check: {index} does not exist")
    pages = list(doctors)
    if args.site is not None:
        site = Path(args.site)
        if not (site / "index.html").exists():
            sys.exit(f"browser-check: {site / 'index.html'} does not exist: make docs first")
        pages += sorted(p for p in site.rglob("*.html") if p.name != "404.html")
    problems = check_pages(index, pages, out / "screenshots", args.chromium)
    for line in problems:
        print(line)
    print(f"{len(problems)} problem(s); screenshots in {out / 'screenshots'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
