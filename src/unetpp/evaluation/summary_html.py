"""summary.md as a standalone HTML page, for `snakemake --report` (which previews HTML, not markdown).

Rendered by markdown-it-py (CommonMark plus GitHub's pipe tables), the parser rich and so Snakemake and DVC
already install; raw HTML in the markdown is escaped, not passed through.
"""

from __future__ import annotations

import html

# Scoped to the wrapper, so that the page can also be pulled into the report's landing text
# (workflow/report/workflow.rst) without restyling the report around it.
WRAPPER = "unetpp-summary"
STYLE = f"""
.{WRAPPER} {{ font-family: system-ui, sans-serif; font-size: 13px; color: #222; overflow-x: auto; }}
.{WRAPPER} table {{ border-collapse: collapse; margin: 0.8em 0; }}
.{WRAPPER} th, .{WRAPPER} td {{ border: 1px solid #ccc; padding: 3px 8px; }}
.{WRAPPER} th {{ background: #f2f2f2; }}
.{WRAPPER} td[style*="right"] {{ font-variant-numeric: tabular-nums; }}
.{WRAPPER} code {{ font-size: 90%; background: #f4f4f4; padding: 0 2px; }}
.{WRAPPER} code::before, .{WRAPPER} code::after {{ content: none; }}
"""


def markdown_to_html(markdown: str, title: str) -> str:
    """A whole HTML5 document of `markdown` (as `unetpp aggregate` writes it).

    No html/head/body tags (HTML5 leaves them optional), so the same file is also a clean fragment where the
    report's landing text includes it.
    """
    from markdown_it import MarkdownIt  # imported here: only aggregate renders HTML

    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(markdown)
    return (
        f'<!DOCTYPE html>\n<meta charset="utf-8">\n<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n'
        f'<div class="{WRAPPER}">\n{body}</div>\n'
    )
