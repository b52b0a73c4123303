"""The documentation's links resolve, and the README's test command is the one CI runs.

Every relative link in README.md and docs/*.md must name a file or folder of the repository, and every
`#anchor` (in the same page or another) must be the GitHub slug of one of the target page's headings. Links
inside code (fenced blocks, `inline code`) are not links and are skipped; http(s) and mailto links are not
fetched (no network). The README's "The two commands" section must show, as a block of its own, exactly the
command `.ci/run` ends with, and pin the same torch version in every command it shows.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
TWO_COMMANDS = "The two commands"

FENCE = re.compile(r"^(```|~~~)")
INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1")
# [text](target) or ![alt](target), the target without spaces, an optional "title" after it.
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
HTML_ANCHOR = re.compile(r"<a\s+(?:name|id)=\"([^\"]+)\"")


def prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) of the lines outside fenced code blocks."""
    lines, fenced = [], False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line.lstrip()):
            fenced = not fenced
            continue
        if not fenced:
            lines.append((number, line))
    return lines


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: markup dropped, lower case, punctuation removed, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = text.replace("`", "").replace("*", "")
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)  # GitHub keeps letters, digits, _, - and spaces
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every anchor a page offers: its headings' slugs (repeats numbered -1, -2, ...) and HTML anchors."""
    seen: dict[str, int] = {}
    found = set()
    for _, line in prose_lines(page.read_text(encoding="utf-8")):
        found.update(HTML_ANCHOR.findall(line))
        match = HEADING.match(line)
        if not match:
            continue
        slug = github_slug(match.group(2))
        found.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
        seen[slug] = seen.get(slug, 0) + 1
    return found


def links(page: Path) -> list[tuple[int, str]]:
    """(line number, target) of every Markdown link outside code."""
    found = []
    for number, line in prose_lines(page.read_text(encoding="utf-8")):
        for target in LINK.findall(INLINE_CODE.sub("", line)):
            found.append((number, target))
    return found


def test_pages_exist():
    assert (ROOT / "README.md") in PAGES and len(PAGES) > 1, "docs/*.md is missing"
    assert (ROOT / "docs" / "index.md").exists(), "docs/index.md, the list of pages, is missing"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_and_anchors_resolve(page: Path):
    broken = []
    for number, target in links(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto:, ...: not checked here
            continue
        path_part, _, anchor = target.partition("#")
        resolved = (page.parent / path_part).resolve() if path_part else page
        where = f"{page.relative_to(ROOT)}:{number}: {target}"
        if not resolved.exists():
            broken.append(f"{where}: no such file or folder")
            continue
        if not resolved.is_relative_to(ROOT):
            broken.append(f"{where}: points outside the repository")
            continue
        if anchor:
            if resolved.suffix != ".md":
                broken.append(f"{where}: an anchor into a file that is not Markdown")
            elif anchor not in anchors(resolved):
                broken.append(f"{where}: no heading with anchor #{anchor} in {resolved.relative_to(ROOT)}")
    assert not broken, "broken links:\n" + "\n".join(broken)


def two_commands_blocks() -> list[str]:
    """The fenced code blocks of the README's "The two commands" section, each as its text."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = re.search(rf"^## {re.escape(TWO_COMMANDS)}\s*$(.*?)(?=^## )", text, re.M | re.S)
    assert section, f'README.md has no "## {TWO_COMMANDS}" section followed by another "## " section'
    return [block.strip() for block in re.findall(r"^```[a-z]*\n(.*?)^```", section.group(1), re.M | re.S)]


def ci_command() -> str:
    """The last line of .ci/run: the README's test command, verbatim."""
    lines = [line for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines() if line.strip()]
    return lines[-1].strip()


def test_readme_test_command_is_what_ci_runs():
    command = ci_command()
    assert "pytest" in command, f".ci/run no longer ends with the test command: {command!r}"
    assert command in two_commands_blocks(), (
        f'The README\'s "{TWO_COMMANDS}" section must show .ci/run\'s command as a block of its own:\n{command}'
    )


def test_readme_commands_pin_the_torch_ci_installs():
    torch_pin = re.search(r"torch==[\w.+]+", ci_command())
    assert torch_pin, ".ci/run installs no pinned torch"
    blocks = two_commands_blocks()
    assert len([b for b in blocks if "snakemake" in b and "pip install" in b]) == 1, "no main command found"
    for block in blocks:
        for pin in re.findall(r"torch==[\w.+]+", block):
            assert pin == torch_pin.group(0), f"README pins {pin}, .ci/run {torch_pin.group(0)}"


def test_github_slug():
    assert github_slug("UNet++ against U-Net, image by image") == "unet-against-u-net-image-by-image"
    assert github_slug("Snakemake: parallel jobs, one GPU per training") == "snakemake-parallel-jobs-one-gpu-per-training"
    assert github_slug("`predict-images` on new images") == "predict-images-on-new-images"
    assert github_slug("[Link](x.md) and **bold**") == "link-and-bold"
