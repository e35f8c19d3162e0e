"""The dashboard notebook with a real kernel (nbclient), and in a real browser (JupyterLab + Debian chromium + playwright).

The browser test runs only with RUN_BROWSER=1 (`make test-browser`), and skips when /usr/bin/chromium or the
playwright package is missing; playwright drives the system chromium (never `playwright install`).
"""
import json, os, secrets, shutil, signal, socket, subprocess, sys, time, urllib.request
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
NB = ROOT/'nbs'/'12_dashboard.ipynb'
CHROMIUM = Path(os.environ.get('GLAD_CHROMIUM', '/usr/bin/chromium'))
SCREENSHOT = Path(os.environ.get('GLAD_SCREENSHOT', '/tmp/dashboard_screenshot.png'))
MB = 1 << 20


def test_notebook_source_is_small_and_clean():
    nb = json.loads(NB.read_text())
    assert NB.stat().st_size < MB, f"{NB} is {NB.stat().st_size} bytes"
    assert 'widgets' not in nb.get('metadata', {}), "widget state is saved in the notebook"
    assert all(not c.get('outputs') for c in nb['cells'] if c['cell_type'] == 'code'), "the committed notebook holds outputs"
    src = '\n'.join(''.join(c['source']) for c in nb['cells'])
    assert "pio.renderers.default = 'plotly_mimetype'" in src


def test_notebook_runs_with_a_real_kernel(tmp_path, monkeypatch):
    nbformat = pytest.importorskip('nbformat'); nbclient = pytest.importorskip('nbclient')
    monkeypatch.setenv('IN_TEST', '1'); monkeypatch.setenv('OMP_NUM_THREADS', '1')   # the kernel inherits both
    nb = nbformat.read(NB, as_version=4)
    # no widget state: each plotly FigureWidget's state carries the ~5 MB plotly.js bundle (anywidget _esm)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name='python3', store_widget_state=False,
                                     resources={'metadata': {'path': str(tmp_path)}})
    client.execute()
    errors = [(i, o.get('ename'), o.get('evalue')) for i, c in enumerate(nb.cells) if c.cell_type == 'code'
              for o in c.get('outputs', []) if o.get('output_type') == 'error']
    assert not errors, errors
    warned = [i for i, c in enumerate(nb.cells) if c.cell_type == 'code' and 'JSON compliant' in json.dumps(c.get('outputs', []))]
    assert not warned, f"cells {warned} print 'Out of range float values are not JSON compliant': NaN or inf sent to the front end"
    views = sum('application/vnd.jupyter.widget-view+json' in o.get('data', {}) for c in nb.cells if c.cell_type == 'code'
                for o in c.get('outputs', []))
    assert views >= 5, f"expected the dashboards as widget views, found {views}"
    out = tmp_path/'executed.ipynb'
    nbformat.write(nb, out)          # with all its outputs: still under 1 MB
    assert 'widgets' not in nb.metadata
    assert out.stat().st_size < MB, f"executed notebook is {out.stat().st_size} bytes (limit {MB})"


# ---------------------------------------------------------------------------------------------- browser
CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                  '--disable-background-networking', '--disable-component-update', '--disable-sync']

def _free_port()->int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def _wait_http(url:str, timeout:float, proc):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None: raise RuntimeError(f"jupyter lab exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200: return
        except OSError: time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {timeout} s")

@pytest.fixture
def jupyter_lab(tmp_path):
    "JupyterLab on 127.0.0.1 with a token, serving a copy of the dashboard notebook; isolated settings."
    work = tmp_path/'work'; work.mkdir()
    shutil.copy(NB, work/NB.name)
    settings = tmp_path/'settings'/'@jupyterlab'/'apputils-extension'
    settings.mkdir(parents=True)
    (settings/'notification.jupyterlab-settings').write_text(json.dumps({'fetchNews': 'false', 'checkForUpdates': False}))
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, 'IN_TEST': '1', 'OMP_NUM_THREADS': '1', 'JUPYTER_CONFIG_DIR': str(tmp_path/'config'),
           'JUPYTERLAB_SETTINGS_DIR': str(tmp_path/'settings'), 'JUPYTERLAB_WORKSPACES_DIR': str(tmp_path/'workspaces'),
           'JUPYTER_RUNTIME_DIR': str(tmp_path/'runtime')}
    log = open(tmp_path/'lab.log', 'w')
    root = ['--allow-root'] if hasattr(os, 'geteuid') and os.geteuid() == 0 else []   # CI containers run as root
    proc = subprocess.Popen([sys.executable, '-m', 'jupyterlab', '--no-browser', '--ip=127.0.0.1', f'--port={port}', *root,
                             f'--IdentityProvider.token={token}', f'--ServerApp.root_dir={work}', '--LabApp.expose_app_in_browser=True'],
                            cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_http(f'http://127.0.0.1:{port}/api/status?token={token}', 120, proc)
        yield dict(url=f'http://127.0.0.1:{port}', token=token, notebook=NB.name, log=tmp_path/'lab.log')
    finally:
        try: os.killpg(proc.pid, signal.SIGTERM)         # the server and the kernels it started (its own session)
        except ProcessLookupError: pass
        try: proc.wait(20)
        except subprocess.TimeoutExpired: os.killpg(proc.pid, signal.SIGKILL)
        log.close()

PLOT = """sel => { const e = document.querySelector(sel);   // the class sits on the plot div or on a parent
                   return e && (e.classList.contains('js-plotly-plot') ? e : e.querySelector('.js-plotly-plot')); }"""
FIGURE_STATE = f"""sel => {{ const g = ({PLOT})(sel);
                   return g && g.data ? JSON.stringify(g.data.map(t => [t.z, t.source, t.x, t.y])) : null; }}"""

CELL_ERRORS = """() => { const nb = window.jupyterapp.shell.currentWidget.content; const out = [];
    for (let i = 0; i < nb.model.cells.length; i++) { const c = nb.model.cells.get(i);
        if (c.type !== 'code') continue;
        const o = c.outputs.toJSON(); for (const x of o) if (x.output_type === 'error') out.push([i, x.ename, x.evalue]); }
    return out; }"""

CELL_OUTPUTS = """() => { const nb = window.jupyterapp.shell.currentWidget.content; const out = [];
    for (let i = 0; i < nb.model.cells.length; i++) { const c = nb.model.cells.get(i);
        out.push(c.type === 'code' ? JSON.stringify(c.outputs.toJSON()) : ''); }
    return out; }"""

CELLS_DONE = """() => { const nb = window.jupyterapp.shell.currentWidget.content; let left = 0;
    for (let i = 0; i < nb.model.cells.length; i++) { const c = nb.model.cells.get(i);
        if (c.type === 'code' && c.sharedModel.getSource().trim() && (!c.executionCount || c.executionState !== 'idle')) left++; }
    const busy = document.querySelector('.jp-Notebook-ExecutionIndicator[data-status="busy"]');
    return [left, !!busy]; }"""

@pytest.mark.browser
@pytest.mark.skipif(os.environ.get('RUN_BROWSER') != '1', reason='real-browser test: run with RUN_BROWSER=1 (make test-browser)')
def test_dashboard_in_a_real_browser(jupyter_lab, tmp_path):
    if not CHROMIUM.exists(): pytest.skip(f"{CHROMIUM} not found (apt-get install -y chromium chromium-driver)")
    sync_api = pytest.importorskip('playwright.sync_api', reason='playwright not installed (pip install playwright)')
    lab = jupyter_lab
    with sync_api.sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(str(tmp_path/'chromium-profile'), executable_path=str(CHROMIUM), headless=True,
                                                   args=CHROMIUM_FLAGS, viewport={'width': 1400, 'height': 1000})
        try:
            page = ctx.pages[0] if ctx.pages else ctx.new_page()
            page.set_default_timeout(120_000)
            page.goto(f"{lab['url']}/lab/tree/{lab['notebook']}?token={lab['token']}")
            page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget && "
                                   "window.jupyterapp.shell.currentWidget.sessionContext && "
                                   "window.jupyterapp.shell.currentWidget.sessionContext.session && "
                                   "window.jupyterapp.shell.currentWidget.sessionContext.session.kernel")
            page.wait_for_function("() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status === 'idle'")
            page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
            t0 = time.time()
            while True:
                left, busy = page.evaluate(CELLS_DONE)
                errors = page.evaluate(CELL_ERRORS)
                assert not errors, f"cells raised: {errors}"
                if left == 0 and not busy: break
                assert time.time() - t0 < 600, f"notebook did not finish in 600 s ({left} cells left)"
                time.sleep(1)
            page.wait_for_function(f"sel => {{ const g = ({PLOT})(sel); return !!(g && g.data); }}", arg='.glad-image')
            slider = page.locator('.glad-sigma').first
            slider.scroll_into_view_if_needed()
            shown = page.evaluate(FIGURE_STATE, '.glad-image')
            page.locator('.glad-image-select select').first.select_option(index=0)          # an anomalous image
            page.wait_for_function(f"before => ({FIGURE_STATE})('.glad-image') !== before", arg=shown, timeout=60_000)
            before = page.evaluate(FIGURE_STATE, '.glad-image')
            handle = slider.locator('.noUi-handle').first
            box = handle.bounding_box()
            x0, y0 = box['x'] + box['width'] / 2, box['y'] + box['height'] / 2
            page.mouse.move(x0, y0); page.mouse.down(); page.mouse.move(x0 + 40, y0, steps=8); page.mouse.up()
            page.wait_for_function(f"before => ({FIGURE_STATE})('.glad-image') !== before", arg=before, timeout=60_000)
            assert slider.locator('.widget-readout').first.inner_text() != '1.00'
            page.locator('.glad-image').first.scroll_into_view_if_needed()
            time.sleep(1)   # let plotly finish drawing before the picture
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOT))
            assert SCREENSHOT.stat().st_size > 10_000
            # the sweep panel: new values, "run" (a background thread in the kernel), the figure follows
            sweep = page.locator('.glad-sweep-values input').first
            sweep.scroll_into_view_if_needed()
            before = page.evaluate(FIGURE_STATE, '.glad-sweep')
            sweep.fill('0.1, 0.2'); sweep.press('Enter')
            page.locator('.glad-sweep-run').first.click()
            page.wait_for_function(f"before => ({FIGURE_STATE})('.glad-sweep') !== before", arg=before, timeout=120_000)
            xs = page.evaluate(f"() => Array.from(({PLOT})('.glad-sweep').data[0].x)")
            assert [round(x, 3) for x in xs] == [0.1, 0.2], xs
            assert not page.evaluate(CELL_ERRORS)
            outputs = page.evaluate(CELL_OUTPUTS)
            assert sum('widget-view+json' in text for text in outputs) >= 5, "the cell outputs were not read"
            warned = [i for i, text in enumerate(outputs) if 'JSON compliant' in text]
            assert not warned, f"cells {warned} print 'Out of range float values are not JSON compliant': NaN or inf sent to the front end"
        finally:
            ctx.close()


# ---------------------------------------------------------------------------------------------- no NaN to the front end
# JSON has no NaN or inf: a widget state or message holding one makes jupyter_client print "Out of range float values are
# not JSON compliant" above the dashboard (nbs/12_dashboard.ipynb, `json_safe`).

def _nan_cache(N:int=6, S:int=16):
    "A ScoreCache whose masks are all empty (every pixel metric NaN), with NaN ADS scores after each step: fused, fallback, never switched."
    import torch
    from glad_nb.results import ScoreCache
    g = torch.Generator().manual_seed(0)
    steps = torch.tensor([3, 2, -1] * (N // 3))
    ads = torch.rand(N, 4, generator=g)
    ads[0::3, 2:] = ads[1::3, 3:] = float('nan')                        # after step 3 and after step 2 of the grid (4, 3, 2, 1)
    fused = steps == 3
    u8 = lambda *s: torch.randint(0, 256, s, dtype=torch.uint8, generator=g)
    return ScoreCache(images=u8(N, 3, S, S), masks=torch.zeros(N, S, S, dtype=torch.uint8), labels=torch.tensor([0, 1] * (N // 2)),
                      layers=(1, 2), fwd=[torch.rand(N, 8, 8, generator=g), torch.rand(N, 4, 4, generator=g)], recons=u8(N, 3, S, S),
                      steps=steps, ads_scores=ads, fusion=torch.rand(N, 4, 4, generator=g) * fused[:, None, None], fused=fused, grid=[4, 3, 2, 1])

def _widgets(root)->list:
    "Every widget reachable from `root` through its traits (children, layout, style, ...)."
    import ipywidgets as W
    out, todo = {}, [root]
    while todo:
        v = todo.pop()
        if isinstance(v, W.Widget):
            if id(v) in out: continue
            out[id(v)] = v; todo += [getattr(v, k) for k in v.keys]
        elif isinstance(v, (list, tuple)): todo += list(v)
        elif isinstance(v, dict): todo += list(v.values())
    return list(out.values())

def _decoded(o):
    "A widget state with plotly's binary arrays ({'buffer', 'dtype', 'shape'}) as lists: the numbers the front end gets."
    import numpy as np
    if isinstance(o, dict) and {'buffer', 'dtype'} <= set(o): return np.frombuffer(o['buffer'], o['dtype']).tolist()
    if isinstance(o, dict): return {k: _decoded(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)): return [_decoded(v) for v in o]
    return o

def _strict_json(o, what):
    "JSON as jupyter_client sends it, refusing NaN and inf (instead of its warning)."
    import numbers, numpy as np
    def plain(x):
        if isinstance(x, np.ndarray): return x.tolist()
        if isinstance(x, numbers.Real): return float(x)
        if isinstance(x, (bytes, memoryview)): return len(x)
        raise TypeError(f"{type(x).__name__} in {what}")
    try: return json.dumps(_decoded(o), allow_nan=False, default=plain)
    except ValueError as e: raise AssertionError(f"{what}: {e}") from None

def test_no_nan_reaches_the_front_end(monkeypatch):
    import math
    import plotly.graph_objects as go
    from ipywidgets.widgets import widget as wmod
    from glad_nb.results import RunCategory, default_scoring
    from glad_nb.dashboard import demo_images, schedule_explorer, synthesis_explorer, run_explorer, sweep_panel
    sent, send = [], wmod.Widget._send
    def record(self, msg, buffers=None):
        st = dict(msg.get('state', {})); wmod._put_buffers(st, msg.get('buffer_paths', []), buffers or [])
        sent.append((type(self).__name__, {**msg, 'state': st})); return send(self, msg, buffers)
    monkeypatch.setattr(wmod.Widget, '_send', record)
    cache = _nan_cache()
    cfg = default_scoring(cache).replace(category='empty masks')
    rx = run_explorer(RunCategory(cache, cfg, 'test', baseline=dict(image_auroc=0.5, pixel_auroc=float('nan'))), threads=1)
    assert math.isnan(rx.table.loc['pixel_auroc', 'current']) and math.isnan(rx.table.loc['aupro', 'run config'])
    assert 'nan' not in rx.table_html.value.lower()
    for i in range(3): rx.image.value = i                                   # fused, t_min fallback, never switched
    rx.sigma.value = 2.0; rx.exact.value = True
    class FakeGLAD:
        device = 'cpu'
        def build_cache(self, ds, batch_size=8, progress=True, cfg=None, limit=None):
            for i in range(len(ds)): ds[i]
            return cache
    sp = sweep_panel(FakeGLAD(), list(range(len(cache))), cfg=cfg.replace(tau=0.3), values=[0.2, 0.4], background=False)
    sp.run()
    assert sp.result['pixel_auroc'].isna().all() and 'nan' not in sp.table_html.value.lower()
    se = synthesis_explorer(demo_images(2, 32), side=32); se.threshold.value = 0.5
    ex = schedule_explorer(demo_images(1, 32)[0], n_show=3); ex.T0.value = 500
    n_figs = 0
    for name, d in (('schedule', ex), ('synthesis', se), ('run', rx), ('sweep', sp)):
        for w in _widgets(d.widget):
            _strict_json(w.get_state(), f"{name} explorer: state of {type(w).__name__}")
            if isinstance(w, go.FigureWidget): _strict_json(w.to_plotly_json(), f"{name} explorer: figure"); n_figs += 1
    assert n_figs == 7, n_figs
    assert sent, "no widget message recorded"
    for name, msg in sent: _strict_json(msg, f"message of a {name}")
