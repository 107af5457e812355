"""What the images are built from: the query API's wheel carries the vendored chart library, and
its Dockerfile vendors it (npm, the pinned version of scripts/vendor_assets.sh) before the wheel."""

from __future__ import annotations

import os
import shutil
import subprocess
import zipfile
from pathlib import Path

from tests.chart.conftest import REPO
from tests.chart.test_images import instructions

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
