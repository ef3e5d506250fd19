"""The documentation a newcomer reads: README.md stays a quick start, docs/ holds the rest and
builds without a broken link, and no command shown there points at files a user does not have."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from rome import cli

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
PAGES = sorted(DOCS.glob("*.md"))


def test_mkdocs_builds_strict(tmp_path: Path) -> None:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    out = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path / "site")],
                         cwd=REPO, capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "site" / "index.html").is_file()


def test_every_page_is_in_the_nav_and_linked_from_the_readme() -> None:
    nav = yaml.safe_load((REPO / "mkdocs.yml").read_text())["nav"]

    def files(node: object) -> list[str]:
        if isinstance(node, str):
            return [node]
        if isinstance(node, list):
            return [f for item in node for f in files(item)]
        if isinstance(node, dict):
            return [f for value in node.values() for f in files(value)]
        return []

    assert sorted(files(nav)) == [p.name for p in PAGES]
    readme = (REPO / "README.md").read_text()
    for page in PAGES:
        if page.name != "index.md":
            assert f"(docs/{page.name})" in readme, page.name


def test_readme_is_a_quick_start() -> None:
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 150
    assert "./tasks repro" in readme and "./tasks test" in readme  # the two set-up commands


def test_no_page_points_at_files_a_user_does_not_have() -> None:
    for page in [REPO / "README.md", *PAGES]:
        assert "../shared" not in page.read_text(), page.name


def test_every_rome_command_shown_exists() -> None:
    shown = set()
    for page in [REPO / "README.md", *PAGES]:
        for block in re.findall(r"```(?:bash|sh)?\n(.*?)```", page.read_text(), flags=re.S):
            shown |= set(re.findall(r"(?:^|[;&|(]\s*|\$\(\s*)rome ([a-z][a-z_-]*)", block, flags=re.M))
    assert shown, "no rome command found in the docs"
    unknown = sorted(shown - set(cli.STAGE_HELP))
    assert not unknown, f"docs show rome commands that do not exist: {unknown}"
