"""Links between the project's Markdown files lead somewhere (issue 26: BENCHMARKS.md's history
moved to docs/experiments/).

* Every relative link ``[text](path#anchor)`` in the repository's Markdown files names a file
  that exists and, with an anchor, a heading of that file (GitHub's anchor rule: lower case,
  punctuation dropped, spaces to hyphens, ``-1``, ``-2`` for repeats).
* Every citation "BENCHMARKS.md, issue N" in code, configs and docs finds a section of
  BENCHMARKS.md whose heading names "(issue N)".
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SKIP_DIRS = {".git", ".venv", "node_modules", "__pycache__", ".mypy_cache"}
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")


def markdown_files() -> list[Path]:
    return sorted(p for p in ROOT.rglob("*.md") if not SKIP_DIRS & set(p.relative_to(ROOT).parts))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's text."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out: set[str] = set()
    fence = False
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            fence = not fence
            continue
        m = None if fence else re.match(r"#{1,6} (.*)", line)
        if m:
            s = slug(m.group(1))
            n = seen.get(s, 0)
            seen[s] = n + 1
            out.add(s if n == 0 else f"{s}-{n}")
    return out


def links(path: Path) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    fence = False
    for k, line in enumerate(path.read_text().splitlines(), 1):
        if line.startswith("```"):
            fence = not fence
        elif not fence:
            out += [(k, m.group(1)) for m in LINK.finditer(line)]
    return out


def broken_links() -> list[str]:
    bad: list[str] = []
    for md in markdown_files():
        for line, target in links(md):
            if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
                continue
            file_part, _, anchor = target.partition("#")
            dest = (md.parent / file_part).resolve() if file_part else md
            where = f"{md.relative_to(ROOT)}:{line}: {target}"
            if not dest.exists():
                bad.append(f"{where}: no file {file_part}")
            elif anchor and dest.is_file() and anchor not in anchors(dest):
                bad.append(f"{where}: no heading with anchor #{anchor} in {dest.relative_to(ROOT)}")
    return bad


def test_relative_links_resolve():
    bad = broken_links()
    assert not bad, "broken links (fix the path, or the anchor to match the heading):\n  " + "\n  ".join(bad)


def test_the_slug_rule_matches_github():
    assert slug("Simulator (`python -m benchmarks.sim`, `robolearn bench sim`)") == \
        "simulator-python--m-benchmarkssim-robolearn-bench-sim"
    assert slug("Push, third round: longer budgets (2026-12-02/03)") == "push-third-round-longer-budgets-2026-12-0203"


def test_the_link_check_catches_a_broken_link(tmp_path):
    md = tmp_path / "a.md"
    (tmp_path / "b.md").write_text("# Real heading\n")
    md.write_text("[ok](b.md#real-heading) [bad](b.md#nope) [gone](c.md)\n```\n[in a fence](x.md)\n```\n")
    found = links(md)
    assert [t for _, t in found] == ["b.md#real-heading", "b.md#nope", "c.md"]
    assert "real-heading" in anchors(tmp_path / "b.md") and "nope" not in anchors(tmp_path / "b.md")


CITATION = re.compile(r"BENCHMARKS\.md[\"'`]?[,;:]?\s*(?:#\s*)?\(?issue (\d+)")


def test_issue_citations_find_their_section():
    text_files = [p for p in ROOT.rglob("*") if p.is_file() and p.suffix in (".py", ".yaml", ".md", ".c", ".h")
                  and not SKIP_DIRS & set(p.relative_to(ROOT).parts)]
    headings = [line for line in (ROOT / "BENCHMARKS.md").read_text().splitlines() if line.startswith("#")]
    cited: dict[str, list[str]] = {}
    for p in text_files:
        for k, line in enumerate(p.read_text(errors="replace").splitlines(), 1):
            for m in CITATION.finditer(line):
                cited.setdefault(m.group(1), []).append(f"{p.relative_to(ROOT)}:{k}")
    assert "3" in cited, "the citation pattern found nothing: it no longer matches how the code cites"
    missing = {n: where for n, where in cited.items() if not any(f"(issue {n})" in h for h in headings)}
    assert not missing, "cited as 'BENCHMARKS.md, issue N' but BENCHMARKS.md has no heading '(issue N)':\n  " + \
        "\n  ".join(f"issue {n}: {', '.join(w)}" for n, w in missing.items())
