"""summary.md as a standalone HTML page, for `snakemake --report` (which previews HTML, not markdown).

Renders the markdown `unetpp aggregate` itself writes, and only that: `#`/`##` headings, pipe tables with
a `:---`/`---:` alignment row, `- ` bullets (continued by indented lines), paragraphs, and inline `**bold**`
and `` `code` ``; every other character is escaped, so no markdown library is needed.
"""

from __future__ import annotations

import html
import re

INLINE = re.compile(r"\*\*(?P<bold>.+?)\*\*|`(?P<code>[^`]+)`")
STYLE = """
body { font-family: system-ui, sans-serif; font-size: 14px; margin: 1em; color: #222; }
table { border-collapse: collapse; margin: 0.8em 0; }
th, td { border: 1px solid #ccc; padding: 3px 8px; }
th { background: #f2f2f2; }
td.r, th.r { text-align: right; font-variant-numeric: tabular-nums; }
code { font-size: 90%; background: #f4f4f4; padding: 0 2px; }
"""


def inline(text: str) -> str:
    """Escape `text` and turn `**bold**` and `` `code` `` into tags."""
    out, position = [], 0
    for match in INLINE.finditer(text):
        out.append(html.escape(text[position : match.start()]))
        if match.group("bold") is not None:
            out.append(f"<strong>{inline(match.group('bold'))}</strong>")
        else:
            out.append(f"<code>{html.escape(match.group('code'))}</code>")
        position = match.end()
    out.append(html.escape(text[position:]))
    return "".join(out)


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def _table(lines: list[str]) -> str:
    header, alignment, *rows = lines
    right = [cell.endswith(":") and not cell.startswith(":") for cell in _cells(alignment)]

    def row(cells: list[str], tag: str) -> str:
        opening = [f'<{tag} class="r">' if r else f"<{tag}>" for r in right]
        return "<tr>" + "".join(f"{opening[k]}{inline(cell)}</{tag}>" for k, cell in enumerate(cells)) + "</tr>"

    body = "\n".join(row(_cells(line), "td") for line in rows)
    return f"<table>\n<thead>{row(_cells(header), 'th')}</thead>\n<tbody>\n{body}\n</tbody>\n</table>"


def markdown_to_html(markdown: str, title: str) -> str:
    """A whole HTML document of `markdown` (as `unetpp aggregate` writes it)."""
    blocks: list[str] = []
    lines = markdown.splitlines()
    k = 0
    while k < len(lines):
        line = lines[k]
        if not line.strip():
            k += 1
        elif line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            blocks.append(f"<h{level}>{inline(line[level:].strip())}</h{level}>")
            k += 1
        elif line.startswith("|"):
            end = k
            while end < len(lines) and lines[end].startswith("|"):
                end += 1
            blocks.append(_table(lines[k:end]))
            k = end
        elif line.startswith("- "):
            items: list[str] = []
            while k < len(lines) and (lines[k].startswith("- ") or (items and lines[k].startswith("  "))):
                if lines[k].startswith("- "):
                    items.append(lines[k][2:].strip())
                else:
                    items[-1] += " " + lines[k].strip()
                k += 1
            blocks.append("<ul>\n" + "\n".join(f"<li>{inline(item)}</li>" for item in items) + "\n</ul>")
        else:
            paragraph = []
            while k < len(lines) and lines[k].strip() and not lines[k].startswith(("#", "|", "- ")):
                paragraph.append(lines[k].strip())
                k += 1
            blocks.append(f"<p>{inline(' '.join(paragraph))}</p>")
    body = "\n".join(blocks)
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{html.escape(title)}</title>\n'
        f"<style>{STYLE}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )
