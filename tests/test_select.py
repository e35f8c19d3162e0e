"""Label-free selection (glad_nb.select, nbs/11f_select.ipynb): its anomalies share nothing with ATP's synthesis, it never
reads a test image, and the unseen benchmark (benchmarks/unseen.py) writes a folder dataset with exact masks."""
import ast, importlib.util
from pathlib import Path
import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT/'glad_nb'

def _defs(tree)->set:
    "Names of every function and class defined anywhere in a module (dunder methods left out)."
    return {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            and not (n.name.startswith('__') and n.name.endswith('__'))}

def _calls(tree)->set:
    "Names a module calls: f(...) and obj.f(...)."
    out = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.Call):
            f = n.func
            if isinstance(f, ast.Name): out.add(f.id)
            elif isinstance(f, ast.Attribute): out.add(f.attr)
    return out

def _imports_from(tree, module:str)->list:
    "Lines where a module imports `module` (glad_nb.<module>, .<module>, or the name from glad_nb / .)."
    bad = []
    for n in ast.walk(tree):
        if isinstance(n, ast.ImportFrom):
            if (n.module or '').split('.')[-1] == module or (n.module in (None, 'glad_nb') and any(a.name == module for a in n.names)):
                bad.append(n.lineno)
        elif isinstance(n, ast.Import) and any(a.name == f'glad_nb.{module}' for a in n.names): bad.append(n.lineno)
    return bad

def test_validation_anomalies_share_no_function_with_atp_synthesis():
    "The selection's generator and ATP's: neither calls a function the other defines, neither imports the other."
    sel, syn = (ast.parse((PKG/f'{m}.py').read_text()) for m in ('select', 'synthesis'))
    assert not _imports_from(sel, 'synthesis'), f"select imports synthesis at lines {_imports_from(sel, 'synthesis')}"
    assert not _imports_from(syn, 'select'), f"synthesis imports select at lines {_imports_from(syn, 'select')}"
    assert not (_calls(sel) & _defs(syn)), f"select calls synthesis' {sorted(_calls(sel) & _defs(syn))}"
    assert not (_calls(syn) & _defs(sel)), f"synthesis calls select's {sorted(_calls(syn) & _defs(sel))}"
    assert {'cut_paste', 'blob_blur', 'blob_tint', 'thin_scratch', 'ValidationSet'} <= _defs(sel)

def test_select_imports_nothing_above_it():
    "select takes a GLAD as a parameter: it must not import the pipeline or anything that does."
    tree = ast.parse((PKG/'select.py').read_text())
    for m in ('pipeline', 'api', 'commands', 'cli', 'experiments', 'report', 'dashboard', 'baseline'):
        assert not _imports_from(tree, m), f"select imports {m}"

def _write_category(root:Path, n_normal:int=12, S:int=32):
    "root/parts/normal: random smooth images; root/parts/abnormal and masks: files that are not images at all."
    rng = np.random.default_rng(0)
    (root/'parts'/'normal').mkdir(parents=True)
    yy, xx = np.mgrid[0:S, 0:S] / S
    for i in range(n_normal):
        a = np.stack([0.5 + 0.25 * np.sin(6 * xx + c + 0.2 * i) * np.cos(5 * yy) for c in range(3)], -1) + rng.normal(0, 0.03, (S, S, 3))
        Image.fromarray((np.clip(a, 0, 1) * 255).astype(np.uint8)).save(root/'parts'/'normal'/f'{i:03d}.png')
    for d in ('abnormal', 'masks'):
        (root/'parts'/d).mkdir()
        for i in range(3): (root/'parts'/d/f'bad{i}.png').write_bytes(b'not an image: reading this file is a bug')

def test_selection_never_reads_test_images(tmp_path, monkeypatch):
    "A category whose test images are unreadable still selects: only the held-out normal images are ever opened."
    import glad_nb.data as data
    from torch.utils.data import Subset
    from glad_nb.pipeline import GLAD, calibrate_tau
    from glad_nb.select import select_settings, write_selection, SETTINGS
    from glad_nb.api import holdout_split
    _write_category(tmp_path)
    tr = data.get_dataset('folder', tmp_path, 'parts', 'train', image_size=32, test_ratio=0.25)   # 9 to train, 3 normal test
    opened, read = [], data.read_image
    monkeypatch.setattr(data, 'read_image', lambda path, *a, **k: (opened.append(Path(path)), read(path, *a, **k))[1])
    held = Subset(tr, holdout_split(len(tr), 0, min_n=4)[1])
    torch.manual_seed(0)
    glad = GLAD.pixel(32, device='cpu')
    winner, df = select_settings(glad, held, tau_fn=calibrate_tau, grid=dict(T0=(150, 300), pixel_weight=(0.0, 1.0), sigma=(1.0,)))
    assert opened and {p.parent.name for p in opened} == {'normal'}
    assert {p.name for p in opened} <= {s.path.name for s in tr.samples}                    # training images only...
    assert {p.name for p in opened} == {tr.samples[i].path.name for i in held.indices}      # ...and of those the held-out ones
    assert set(winner) == {*SETTINGS, 'fuse'} and df.winner.sum() == 1 and len(df) >= 4
    cfg = glad.cfg.replace(**winner)                                                        # a valid config
    assert cfg.T0 in (150, 300) and cfg.pixel_weight in (0.0, 1.0) and cfg.sigma == 1.0
    row = write_selection(df, tmp_path/'run'/'parts')
    assert (tmp_path/'run'/'parts'/'selection.csv').is_file() and int(row.T0) == winner['T0']

# -- the unseen benchmark

def _unseen():
    spec = importlib.util.spec_from_file_location('unseen', ROOT/'benchmarks'/'unseen.py')
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    return mod

def test_unseen_defects_have_exact_masks():
    "Every physical defect model changes the pixels of its mask and nothing else."
    u, rng = _unseen(), np.random.default_rng(1)
    x = np.clip(0.5 + 0.1 * rng.standard_normal((128, 128, 3)), 0, 1).astype(np.float32)
    for kind, f in u.DEFECT_FNS.items():
        for i in range(4):
            y, m = f(x, np.random.default_rng(i))
            assert m.dtype == bool and m.any(), kind
            np.testing.assert_array_equal(y[~m], x[~m], err_msg=kind)
            assert (np.abs(y[m] - x[m]).max(-1) > 1 / 255).mean() > 0.9, kind   # the inside visibly changes

def test_unseen_benchmark_shares_no_code_with_glad_nb():
    "Its photographs and defects are its own: it imports nothing from glad_nb (demo drawing, ATP synthesis, selection)."
    tree = ast.parse((ROOT/'benchmarks'/'unseen.py').read_text())
    mods = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names} | \
           {n.module or '' for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not [m for m in mods if m.startswith('glad_nb')], mods

def test_unseen_benchmark_writes_a_folder_dataset(tmp_path):
    "benchmarks/unseen.py writes what FolderDataset reads (normal/, abnormal/, masks/<stem>.png), the same for the same seed."
    from glad_nb.data import get_dataset
    u = _unseen()
    args = ['--size', '64', '--normal', '10', '--per-defect', '2', '--categories', 'moon', 'flower']
    assert u.main(['--out', str(tmp_path/'a'), '--seed', '3', *args]) == 0
    assert u.main(['--out', str(tmp_path/'b'), '--seed', '3', *args]) == 0
    assert u.main(['--out', str(tmp_path/'c'), '--seed', '4', *args]) == 0
    files = sorted(p.relative_to(tmp_path/'a') for p in (tmp_path/'a').rglob('*.png'))
    assert len(files) == 2 * (10 + 2 * 4 * 2)
    assert all((tmp_path/'a'/f).read_bytes() == (tmp_path/'b'/f).read_bytes() for f in files)
    assert any((tmp_path/'a'/f).read_bytes() != (tmp_path/'c'/f).read_bytes() for f in files)
    te = get_dataset('folder', tmp_path/'a', 'moon', 'test', image_size=64, mask_dir='masks')
    tr = get_dataset('folder', tmp_path/'a', 'moon', 'train', image_size=64)
    assert len(tr) == 8 and (te.labels == 0).sum() == 2 and (te.labels == 1).sum() == 8   # test_ratio 0.2 of the normal images
    for i in np.flatnonzero(te.labels == 1):
        it = te[int(i)]
        assert it['has_mask'] and 0 < it['mask'].sum() < 64 * 64 / 4
    assert u.main(['--out', str(tmp_path/'d'), '--size', '8']) == 2
