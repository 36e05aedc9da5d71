"""The doctor's page: one self-contained HTML file (styles inline, figures as data: URIs).

The figures need matplotlib (``pip install 'smithing[report]'``); without it the page keeps
its tables and findings and says which extra draws the figures.
"""

from __future__ import annotations

import base64
import html
import io
import math
from pathlib import Path

from smithing._optional import MissingExtraError

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1150px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
h1,h2{font-weight:600} code{background:#f3f3f3;border-radius:3px;padding:0 .2em}
table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left;font-size:.88em}
th{background:#f0f0f0} img{max-width:100%;border:1px solid #eee}
.finding{border-left:5px solid #999;padding:.4em .8em;margin:.7em 0;background:#fafafa}
.error{border-color:#c62828} .warning{border-color:#ef8f00} .ok{border-color:#2e7d32}
.info{border-color:#1565c0} .sev{font-weight:600;text-transform:uppercase;font-size:.8em}
.muted{color:#666;font-size:.9em} td.bad{color:#b00;font-weight:600}
"""


def _fmt(v, pct=False) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        return f"{100 * v:.1f} %" if pct else f"{v:.3g}"
    return str(v)


def _figure_png(diag) -> str | None:
    """The figure as a base64 PNG, or None without matplotlib."""
    try:
        from smithing.plots import plt as _plt

        plt = _plt()
    except MissingExtraError:
        return None
    names = [r.name for r in diag.layers]
    idx = list(range(len(names)))
    panels = 3 if diag.lr_range is not None and diag.lr_range.lrs else 2
    fig, axes = plt.subplots(1, panels, figsize=(4.6 * panels, 3.4))
    ax = axes[0]
    g = [
        r.grad_norm if r.grad_norm and math.isfinite(r.grad_norm) else math.nan for r in diag.layers
    ]
    ax.bar(idx, g, color="#1565c0")
    ax.set_yscale("log")
    ax.set_xticks(idx, names, rotation=60, fontsize=7)
    ax.set_title("weight-gradient norm per layer", fontsize=10)
    ax = axes[1]
    s = [r.preact_std if r.preact_std is not None else math.nan for r in diag.layers]
    ax.plot(idx, s, "o-", label="pre-activation std")
    a = [r.act_std if r.act_std is not None else math.nan for r in diag.layers]
    ax.plot(idx, a, "s-", label="activation std")
    sat = [r.saturated if r.saturated is not None else r.dead for r in diag.layers]
    if any(v is not None for v in sat):
        ax.plot(
            idx, [math.nan if v is None else v for v in sat], "^-", label="saturated / dead share"
        )
    ax.set_yscale("symlog", linthresh=1e-3)
    ax.set_xticks(idx, names, rotation=60, fontsize=7)
    ax.set_title("forward signal at initialization", fontsize=10)
    ax.legend(fontsize=7)
    if panels == 3:
        ax = axes[2]
        lr = diag.lr_range
        ax.plot(lr.lrs, lr.losses, color="#bbb", lw=0.8, label="loss")
        ax.plot(lr.lrs, lr.smoothed, color="#c62828", label="smoothed")
        if lr.found:
            ax.axvspan(lr.lower, lr.upper, color="#2e7d32", alpha=0.15, label="suggested range")
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_title(f"LR range test ({lr.optimizer})", fontsize=10)
        ax.legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def render(diag, title: str | None = None) -> str:
    """The page's HTML text."""
    e = html.escape
    title = title or f"smithing doctor: {diag.model}"
    parts = [f"<h1>{e(title)}</h1>"]
    parts.append(
        f"<p class='muted'>{len(diag.layers)} layers measured on {diag.n_examples} examples at "
        f"initialization; activation {e(str(diag.activation))}; initializer recommended for it: "
        f"{e(str(diag.recommended_init))}. Thresholds and method: "
        "<code>help(smithing.doctor.diagnose)</code>.</p>"
    )
    parts.append("<h2>Findings and advice</h2>")
    for f in diag.findings:
        study = (
            f" <span class='muted'>(see <code>smithing run {e(f.study)}</code>)</span>"
            if f.study
            else ""
        )
        advice = f"<div><b>Advice:</b> {e(f.advice)}</div>" if f.advice else ""
        layers = f"<div class='muted'>layers: {e(', '.join(f.layers))}</div>" if f.layers else ""
        parts.append(
            f"<div class='finding {e(f.severity)}' data-code='{e(f.code)}'>"
            f"<span class='sev'>{e(f.severity)}</span> <code>{e(f.code)}</code> "
            f"{e(f.message)}{study}{advice}{layers}</div>"
        )
    png = _figure_png(diag)
    parts.append("<h2>Figures</h2>")
    if png:
        parts.append(
            "<img alt='gradient norms, forward signal, LR range' "
            f"src='data:image/png;base64,{png}'>"
        )
    else:
        parts.append(
            "<p class='muted'>the figures need matplotlib: pip install 'smithing[report]'</p>"
        )
    parts.append("<h2>Per layer</h2>")
    cols = (
        "layer", "type", "shape", "weight std", "initializer matched", "pre-act mean",
        "pre-act std", "activation", "act mean", "act std", "saturated", "dead units",
        "grad norm",
    )  # fmt: skip
    rows = []
    for r in diag.layers:
        gbad = r.grad_norm is not None and not math.isfinite(r.grad_norm)
        cells = [
            e(r.name), e(r.kind), e("x".join(map(str, r.shape))), _fmt(r.init.std),
            e(r.init.summary), _fmt(r.preact_mean), _fmt(r.preact_std),
            e(r.activation or ""), _fmt(r.act_mean), _fmt(r.act_std),
            _fmt(r.saturated, pct=True), _fmt(r.dead, pct=True),
        ]  # fmt: skip
        row = "".join(f"<td>{c}</td>" for c in cells)
        row += f"<td class='{'bad' if gbad else ''}'>{_fmt(r.grad_norm)}</td>"
        rows.append(f"<tr>{row}</tr>")
    head = "".join(f"<th>{c}</th>" for c in cols)
    parts.append(f"<table><tr>{head}</tr>{''.join(rows)}</table>")
    parts.append(
        f"<p class='muted'>first / last gradient-norm ratio {_fmt(diag.first_last_ratio)}; "
        f"global gradient norm {_fmt(diag.grad_norm)}. Expected weight std per rule (fan-in, "
        "fan-out): Glorot sqrt(2/(fan_in+fan_out)), He sqrt(2/fan_in), LeCun sqrt(1/fan_in), "
        "torch's nn.Linear default sqrt(1/(3 fan_in)).</p>"
    )
    body = "".join(parts)
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{e(title)}</title>"
        f"<style>{CSS}</style></head><body>{body}</body></html>"
    )


def write_page(diag, path, title: str | None = None) -> str:
    """Write the page of a :class:`~smithing.doctor.Diagnosis` to ``path`` (a file, or a folder
    that gets ``doctor.html``), titled ``title`` (default: the model's class); returns the
    file's path."""
    path = Path(path)
    if path.suffix.lower() not in (".html", ".htm"):
        path = path / "doctor.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(diag, title), encoding="utf-8")
    return str(path)


__all__ = ["render", "write_page"]
