"""Copy the README screenshots from the last browser-test run (artifacts/) into docs/.

``python -m pytest tests/browser`` writes artifacts/00_tour.png (the tour in JupyterLab) and
artifacts/report.png (a report from ``interp report``, tests/browser/test_report_browser.py); this script
copies them to docs/tour.png and docs/report.png. Run: ``python tests/browser/update_docs.py``.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHOTS = {"00_tour.png": "tour.png", "report.png": "report.png"}


def main() -> int:
    (REPO / "docs").mkdir(exist_ok=True)
    missing = [src for src in SHOTS if not (REPO / "artifacts" / src).exists()]
    for src, dst in SHOTS.items():
        if src not in missing:
            shutil.copyfile(REPO / "artifacts" / src, REPO / "docs" / dst)
            print(f"docs/{dst} <- artifacts/{src}")
    if missing:
        print(f"missing (run the browser tests first): {', '.join(missing)}", file=sys.stderr)
    return 1 if missing else 0


if __name__ == "__main__":
    raise SystemExit(main())
