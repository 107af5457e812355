"""What the images are built from: the query API's wheel carries the vendored chart library, its
Dockerfile vendors it (npm, the pinned version of scripts/vendor_assets.sh) before the wheel, and
.dockerignore keeps the local state out of the build context but not what the Dockerfiles COPY."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

from tests.chart.conftest import REPO
from tests.chart.test_images import DOCKERFILES, instructions

QUERY_API = REPO / "services" / "query_api"
VENDOR_SCRIPT = QUERY_API / "scripts" / "vendor_assets.sh"
VENDOR_DIR = "finlake_query_api/static/vendor/"
CHART_LIBRARY = VENDOR_DIR + "lightweight-charts.standalone.production.js"


def uv() -> str:
    """uv as the Makefile finds it: $UV (`uv run` sets it), the PATH, or the Makefile's copy."""
    found = (
        os.environ.get("UV")
        or shutil.which("uv")
        or str(Path.home() / ".cache" / "finlake" / "uv" / "bin" / "uv")
    )
    assert Path(found).is_file(), "uv not found: run `make install`"
    return found


def test_query_api_wheel_carries_the_vendored_chart_library(tmp_path: Path) -> None:
    # As `make dashboard-assets`; the folder is gitignored, which alone keeps it out of the wheel.
    subprocess.run([VENDOR_SCRIPT], check=True, timeout=300)
    assert (QUERY_API / CHART_LIBRARY).is_file()
    subprocess.run(
        [uv(), "build", "--wheel", "--package", "finlake-query-api", "-o", tmp_path, "-q"],
        cwd=REPO, check=True, timeout=300,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("finlake_query_api-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        assert CHART_LIBRARY in names, [n for n in names if "/static/" in n]
        assert archive.getinfo(CHART_LIBRARY).file_size > 10_000


def test_query_api_dockerfile_vendors_the_chart_library_before_building_the_wheel() -> None:
    steps = instructions(QUERY_API / "Dockerfile")
    froms = [arg.split() for op, arg in steps if op == "FROM"]
    assets = next(parts[2] for parts in froms if parts[0].startswith("node:") and len(parts) == 3)
    script = "services/query_api/scripts/vendor_assets.sh"
    # The stage runs the script that `make dashboard-assets` runs: one pinned package and version.
    assert any(op == "COPY" and arg.startswith(f"{script} ") for op, arg in steps)
    assert any(op == "RUN" and "vendor_assets.sh" in arg for op, arg in steps)
    order = [(op, arg) for op, arg in steps if op in ("COPY", "RUN")]
    sources = order.index(("COPY", "services/query_api/ services/query_api/"))
    vendored = next(
        i
        for i, (op, arg) in enumerate(order)
        if op == "COPY"
        and f"--from={assets}" in arg
        and arg.split()[-1] == f"services/query_api/{VENDOR_DIR}"
    )
    wheel = next(i for i, (op, arg) in enumerate(order) if op == "RUN" and "--no-editable" in arg)
    assert sources < vendored < wheel


def dockerignore(text: str | None = None) -> list[tuple[bool, re.Pattern[str]]]:
    """.dockerignore as Docker reads it: (is an exception `!`, the pattern as a regex)."""
    rules = []
    text = (REPO / ".dockerignore").read_text() if text is None else text
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line.removeprefix("!").strip("/")
        regex = ""
        for part in re.split(r"(\*\*/|\*\*|\*|\?)", pattern):
            regex += {"**/": "(.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}.get(
                part, re.escape(part)
            )
        rules.append((negate, re.compile(regex + r"\Z")))
    return rules


def excluded(path: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Out of the context: the last rule matching the path or one of its parent folders wins."""
    parts = path.strip("/").split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    out = False
    for negate, regex in rules:
        if any(regex.match(candidate) for candidate in candidates):
            out = not negate
    return out


def git(*args: str) -> list[str]:
    done = subprocess.run(
        ["git", *args], cwd=REPO, capture_output=True, text=True, check=True, timeout=60
    )
    return [line for line in done.stdout.splitlines() if line]


def copied_sources() -> list[str]:
    sources = []
    for dockerfile in DOCKERFILES:
        for op, arg in instructions(REPO / dockerfile):
            if op == "COPY" and "--from=" not in arg:
                sources += [p for p in arg.split() if not p.startswith("--")][:-1]
    return sources


def test_dockerignore_keeps_every_tracked_file_the_dockerfiles_copy() -> None:
    rules = dockerignore()
    sources = copied_sources()
    assert "src/" in sources
    dropped = [
        path
        for source in sources
        for path in git("ls-files", "--", source)
        if excluded(path, rules)
    ]
    assert dropped == [], f".dockerignore drops files a Dockerfile copies: {dropped[:10]}"


def test_dockerignore_keeps_local_state_and_what_git_ignores_out_of_the_context() -> None:
    rules = dockerignore()
    local = [".git/HEAD", ".venv/bin/python", ".finlake/lake/x", "test-artifacts/x.png"]
    local += [".mypy_cache/x", "services/query_api/.venv/x", "src/finlake/__pycache__/x.pyc"]
    local += ["services/query_api/finlake_query_api/static/vendor/lightweight-charts.LICENSE"]
    ignored = git("ls-files", "--others", "--ignored", "--exclude-standard", "--directory")
    kept = [path for path in [*local, *ignored] if not excluded(path, rules)]
    assert kept == [], f"in the build context although local or gitignored: {kept}"


def test_dockerignore_reading_matches_dockers_rules() -> None:
    rules = dockerignore("# a comment\n**/__pycache__\n/tests/\n!tests/keep\n*.md\nsrc/?.py\n")
    assert excluded("a/b/__pycache__/c.pyc", rules)
    assert excluded("__pycache__/c.pyc", rules)
    assert excluded("tests/x.py", rules)
    assert not excluded("tests/keep", rules)
    assert not excluded("src/tests.py", rules)
    assert not excluded("services/tests/x", rules)
    assert excluded("README.md", rules)
    assert not excluded("docs/README.md", rules)
    assert excluded("src/a.py", rules)
    assert not excluded("src/ab.py", rules)
    assert not excluded("# a comment", rules)
