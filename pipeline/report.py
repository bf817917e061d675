"""report.md and a self-contained report.html (plots embedded as data URIs), rendered from the stages' typed
sections; the provenance is the one record of ``narch.core.provenance``."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

from markdown_it import MarkdownIt

from narch.core.files import atomic_write_json, atomic_write_text
from narch.core.provenance import PROVENANCE_KEYS, provenance, provenance_markdown
from narch.core.tables import markdown_table
from narch.pipeline.sections import Block, Figure, Heading, Section, Table, Text
from narch.pipeline.stages import StageRecord

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#1d2329;line-height:1.5}
h1{border-bottom:2px solid #2b6cb0}h2{margin-top:2em;border-bottom:1px solid #ccd}
table{border-collapse:collapse;margin:1em 0;font-size:.9em}
th,td{border:1px solid #ccd;padding:.3em .6em;text-align:right}
th{background:#eef2f7}td:first-child,th:first-child{text-align:left}
img{max-width:100%;border:1px solid #dde;margin:.5em 0}code{background:#f3f4f6;padding:0 .2em}
"""


def run_provenance(command: str | None = None) -> dict[str, Any]:
    """The run's provenance record, with the CUDA device it could use (None without one)."""
    import torch

    return provenance(command, cuda_device=torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)


def provenance_block(prov: dict[str, Any]) -> str:
    """The record as a markdown list: the core's keys, then the extra ones."""
    extra = "".join(f"- {k}: `{v}`\n" for k, v in prov.items() if k not in PROVENANCE_KEYS and v is not None)
    return provenance_markdown(prov) + extra


def _figure_path(path: Path, root: Path) -> Path:
    return path if path.is_absolute() else root / path


def _block_markdown(block: Block, root: Path) -> str:
    match block:
        case Text(text):
            return text
        case Heading(text):
            return f"### {text}"
        case Table(frame, floats):
            return markdown_table(frame, floats=floats)
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
        out.append((Section(s.title, blocks), rec))
    return out


def render_markdown(records: list[StageRecord], *, title: str, prov: dict[str, Any], root: Path) -> str:
    """report.md: a section per stage (images by path relative to ``root``), then the provenance."""
    parts = [f"# {title}"]
    for section, rec in _sections(records, root):
        parts += [f"## {section.title}", *(_block_markdown(b, root) for b in section.blocks), _footer(rec)]
    parts += ["## Provenance", provenance_block(prov)]
    return "\n\n".join(parts) + "\n"


def _data_uri(path: Path) -> str:
    mime = {".png": "image/png", ".svg": "image/svg+xml", ".jpg": "image/jpeg"}.get(path.suffix, "image/png")
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"


def render_html(records: list[StageRecord], *, title: str, prov: dict[str, Any], root: Path) -> str:
    """report.html: the same blocks, each figure embedded as a data URI (one file to send around)."""
    md = MarkdownIt("commonmark", {"html": True}).enable("table")
    body = [f"<h1>{html.escape(title)}</h1>"]
    for section, rec in _sections(records, root):
        body.append(f"<h2>{html.escape(section.title)}</h2>")
        for b in section.blocks:
            if isinstance(b, Figure):
                p = _figure_path(b.path, root)
                body.append(f'<p><img alt="{html.escape(p.stem)}" src="{_data_uri(p)}"></p>')
            else:
                body.append(md.render(_block_markdown(b, root)))
        body.append(md.render(_footer(rec)))
    body += ["<h2>Provenance</h2>", md.render(provenance_block(prov))]
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)}</title>"
            f"<style>{CSS}</style></head><body>{''.join(body)}</body></html>\n")


def write_report(out: Path, records: list[StageRecord], *, title: str, command: str | None = None
                 ) -> tuple[Path, Path]:
    """Write report.md, report.html and the run's provenance.json into ``out``; return the two reports' paths."""
    prov = run_provenance(command)
    md_path, html_path = out / "report.md", out / "report.html"
    atomic_write_text(md_path, render_markdown(records, title=title, prov=prov, root=out))
    atomic_write_text(html_path, render_html(records, title=title, prov=prov, root=out))
    atomic_write_json(out / "provenance.json", prov, sort_keys=False)
    return md_path, html_path
