"""Drive a real JupyterLab 4 from headless Chromium: start a server, open a notebook, run it, inspect it.

``LabServer`` starts ``jupyter lab`` on 127.0.0.1 with a random free port and a random token, with an
isolated config/settings/workspace/runtime directory so the user's own settings cannot change what is
tested. The kernel is the ``python3`` spec run by the server's interpreter (the repo's .venv python:
jupyter_client replaces a kernel argv of ``python`` by ``sys.executable``).

``LabNotebook`` wraps one open notebook in a Playwright page: run all cells from the Run menu, wait
until every code cell has executed (or one failed), collect errors, find the widget views.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[2]

# Lab settings for a reproducible, offline session:
# - no windowing: every cell stays in the DOM, so every widget view is rendered and can be inspected
#   (with the default windowing, off-screen cells are detached and their figures never drawn);
# - no news / update checks (they would ask the server to reach jupyter.org and pop a toast over the page);
# - autosave off: the test saves explicitly when it wants the outputs on disk.
SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
}


def _die_with_parent() -> None:
    """In the child (Linux): get SIGTERM when the test process dies, even if it is killed without cleanup."""
    import ctypes
    import signal

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LabServer:
    """``jupyter lab`` as a subprocess; ``url(path)`` gives an authenticated address on it."""

    def __init__(self, root: Path, home: Path, startup_timeout: float = 180.0):
        self.root, self.home = Path(root), Path(home)
        self.port, self.token = free_port(), secrets.token_hex(24)
        self.base = f"http://127.0.0.1:{self.port}"
        for rel, value in SETTINGS.items():
            p = self.home / "settings" / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(json.dumps(value))
        # no "is the build up to date?" check from the page: it makes the server run node/yarn (tens of
        # seconds on a busy CPU, and node may be absent); the prebuilt extensions need no build
        page_config = self.home / "config" / "labconfig" / "page_config.json"
        page_config.parent.mkdir(parents=True, exist_ok=True)
        page_config.write_text(json.dumps({"buildAvailable": False, "buildCheck": False}))
        env = dict(os.environ)
        env.update(
            JUPYTER_CONFIG_DIR=str(self.home / "config"), JUPYTER_RUNTIME_DIR=str(self.home / "runtime"),
            HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONHASHSEED="0", MPLBACKEND="Agg",
            PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        )
        cmd = [
            sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={self.port}", "--ip=127.0.0.1",
            f"--IdentityProvider.token={self.token}", "--ServerApp.open_browser=False", "--ServerApp.port_retries=0",
            f"--ServerApp.root_dir={self.root}", f"--LabApp.user_settings_dir={self.home / 'settings'}",
            f"--LabApp.workspaces_dir={self.home / 'workspaces'}", "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--LabApp.extension_manager=readonly",
            # window.jupyterapp: the tests open and close notebooks through the app's own commands
            # (as the file browser does) instead of reloading the whole page for each notebook
            "--LabApp.expose_app_in_browser=True",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:  # CI containers run as root; jupyter refuses without this
            cmd.append("--allow-root")
        self.log_path = self.home / "server.log"
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, cwd=self.root, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                     preexec_fn=_die_with_parent if sys.platform == "linux" else None)
        atexit.register(self.stop)  # never leave a server (and its kernels) behind, even if the tests are interrupted
        self._wait_ready(startup_timeout)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {self.proc.returncode}:\n{self.log()}")
            try:
                self.api("GET", "/api/status")
                return
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"jupyter lab did not answer within {timeout:.0f} s:\n{self.log()}")

    def url(self, path: str) -> str:
        return f"{self.base}/{path.lstrip('/')}?token={self.token}"

    def api(self, method: str, path: str) -> object:
        """Call the server's REST API (token in the header); returns the decoded JSON (or None)."""
        req = urllib.request.Request(self.base + path, method=method, headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            body = r.read()
        return json.loads(body) if body else None

    def shutdown_kernels(self) -> None:
        """Stop every running kernel (frees the CPU for the next notebook)."""
        for k in self.api("GET", "/api/kernels") or []:
            try:
                self.api("DELETE", f"/api/kernels/{k['id']}")
            except OSError:
                pass

    def is_local(self, url: str) -> bool:
        """True for addresses served by this server (http and websocket) or held by the page itself."""
        if url.startswith(("data:", "blob:", "about:")):
            return True
        return re.match(rf"^(http|ws)://(127\.0\.0\.1|localhost):{self.port}(/|$)", url) is not None

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self._log.closed:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def cleared_copy(src: Path, dst: Path) -> Path:
    """Copy notebook ``src`` to ``dst`` with outputs, execution counts and saved widget state removed,
    so that what the browser shows afterwards can only come from this run."""
    nb = nbformat.read(src, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nb.metadata.pop("widgets", None)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    dst.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, dst)
    return dst


# JavaScript run in the page --------------------------------------------------------------------------

_CELLS_JS = """() => [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-CodeCell')].map(c => ({
    prompt: (c.querySelector('.jp-InputArea-prompt') || {}).textContent || '',
    empty: ((c.querySelector('.cm-content') || {}).textContent || '').trim() === '',
    error: c.querySelectorAll('[data-mime-type="application/vnd.jupyter.error"]').length,
}))"""

# A fingerprint of the data and layout of every plotly graph under ``root``: changes iff a figure changed.
_FIGS_JS = """(root) => [...root.querySelectorAll('.js-plotly-plot')].map(gd => {
    const norm = (k, v) => (ArrayBuffer.isView(v) ? Array.from(v) : v);
    try { return JSON.stringify([gd.data, gd.layout && {...gd.layout, datarevision: undefined}], norm); }
    catch (e) { return String(e); }
}).join('\\n')"""


# The plotly figure models (anywidget models holding ``_widget_data``) of the current notebook's widget manager, found
# through a widget output of the notebook (ipywidgets' WidgetRenderer holds the manager), and how many of them have no
# view: a model nothing displays is a leaked one (the old re-announce of a figure left one per figure).
_FIGURE_MODELS_JS = """async (panel) => {
    const find = (w) => {
        if (w && w._manager && w._manager.promise && typeof w.renderModel === 'function') return w;
        for (const c of (w && typeof w.children === 'function' ? Array.from(w.children()) : [])) {
            const r = find(c);
            if (r) return r;
        }
        return null;
    };
    // graphs drawn by widget views only (inside a .jupyter-widgets element): a figure a cell shows as its plain output
    // (plotly's own mime renderer) is drawn straight into the output area, without a widget model
    const plots = [...document.querySelectorAll(panel + ' .js-plotly-plot')].filter(gd => gd.closest('.jupyter-widgets')).length;
    const renderer = find(window.jupyterapp.shell.currentWidget);
    if (!renderer) return {manager: false, figures: 0, without_view: 0, plots};
    const manager = await renderer._manager.promise;
    const models = await Promise.all(Object.values(manager._models).map(p => p.catch(() => null)));
    const figures = models.filter(m => m && m.get('_model_name') === 'AnyModel' && m.get('_widget_data') !== undefined);
    const without_view = figures.filter(m => Object.keys(m.views || {}).length === 0).length;
    return {manager: true, figures: figures.length, without_view, plots};
}"""


@dataclass
class CellState:
    prompt: str
    empty: bool
    error: int


PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"


@dataclass
class LabNotebook:
    """One notebook open in the JupyterLab app loaded in ``page`` (see ``open_lab``)."""

    page: object
    server: LabServer
    path: str  # relative to the server root

    @property
    def panel(self):
        """Locator of this notebook's panel (the current, visible one)."""
        return self.page.locator(PANEL)

    def open(self, timeout_ms: int = 180_000) -> None:
        """Open the notebook as a double-click in the file browser does, and wait for its kernel to be idle."""
        self.page.evaluate(
            "async p => { await window.jupyterapp.commands.execute('docmanager:open', {path: p, factory: 'Notebook'}); }", self.path
        )
        self.page.wait_for_selector(f"{PANEL} .jp-Notebook .jp-Cell", timeout=timeout_ms)
        # the execution indicator says "idle" even before a kernel exists ("No Kernel"): wait for both
        self.page.wait_for_function(
            """(panel) => {
                const p = document.querySelector(panel);
                const name = p && p.querySelector('.jp-KernelName');
                return p && name && !/No Kernel/.test(name.textContent)
                    && p.querySelector(".jp-Notebook-ExecutionIndicator[data-status='idle']");
            }""",
            arg=PANEL, timeout=timeout_ms, polling=500,
        )

    def close(self) -> None:
        """Close the notebook's tab without a save dialog, then stop its kernel. (In the other order, the
        widget views still on the page try to sync with a dead kernel and log "Cannot send" errors.)"""
        self.page.evaluate(
            """async () => {
                const w = window.jupyterapp.shell.currentWidget;
                if (w && w.context) { w.dispose(); }
            }"""
        )
        self.server.shutdown_kernels()

    def cells(self) -> list[CellState]:
        return [CellState(**c) for c in self.page.evaluate(_CELLS_JS)]

    def run_all(self, timeout_s: float = 300.0) -> list[CellState]:
        """Run > Run All Cells, then wait until every non-empty code cell has an execution count, or a
        cell shows an error (JupyterLab stops a run-all there). Returns the final cell states."""
        self.page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
        self.page.locator(".lm-Menu-itemLabel").get_by_text("Run All Cells", exact=True).click()
        deadline = time.monotonic() + timeout_s
        done = re.compile(r"^\[\d+\]:$")
        while True:
            cells = self.cells()
            if any(c.error for c in cells) and self.idle():
                return cells
            if cells and all(c.empty or done.match(c.prompt.strip()) for c in cells):
                return cells
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.path}: cells still running after {timeout_s:.0f} s: {[c.prompt for c in cells]}")
            time.sleep(0.5)

    def idle(self) -> bool:
        return self.panel.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").count() > 0

    def save(self) -> None:
        """File > Save and wait until the file on disk has changed."""
        target = self.server.root / self.path
        before = target.stat().st_mtime_ns
        self.page.evaluate("async () => { await window.jupyterapp.commands.execute('docmanager:save'); }")
        deadline = time.monotonic() + 30
        while target.stat().st_mtime_ns == before and time.monotonic() < deadline:
            time.sleep(0.2)

    def explorers(self):
        """Locators of every ``widgets.base.Explorer`` view in the notebook."""
        return self.panel.locator(".interp-explorer")

    def fingerprint(self, root) -> str:
        return root.evaluate(_FIGS_JS)

    def figure_models(self) -> dict:
        """Plotly figure models in the page for this notebook: ``{"manager": found, "figures": models, "without_view":
        models no view shows (leaked), "plots": plotly graphs drawn inside the notebook's widget views}``."""
        return self.page.evaluate(_FIGURE_MODELS_JS, PANEL)


def open_lab(context, server: LabServer, timeout_ms: int = 240_000):
    """A page of ``context`` with JupyterLab loaded and restored; records ``page.console_errors`` and
    ``page.requests`` (every http and websocket address the page asked for)."""
    page = context.new_page()
    page.console_errors, page.requests = [], []
    page.on("console", lambda m: page.console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: page.console_errors.append(str(e)))
    page.on("request", lambda r: page.requests.append(r.url))
    page.on("websocket", lambda ws: page.requests.append(ws.url))
    page.goto(server.url("lab"), timeout=timeout_ms)
    page.wait_for_function("() => window.jupyterapp !== undefined", timeout=timeout_ms, polling=500)
    page.evaluate("async () => { await window.jupyterapp.restored; }")
    return page
