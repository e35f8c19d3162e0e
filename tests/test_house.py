"The shape of the package (docs/method.md section 12): imports point down, no circle, no private name crosses a module, GLAD lives in one place."
import ast, json, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT/'glad_nb'
MODULES = {p.stem: p for p in PKG.glob('*.py') if p.stem not in ('__init__', '_modidx')}

# the layers of docs/method.md section 12, lowest first; a module may import its own layer or a lower one
LAYERS = [
    ('base', {'core', 'images', 'schedule', 'metrics', 'demo', 'data', 'runs', 'options', 'api', 'weights'}),
    ('method parts and scoring', {'backbone', 'synthesis', 'checkpoints', 'train', 'features', 'score', 'ads', 'adapt', 'results', 'select'}),
    ('GLAD and the memory bank', {'pipeline', 'baseline'}),
    ('face', {'experiments', 'report', 'figures', 'dashboard', 'commands', 'cli'}),
]
LAYER = {m: i for i, (_, ms) in enumerate(LAYERS) for m in ms}

def imports(path:Path)->list:
    "(line, imported glad_nb module, names) for every import of a glad_nb module in a file, at any depth (functions too)."
    out = []
    for n in ast.walk(ast.parse(path.read_text())):
        if isinstance(n, ast.ImportFrom):
            if n.module == 'glad_nb' or (n.level and not n.module):   # from glad_nb import x / from . import x
                out += [(n.lineno, a.name, []) for a in n.names if a.name in MODULES]
            elif n.module and (n.module.startswith('glad_nb.') or n.level):
                out.append((n.lineno, n.module.split('.')[-1], [a.name for a in n.names]))
        elif isinstance(n, ast.Import):
            out += [(n.lineno, a.name.split('.')[1], []) for a in n.names if a.name.startswith('glad_nb.')]
    return [(l, m, names) for l, m, names in out if m in MODULES]

GRAPH = {m: {t for _, t, _ in imports(p) if t != m} for m, p in MODULES.items()}

def test_every_module_has_a_layer():
    assert set(MODULES) == set(LAYER), f"modules without a layer: {sorted(set(MODULES) - set(LAYER))}; layers naming no module: {sorted(set(LAYER) - set(MODULES))}"

def test_no_import_circle():
    def cycle_from(start):
        stack, seen = [(start, [start])], set()
        while stack:
            m, path = stack.pop()
            for t in sorted(GRAPH[m]):
                if t == start: return path + [t]
                if t not in seen: seen.add(t); stack.append((t, path + [t]))
    cycles = [c for c in map(cycle_from, sorted(MODULES)) if c]
    assert not cycles, 'import circles: ' + '; '.join(' -> '.join(c) for c in cycles)

def test_imports_point_down():
    up = [f"{m} ({LAYERS[LAYER[m]][0]}) imports {t} ({LAYERS[LAYER[t]][0]}) at line {l}"
          for m, p in MODULES.items() for l, t, _ in imports(p) if t != m and LAYER[t] > LAYER[m]]
    assert not up, '\n'.join(up)
    assert 'pipeline' not in GRAPH['baseline'], "the memory bank (the yardstick) must not lean on GLAD's module"

def test_no_private_name_crosses_a_module():
    private = [f"{m}:{l} imports {n} from {t}" for m, p in MODULES.items() for l, t, names in imports(p) for n in names
               if t != m and n.startswith('_')]
    assert not private, '\n'.join(private)

def test_modules_stay_small():
    sizes = {m: len(p.read_text().splitlines()) for m, p in MODULES.items()}
    assert not {m: n for m, n in sizes.items() if n > 500}, sizes
    assert sizes['commands'] <= 400, f"commands.py has {sizes['commands']} lines: it only resolves arguments, calls the library and prints"

def test_glad_has_every_method_from_its_own_module():
    "Which methods a GLAD has must not depend on what else was imported."
    methods = ['fit', 'reconstruct', 'cache_batch', 'build_cache', 'score', 'evaluate', 'protocol', 'save', 'load', 'predict', 'calibrate',
               'calibrate_f1', 'from_pretrained', 'pixel', 'pixel_train_config', 'fit_calibrated']
    code = f"from glad_nb.pipeline import GLAD; import json; print(json.dumps([m for m in {methods!r} if not hasattr(GLAD, m)]))"
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(r.stdout) == [], f"GLAD lacks {r.stdout} after importing glad_nb.pipeline alone"

def test_notebooks_cite_the_method_in_the_repository():
    nbs = sorted((ROOT/'nbs').rglob('*.ipynb'))
    text = {p: p.read_text() for p in nbs if '.ipynb_checkpoints' not in p.parts}
    outside = [str(p.relative_to(ROOT)) for p, t in text.items() if any(s in t for s in ('GLAD.md', 'DESIGN.md', 'SELECTION.md', 'STYLE.md'))]
    assert not outside, f"notebooks citing files outside the repository: {outside}"
    assert (ROOT/'docs'/'method.md').is_file()
    silent = [str(p.relative_to(ROOT)) for p, t in text.items() if p.name != 'index.ipynb' and 'docs/method.md' not in t]
    assert not silent, f"notebooks that do not cite docs/method.md: {silent}"
