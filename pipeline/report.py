"""report.md and a self-contained report.html (plots embedded as data URIs), rendered from the stages' typed
sections; the provenance is the one record of ``narch.core.provenance``."""

from __future__ import annotations

import base64
import html
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from markdown_it import MarkdownIt

from narch.core.files import atomic_write_json, atomic_write_text
from narch.core.provenance import PROVENANCE_KEYS, provenance, provenance_markdown
from narch.core.tables import markdown_table
from narch.pipeline.labels import headers
from narch.pipeline.sections import Block, Figure, Heading, Section, Table, Text
from narch.pipeline.stages import StageRecord

CSS = r"""
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#1d2329;line-height:1.5;overflow-wrap:break-word}
h1{border-bottom:2px solid #2b6cb0}h2{margin-top:2em;border-bottom:1px solid #ccd}
.summary{background:#f5f8fc;border:1px solid #ccd;border-radius:6px;padding:0 1.2em .6em;margin:1em 0}
.summary h2,.toc h2{margin-top:.6em}.toc ul{margin:.2em 0}.toc>ul{columns:2 22em}.toc>ul>li{break-inside:avoid}
.table-wrap{max-width:100%;overflow-x:auto;margin:1em 0}
table{border-collapse:collapse;font-size:.82em}
th,td{border:1px solid #ccd;padding:.25em .45em;text-align:left}td[data-v]{text-align:right;white-space:nowrap}
th{background:#eef2f7;vertical-align:bottom;cursor:pointer;user-select:none;font-weight:600;
text-decoration:underline dotted #99a;text-underline-offset:3px}
th[aria-sort=ascending]::after{content:" \25B2"}th[aria-sort=descending]::after{content:" \25BC"}
img{max-width:100%;height:auto;border:1px solid #dde;margin:.5em 0}
code{background:#f3f4f6;padding:0 .2em;overflow-wrap:anywhere}
"""

# Click (or Enter on) a header to sort its table: numbers as numbers (a cell's data-v, else a leading number such as
# "0.81 ± 0.02"), text as text, blanks ("–") last either way. Inline, no network.
SORT_JS = r"""
(function(){
var NUM=/^[-+\u2212]?\d[\d,]*(\.\d+)?(e[-+]?\d+)?(?=\s|%|$)/i;
function key(td){var v=td.getAttribute("data-v");if(v!==null)return parseFloat(v);
var t=td.textContent.trim();if(t===""||t==="\u2013")return null;var m=t.match(NUM);
return m?parseFloat(m[0].replace(/,/g,"").replace("\u2212","-")):t.toLowerCase();}
function cmp(a,b){if(a===null||b===null)return 0;if(typeof a==="number"&&typeof b==="number")return a-b;
if(typeof a==="number")return -1;if(typeof b==="number")return 1;return a<b?-1:a>b?1:0;}
document.querySelectorAll("table.sortable").forEach(function(table){
var ths=table.tHead.rows[0].cells;
Array.prototype.forEach.call(ths,function(th,i){th.tabIndex=0;th.title="sort";
function go(){var asc=th.getAttribute("aria-sort")!=="ascending";
Array.prototype.forEach.call(ths,function(h){h.removeAttribute("aria-sort");});
th.setAttribute("aria-sort",asc?"ascending":"descending");var body=table.tBodies[0];
var rows=Array.prototype.map.call(body.rows,function(r,k){return {r:r,k:key(r.cells[i]),n:k};});
rows.sort(function(x,y){if(x.k===null||y.k===null)return (x.k===null)-(y.k===null)||x.n-y.n;
return (asc?cmp(x.k,y.k):cmp(y.k,x.k))||x.n-y.n;});
rows.forEach(function(x){body.appendChild(x.r);});}
th.addEventListener("click",go);
th.addEventListener("keydown",function(e){if(e.key==="Enter"||e.key===" "){e.preventDefault();go();}});});});
})();
"""


def run_provenance(command: str | None = None) -> dict[str, Any]:
    """The run's provenance record, with the CUDA device it could use (None without one)."""
    import torch

    return provenance(command, cuda_device=torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)


def provenance_block(prov: dict[str, Any]) -> str:
    """The record as a markdown list: the core's keys, then the extra ones."""
    extra = "".join(f"- {k}: `{v}`\n" for k, v in prov.items() if k not in PROVENANCE_KEYS and v is not None)
    return provenance_markdown(prov) + extra


def slug(text: str) -> str:
    """A heading's anchor as GitHub makes it: lower case, punctuation dropped (letters, digits, _ and - kept),
    spaces as hyphens; so report.md's table of contents also works where GitHub renders it."""
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


class Anchors:
    """Unique anchors in the order the headings appear (a repeated heading gets -1, -2, ... as on GitHub)."""

    def __init__(self) -> None:
        self._count: dict[str, int] = {}
        self._used: set[str] = set()

    def __call__(self, text: str) -> str:
        base = slug(text) or "section"
        k = self._count.get(base, 0)
        anchor = base if k == 0 else f"{base}-{k}"
        while anchor in self._used:
            k += 1
            anchor = f"{base}-{k}"
        self._count[base] = k + 1
        self._used.add(anchor)
        return anchor


def _figure_path(path: Path, root: Path) -> Path:
    return path if path.is_absolute() else root / path


def cell_text(value: Any, floats: int | None) -> str:
    """A table cell as shown: floats to ``floats`` significant digits, missing values (None, NaN) as "–"."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 1000:
        return f"{value:,}"
    if floats is not None and isinstance(value, float):
        if math.isfinite(value) and 1e3 <= abs(value) < 1e15:  # 21,070 rather than 2.107e+04
            return f"{round(value, floats - 1 - math.floor(math.log10(abs(value)))):,.0f}"
        return f"{value:.{floats}g}"
    return str(value)


@dataclass(frozen=True)
class _Shown:
    """A table as shown: human headers and formatted cells (what ``markdown_table`` takes)."""

    columns: list[str]
    rows: list[list[str]]

    def iter_rows(self) -> list[list[str]]:
        return self.rows


def _table_markdown(t: Table) -> str:
    esc = lambda s: s.replace("|", "\\|")  # noqa: E731
    rows = [[esc(cell_text(v, t.floats)) for v in row] for row in t.frame.iter_rows()]
    return markdown_table(_Shown([esc(h) for h in headers(t.frame.columns)], rows), floats=None)


def _sort_value(value: Any) -> str:
    """A numeric cell's exact value for the sorting script ("" for text and missing values)."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return f' data-v="{value!r}"'
    return ""


def table_html(t: Table) -> str:
    """A sortable table inside a wrapper that scrolls sideways when the table is wider than the page."""
    head = "".join(f'<th scope="col">{html.escape(h)}</th>' for h in headers(t.frame.columns))
    body = "".join("<tr>" + "".join(f"<td{_sort_value(v)}>{html.escape(cell_text(v, t.floats))}</td>" for v in row)
                   + "</tr>" for row in t.frame.iter_rows())
    return (f'<div class="table-wrap" role="region" aria-label="table" tabindex="0"><table class="sortable">'
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>")


def _block_markdown(block: Block, root: Path) -> str:
    match block:
        case Text(text):
            return text
        case Heading(text):
            return f"### {text}"
        case Table():
            return _table_markdown(block)
        case Figure(path):
            p = _figure_path(path, root)
            rel = p.relative_to(root) if p.is_relative_to(root) else p
            return f"![{p.stem}]({rel.as_posix()})"
    raise TypeError(f"unknown report block {block!r}")


def _footer(rec: StageRecord) -> str:
    return f"<sub>stage `{rec.name}`: {rec.wall_s:.1f} s, finished {rec.finished_at}</sub>"


def _sections(records: list[StageRecord], root: Path) -> list[tuple[Section, StageRecord]]:
    """Each stage's section, without figures whose file is gone (a resumed run whose plot was deleted)."""
    out = []
    for rec in records:
        s = rec.output.section()
        blocks = [b for b in s.blocks if not isinstance(b, Figure) or _figure_path(b.path, root).is_file()]
        out.append((Section(s.title, blocks, list(s.summary)), rec))
    return out


@dataclass(frozen=True)
class _Part:
    """A section with its anchor and the anchors of its sub-headings (by block index)."""

    section: Section
    record: StageRecord
    anchor: str
    headings: dict[int, str]


@dataclass(frozen=True)
class Outline:
    """The report's parts in order with their anchors: the summary, the contents, the stages, the provenance."""

    parts: list[_Part]
    summary: list[str]
    provenance: str  # the provenance heading's anchor

    def toc(self) -> list[tuple[int, str, str]]:
        """(level, title, anchor) of every entry of the table of contents."""
        out = []
        for p in self.parts:
            out.append((2, p.section.title, p.anchor))
            out += [(3, p.section.blocks[i].text, a) for i, a in p.headings.items()]  # type: ignore[union-attr]
        return [*out, (2, "Provenance", self.provenance)]


NO_FINDINGS = "No stage reported findings."


def outline(records: list[StageRecord], root: Path) -> Outline:
    """The parts of the report and their anchors; the summary collects every section's findings in stage order."""
    anchors = Anchors()
    anchors("Summary")
    anchors("Contents")
    parts = []
    for section, rec in _sections(records, root):
        a = anchors(section.title)
        hs = {i: anchors(b.text) for i, b in enumerate(section.blocks) if isinstance(b, Heading)}
        parts.append(_Part(section, rec, a, hs))
    summary = [line for p in parts for line in p.section.summary] or [NO_FINDINGS]
    return Outline(parts, summary, anchors("Provenance"))


def _link_text(text: str) -> str:
    return re.sub(r"([\\\[\]])", r"\\\1", text)


def toc_markdown(o: Outline) -> str:
    """The table of contents as a nested markdown list of links to the headings' anchors."""
    return "\n".join(f"{'  ' * (level - 2)}- [{_link_text(title)}](#{anchor})" for level, title, anchor in o.toc())


def render_markdown(records: list[StageRecord], *, title: str, prov: dict[str, Any], root: Path) -> str:
    """report.md: the summary of findings, the contents, a section per stage (images by path relative to
    ``root``), then the provenance."""
    o = outline(records, root)
    parts = [f"# {title}", "## Summary", "\n".join(f"- {line}" for line in o.summary), "## Contents", toc_markdown(o)]
    for p in o.parts:
        parts += [f"## {p.section.title}", *(_block_markdown(b, root) for b in p.section.blocks), _footer(p.record)]
    parts += ["## Provenance", provenance_block(prov)]
    return "\n\n".join(parts) + "\n"


def _data_uri(path: Path) -> str:
    mime = {".png": "image/png", ".svg": "image/svg+xml", ".jpg": "image/jpeg"}.get(path.suffix, "image/png")
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"


def _toc_html(o: Outline) -> str:
    """The table of contents as a nested HTML list."""
    out, open_sub = ["<ul>"], False
    for level, title, anchor in o.toc():
        link = f'<a href="#{anchor}">{html.escape(title)}</a>'
        if level == 2:
            if open_sub:
                out.append("</ul>")
                open_sub = False
            if len(out) > 1:
                out.append("</li>")
            out.append(f"<li>{link}")
        else:
            if not open_sub:
                out.append("<ul>")
                open_sub = True
            out.append(f"<li>{link}</li>")
    out += ["</ul>" if open_sub else "", "</li></ul>"]
    return "".join(out)


def render_html(records: list[StageRecord], *, title: str, prov: dict[str, Any], root: Path) -> str:
    """report.html: the same parts, each figure embedded as a data URI (one file to send around), tables sortable
    and scrolling inside the page."""
    md = MarkdownIt("commonmark", {"html": True}).enable("table")
    o = outline(records, root)
    summary = "".join(f"<li>{md.renderInline(line)}</li>" for line in o.summary)
    body = [f"<h1>{html.escape(title)}</h1>",
            f'<section class="summary"><h2 id="summary">Summary</h2><ul>{summary}</ul></section>',
            f'<nav class="toc" aria-label="Contents"><h2 id="contents">Contents</h2>{_toc_html(o)}</nav>']
    for p in o.parts:
        body.append(f'<h2 id="{p.anchor}">{html.escape(p.section.title)}</h2>')
        for i, b in enumerate(p.section.blocks):
            if isinstance(b, Figure):
                f = _figure_path(b.path, root)
                body.append(f'<p><img alt="{html.escape(f.stem)}" src="{_data_uri(f)}"></p>')
            elif isinstance(b, Heading):
                body.append(f'<h3 id="{p.headings[i]}">{md.renderInline(b.text)}</h3>')
            elif isinstance(b, Table):
                body.append(table_html(b))
            else:
                body.append(md.render(_block_markdown(b, root)))
        body.append(md.render(_footer(p.record)))
    body += [f'<h2 id="{o.provenance}">Provenance</h2>', md.render(provenance_block(prov))]
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8>"
            f'<meta name="viewport" content="width=device-width,initial-scale=1"><title>{html.escape(title)}</title>'
            f"<style>{CSS}</style></head><body>{''.join(body)}<script>{SORT_JS}</script></body></html>\n")


def write_report(out: Path, records: list[StageRecord], *, title: str, command: str | None = None
                 ) -> tuple[Path, Path]:
    """Write report.md, report.html and the run's provenance.json into ``out``; return the two reports' paths."""
    prov = run_provenance(command)
    md_path, html_path = out / "report.md", out / "report.html"
    atomic_write_text(md_path, render_markdown(records, title=title, prov=prov, root=out))
    atomic_write_text(html_path, render_html(records, title=title, prov=prov, root=out))
    atomic_write_json(out / "provenance.json", prov, sort_keys=False)
    return md_path, html_path
