"""report.md and a self-contained report.html (plots embedded as data URIs) from the stages' sections."""

from __future__ import annotations

import base64
import html
import platform
from pathlib import Path

from markdown_it import MarkdownIt

from narch.dataset_builder.corpus import atomic_write_bytes, now_iso
from narch.dataset_builder.provenance import builder_version, git_rev
from narch.hardware.device import cpu_model, logical_cpus
from narch.pipeline.stages import StageResult

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#1d2329;line-height:1.5}
h1{border-bottom:2px solid #2b6cb0}h2{margin-top:2em;border-bottom:1px solid #ccd}
table{border-collapse:collapse;margin:1em 0;font-size:.9em}
th,td{border:1px solid #ccd;padding:.3em .6em;text-align:right}
th{background:#eef2f7}td:first-child,th:first-child{text-align:left}
img{max-width:100%;border:1px solid #dde;margin:.5em 0}code{background:#f3f4f6;padding:0 .2em}
.prov{font-size:.85em;color:#555}
"""


def provenance_markdown(command: str) -> str:
    """Machine, versions, git revision and command, as a markdown list."""
    import torch

    return "\n".join(
        [
            f"- command: `{command}`",
            f"- machine: {platform.node()}, {cpu_model()}, {logical_cpus()} CPUs, "
            + (f"CUDA {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else "no GPU"),
            f"- versions: neural-architect {builder_version()}, torch {torch.__version__}, "
            f"Python {platform.python_version()}",
            f"- git revision: {git_rev()}",
            f"- written: {now_iso()}",
        ]
    )


def tidy_markdown(text: str) -> str:
    """Blank lines around tables and headings, so lists and paragraphs written by other modules render as tables."""
    out: list[str] = []
    for line in text.splitlines():
        starts_block = (
            line.startswith(("|", "#"))
            and out
            and out[-1].strip()
            and not (line.startswith("|") and out[-1].startswith("|"))
        )
        ends_table = out and out[-1].startswith("|") and line.strip() and not line.startswith("|")
        if starts_block or ends_table:
            out.append("")
        out.append(line)
    return "\n".join(out)


def _markdown(results: list[StageResult], title: str, command: str) -> str:
    parts = [f"# {title}\n"]
    for r in results:
        s = r.section
        parts.append(f"## {s.title}\n")
        if s.markdown:
            parts.append(tidy_markdown(s.markdown.strip()) + "\n")
        parts += [tidy_markdown(t.strip()) + "\n" for t in s.tables]
        parts += [f"![{Path(img).stem}]({img})\n" for img in s.images]
        parts.append(f"<sub>stage `{r.name}`: {r.wall_s:.1f} s, finished {r.finished_at}</sub>\n")
    parts.append("## Provenance\n")
    parts.append(provenance_markdown(command) + "\n")
    return "\n".join(parts)


def _data_uri(path: Path) -> str:
    mime = {".png": "image/png", ".svg": "image/svg+xml", ".jpg": "image/jpeg"}.get(path.suffix, "image/png")
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"


def write_report(out: Path, results: list[StageResult], *, title: str, command: str) -> tuple[Path, Path]:
    """Write report.md (images by relative path) and report.html (images embedded); return both paths."""
    text = _markdown(results, title, command)
    md_path, html_path = out / "report.md", out / "report.html"
    atomic_write_bytes(md_path, lambda f: f.write(text.encode()))
    body = MarkdownIt("commonmark", {"html": True}).enable("table").render(text)
    for r in results:
        for img in r.section.images:
            p = out / img
            if p.is_file():
                body = body.replace(f'src="{html.escape(img)}"', f'src="{_data_uri(p)}"')
    page = (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)}</title>"
        f"<style>{CSS}</style></head><body>{body}</body></html>\n"
    )
    atomic_write_bytes(html_path, lambda f: f.write(page.encode()))
    return md_path, html_path
