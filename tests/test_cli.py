"The `glad-nb` command line end to end on a quick two-category demo, and its refusals."
import json, os, re, subprocess, sys
from pathlib import Path
import pandas as pd
import torch
import pytest
from glad_nb.core import DEMO_QUICK_DRAWS

ROOT = Path(__file__).resolve().parent.parent

def glad_nb(*args, env_extra=None, cwd=None):
    env = {**os.environ, 'OMP_NUM_THREADS': '1', **(env_extra or {})}
    return subprocess.run([sys.executable, '-m', 'glad_nb.cli', *args], capture_output=True, text=True, cwd=cwd or ROOT, env=env, timeout=900)

@pytest.fixture(scope='module')
def quick_run(tmp_path_factory):
    d = tmp_path_factory.mktemp('cli')
    env = {'GLAD_NB_DEMO': str(d/'demo')}
    r = glad_nb('demo', '--quick', '--category', 'brick', 'coffee', '--out', str(d/'run'), '--no-progress', '--jobs', '2', env_extra=env)
    return d, env, r

def test_quick_demo_writes_a_complete_run(quick_run):
    d, env, r = quick_run
    assert r.returncode == 0, r.stderr[-3000:]
    run = d/'run'
    table = pd.read_csv(run/'metrics.csv', index_col=0)
    assert list(table.index) == ['brick', 'coffee', 'mean']
    for col in ('image_auroc', 'pixel_auroc', 'aupro'):
        assert table[col].between(0, 1).all(), table
    assert 'image_auroc' in r.stdout and 'mean' in r.stdout          # the table is printed
    for cat in ('brick', 'coffee'):
        per = pd.read_csv(run/cat/'per_image.csv')
        assert {'path', 'defect', 'label', 'score', 'step'} <= set(per.columns) and len(per) > 0
        proto = json.loads((run/cat/'protocol.json').read_text())
        assert proto['tuned_on_test'] is False and proto['preset'] == 'auto' and proto['grid']   # the demo chooses its settings without labels
        assert (run/cat/'model'/'config.json').exists()
        sel = pd.read_csv(run/cat/'selection.csv')                       # both trainings' candidates, one winner
        assert set(sel.t_max) == {150, 1000} and sel.winner.sum() == 1 and (run/cat/'train'/'t_max-150').is_dir()
        assert proto['selection']['tuned_on_test'] is False and proto['selection']['training']['t_max'] == int(sel[sel.winner].t_max.iloc[0])
        assert (proto['config']['draws'], proto['selection']['draws']) == (DEMO_QUICK_DRAWS, 1)   # selected with one draw, tested with the average
    bank = pd.read_csv(run/'baseline_metrics.csv', index_col=0)          # the memory bank beside GLAD, same metrics
    assert list(bank.index) == ['brick', 'coffee', 'mean'] and bank['image_auroc'].between(0, 1).all()
    assert 'memory bank' in r.stdout and 'GLAD - bank' in r.stdout
    for cat in ('brick', 'coffee'):
        proto = json.loads((run/cat/'baseline'/'protocol.json').read_text())
        assert proto['method'] == 'memory_bank' and proto['config']['layers'] == json.loads((run/cat/'protocol.json').read_text())['config']['layers']
    html = (run/'report.html').read_text()
    assert 'Image ROC' in html and 'PRO curve' in html and 'chosen step' in html

def test_tie_average_benchmark_reads_the_demo_run(quick_run):
    "benchmarks/tie_average.py re-scores what the demo wrote: the average column is the run's own figures, and so is the pick where nothing was averaged."
    d, env, r = quick_run
    assert r.returncode == 0, r.stderr[-3000:]
    sys.path.insert(0, str(ROOT/'benchmarks'))
    import tie_average
    t, want = tie_average.compare(d/'run'), pd.read_csv(d/'run'/'metrics.csv', index_col=0)
    assert list(t.index) == ['brick', 'coffee', 'mean']   # the bank's result folders are left out
    alone = [c for c in ('brick', 'coffee') if t.n_fused[c] == 0]
    for c in ('brick', 'coffee'):   # a tie across start steps (the quick grid varies only T0) reconstructs the test set once per start step
        proto = json.loads((d/'run'/c/'protocol.json').read_text())
        assert t.n_passes[c] == 1 + len({tuple(m[4:]) for m in proto['config']['fuse'] if len(m) > 4}) and t.n_fused[c] == len(proto['config']['fuse'])
    for k in ('image_auroc', 'pixel_auroc', 'aupro'):   # this process's threads may round the blur differently
        assert abs(t[f'average {k}'] - want[k]).max() < 1e-4 and (abs(t[f'pick {k}'] - want[k])[alone].max() if alone else 0) < 1e-4
    with pytest.raises(FileNotFoundError, match='no GLAD result folder'): tie_average.compare(d/'demo')   # a folder without results: named, not a KeyError

def test_map_levers_benchmark_reads_the_demo_run(quick_run):
    "benchmarks/map_levers.py re-scores GLAD and the bank the demo wrote: 'as run' is the run's own figures; the position z-score is an independent numpy computation."
    import numpy as np
    d, env, r = quick_run
    assert r.returncode == 0, r.stderr[-3000:]
    sys.path.insert(0, str(ROOT/'benchmarks'))
    import map_levers
    t = map_levers.compare([d/'run'])
    glad, bank = (pd.read_csv(d/'run'/f, index_col=0) for f in ('metrics.csv', 'baseline_metrics.csv'))
    for c in ('brick', 'coffee'):
        row = t.loc[(f'run/{c}', 'as run')]
        for k in ('image_auroc', 'pixel_auroc', 'aupro'):   # this process's threads may round the blur differently
            assert abs(row[f'tie average {k}'] - glad.loc[c, k]) < 1e-4 and abs(row[f'bank {k}'] - bank.loc[c, k]) < 1e-4
        assert t.loc[(f'run/{c}', 'reverse'), 'bank pixel_auroc'] == row['bank pixel_auroc']   # the bank has no reverse direction
    assert set(t.loc['mean'].index) == set(map_levers.LEVERS)
    from glad_nb.core import GLADConfig
    c3 = GLADConfig(layers=(1, 2, 3))   # what each lever scores with
    test = [(map_levers.lever_cfg(c3, 'layers -deepest', False).layers, (1, 2)), (map_levers.lever_cfg(c3, 'layers -shallowest', True).layers, (2, 3)),
            (map_levers.lever_cfg(c3, 'reverse', False).reverse, True), (map_levers.lever_cfg(c3, 'reverse', True), c3), (map_levers.lever_cfg(c3, 'position z', False), c3)]
    assert all(got == want for got, want in test), test
    assert map_levers.lever_cfg(GLADConfig(layers=(3,)), 'layers -deepest', False) is None   # one layer: nothing to drop
    g = torch.Generator().manual_seed(0); maps = torch.rand(7, 5, 5, generator=g); normal = np.array([1, 1, 0, 1, 1, 0, 1], bool)
    want = np.empty((7, 5, 5))
    for i in range(7):   # numpy, the reference built by deleting the map itself
        ref = np.delete(maps.numpy().astype(np.float64), [j for j in range(7) if not normal[j] or j == i], axis=0)
        want[i] = (maps[i].numpy() - ref.mean(0)) / (ref.std(0, ddof=1) + 0.1 * ref.std(ddof=1))
    assert np.allclose(map_levers.position_z(maps, normal), want, atol=1e-6)
    with pytest.raises(ValueError, match='at least 3 normal'): map_levers.position_z(maps, np.eye(7, dtype=bool)[0] | np.eye(7, dtype=bool)[1])
    with pytest.raises(FileNotFoundError, match='memory bank beside it'): map_levers.compare([d/'demo'])

def test_more_training_benchmark_reads_the_demo_run(quick_run, tmp_path):
    "benchmarks/more_training.py scores the kept model as the run did (its winner alone), trains it further elsewhere, and leaves the run as it was."
    d, env, r = quick_run
    assert r.returncode == 0, r.stderr[-3000:]
    sys.path.insert(0, str(ROOT/'benchmarks'))
    import more_training, tie_average
    from glad_nb.checkpoints import list_checkpoints
    before = sorted((p, p.stat().st_mtime_ns) for p in (d/'run'/'brick').rglob('*'))
    t = more_training.study(d/'run', 'demo', d/'demo', 'brick', more=2, keep=tmp_path/'more').set_index('stage')
    pick, bank = tie_average.compare(d/'run').loc['brick'], pd.read_csv(d/'run'/'baseline_metrics.csv', index_col=0).loc['brick']
    tc = json.loads((more_training.kept_training(d/'run', 'brick')[1]/'train_config.json').read_text())['config']
    assert tc['steps'] == 2 * 40 and more_training.kept_training(d/'run', 'brick')[1].name.endswith('-steps-80')   # the quick recipe's kept training, trained on
    assert t.loc['the model', 'steps'] == tc['steps'] and t.loc['2 more steps', 'steps'] == tc['steps'] + 2
    for k in ('image_auroc', 'pixel_auroc', 'aupro'):   # reconstructed again here: this process's threads may round differently
        assert abs(t.loc['the model', k] - pick[f'pick {k}']) < 1e-4 and abs(t.loc['memory bank (brick/baseline)', k] - bank[k]) < 1e-9
        assert 0 <= t.loc['2 more steps', k] <= 1
    assert [s for s, _ in list_checkpoints(tmp_path/'more')][-1:] == [2]   # the further training went to --keep
    from glad_nb.checkpoints import use_checkpoint
    from glad_nb.core import state_hash
    from glad_nb.pipeline import GLAD
    trained = use_checkpoint(GLAD.load(d/'run'/'brick'/'model', device='cpu'), tmp_path/'more', 2).backbone.unet
    assert t.loc['2 more steps', 'unet'] == state_hash(trained)[:12] != t.loc['the model', 'unet']   # the scores after more steps are the further-trained weights'
    assert sorted((p, p.stat().st_mtime_ns) for p in (d/'run'/'brick').rglob('*')) == before                          # and the run is untouched
    with pytest.raises(FileNotFoundError, match='no trained model'): more_training.study(d/'run', 'demo', d/'demo', 'grass')

def test_recipe_benchmark_on_a_run_without_the_longer_training_gives_what_the_recipe_gives(quick_run, tmp_path):
    "more_training.py --recipe, on a run made with AUTO_LONGER = 1 (no longer training, as before Round 12), gives the weights, choice and scores the recipe's own run has."
    d, env, r = quick_run
    assert r.returncode == 0, r.stderr[-3000:]
    old = tmp_path/'old'   # the real writer, with the recipe's longer training switched off
    code = ("import sys, glad_nb.experiments as e; e.AUTO_LONGER = 1; from glad_nb.cli import main; "
            f"sys.exit(main(['demo', '--quick', '--category', 'brick', '--out', {str(old)!r}, '--no-progress', '--jobs', '1']))")
    o = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=ROOT, env={**os.environ, 'OMP_NUM_THREADS': '1', **env}, timeout=900)
    assert o.returncode == 0, o.stderr[-3000:]
    proto = json.loads((old/'brick'/'protocol.json').read_text())
    assert 'steps' not in proto['selection']['training'] and not list((old/'brick'/'train').glob('*steps*'))   # a run without it
    before = sorted((p, p.stat().st_mtime_ns) for p in old.rglob('*'))
    b = subprocess.run([sys.executable, str(ROOT/'benchmarks'/'more_training.py'), str(old), '--dataset', 'demo', '--root', str(d/'demo'), '--category', 'brick',
                        '--recipe', '--json', str(tmp_path/'t.json')], capture_output=True, text=True, cwd=ROOT, env={**os.environ, 'OMP_NUM_THREADS': '1'}, timeout=900)
    assert b.returncode == 0, b.stderr[-3000:]
    t = pd.read_json(tmp_path/'t.json').set_index('stage')
    from glad_nb.core import state_hash
    from glad_nb.pipeline import GLAD
    new = GLAD.load(d/'run'/'brick'/'model', device='cpu')   # the recipe's own run (quick_run, this code)
    assert t.loc['recipe: longer, selected again', 'unet'] == state_hash(new.backbone.unet)[:12] and t.loc['recipe: longer, selected again', 'steps'] == 80
    for k in ('T0', 'tau', 'pixel_weight', 'sigma'): assert t.loc['recipe: longer, selected again', k] == getattr(new.cfg, k)   # the same choice
    assert t.loc['recipe: longer, selected again', 'fused'] == len(new.cfg.fuse)
    m, as_run = pd.read_csv(d/'run'/'metrics.csv', index_col=0).loc['brick'], pd.read_csv(old/'brick'/'metrics.csv').iloc[0]
    bank = pd.read_csv(d/'run'/'baseline_metrics.csv', index_col=0).loc['brick']
    for k in ('image_auroc', 'pixel_auroc', 'aupro'):
        assert abs(t.loc['recipe: longer, selected again', k] - m[k]) < 1e-4 and abs(t.loc['as run (40 steps)', k] - as_run[k]) < 1e-9   # the same scores (JSON keeps 15 digits)
        assert abs(t.loc["memory bank (the recipe's settings)", k] - bank[k]) < 1e-4   # and the bank the recipe's own run wrote beside it
    assert sorted((p, p.stat().st_mtime_ns) for p in old.rglob('*')) == before                                   # the run is untouched
    e = subprocess.run([sys.executable, str(ROOT/'benchmarks'/'more_training.py'), str(d/'run'), '--dataset', 'demo', '--root', str(d/'demo'), '--category', 'brick', '--recipe'],
                       capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert e.returncode == 2 and 'already trained the kept model longer' in e.stderr   # a run with it is refused

def test_two_processes_give_what_one_gives_bit_for_bit(quick_run):
    "A category run in a worker process (`--jobs 2`) gives what it gives in the main process alone: same weights, scores, row."
    from safetensors.torch import load_file
    d, env, r = quick_run
    assert r.returncode == 0 and 'in 2 processes' in r.stdout, r.stderr[-3000:]
    one = glad_nb('demo', '--quick', '--category', 'coffee', '--out', str(d/'one'), '--no-progress', '--jobs', '1', env_extra=env)   # one category: half the time
    assert one.returncode == 0 and 'processes' not in one.stdout, one.stderr[-3000:]
    for f in ('metrics.csv', 'baseline_metrics.csv'):
        assert (d/'one'/f).read_text().splitlines()[1] == next(l for l in (d/'run'/f).read_text().splitlines() if l.startswith('coffee,'))
    for cat in ('coffee',):
        assert (d/'one'/cat/'per_image.csv').read_bytes() == (d/'run'/cat/'per_image.csv').read_bytes()
        wa, wb = (load_file(next((d/r/cat/'model'/'backbone'/'unet').glob('*.safetensors'))) for r in ('one', 'run'))
        assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)

def test_rerun_resumes_and_different_run_is_refused(quick_run):
    d, env, _ = quick_run
    again = glad_nb('demo', '--quick', '--category', 'brick', 'coffee', '--out', str(d/'run'), '--no-progress', env_extra=env)
    assert again.returncode == 0 and 'already evaluated' in again.stdout
    other = glad_nb('demo', '--quick', '--category', 'brick', '--seed', '1', '--out', str(d/'run'), env_extra=env)
    assert other.returncode == 4 and 'seed: 0 there, 1 now' in other.stderr and '--overwrite' in other.stderr

def test_predict_scores_a_folder(quick_run, tmp_path):
    d, env, _ = quick_run
    imgs = d/'demo'/'brick'/'test'/'crack'
    r = glad_nb('predict', '--model', str(d/'run'/'brick'/'model'), '--images', str(imgs), '--out', str(tmp_path/'p'))
    assert r.returncode == 0, r.stderr[-3000:]
    scores = pd.read_csv(tmp_path/'p'/'scores.csv')
    assert len(scores) == len(list(imgs.glob('*.png'))) and len(list((tmp_path/'p'/'overlays').glob('*.png'))) == len(scores)

@pytest.mark.parametrize('args,code,msg', [
    (['demo', '--category', 'bricks'], 2, "unknown demo category ['bricks']"),
    (['train', '--dataset', 'mvtec', '--root', '/nonexistent/mvtec'], 2, '/nonexistent/mvtec does not exist'),
    (['train', '--dataset', 'mvtec'], 2, '--root is required'),
    (['bench', '--dataset', 'kolektor'], 2, "invalid choice: 'kolektor'"),
])
def test_bad_arguments(tmp_path, args, code, msg):
    r = glad_nb(*args, '--out', str(tmp_path/'o'))
    assert r.returncode == code and msg in r.stderr, (r.returncode, r.stderr)

def test_missing_weights_and_unknown_category(tmp_path):
    root = tmp_path/'mvtec'; (root/'carpet'/'train'/'good').mkdir(parents=True)
    r = glad_nb('train', '--dataset', 'mvtec', '--root', str(root), '--category', 'carpet', '--out', str(tmp_path/'o'))
    assert r.returncode == 3 and '--weights is required' in r.stderr, r.stderr
    r = glad_nb('train', '--dataset', 'mvtec', '--root', str(root), '--category', 'wood', '--out', str(tmp_path/'o2'))
    assert r.returncode == 2 and "unknown mvtec category ['wood']" in r.stderr and 'carpet' in r.stderr, r.stderr
    sd = tmp_path/'sd'; sd.mkdir()
    r = glad_nb('train', '--dataset', 'mvtec', '--root', str(root), '--category', 'carpet', '--weights', str(sd), '--out', str(tmp_path/'o3'))
    assert r.returncode == 3 and 'unet' in r.stderr, r.stderr

def test_output_folder_with_foreign_files_is_refused(tmp_path):
    out = tmp_path/'mine'; out.mkdir(); (out/'notes.txt').write_text('keep me')
    r = glad_nb('demo', '--quick', '--category', 'brick', '--out', str(out), env_extra={'GLAD_NB_DEMO': str(tmp_path/'demo')})
    assert r.returncode == 4 and 'not a glad_nb run' in r.stderr and (out/'notes.txt').exists()

def test_bench_with_a_short_last_batch(tmp_path):
    r = glad_nb('bench', '--dataset', 'demo', '--n-images', '3', '--batch-size', '2')
    assert r.returncode == 0, r.stderr[-2000:]
    assert 'images/s' in r.stdout and 'passes per image: unet 10.0' in r.stdout, r.stdout

def test_bench_times_every_noise_draw():
    unet = lambda *sets: float(re.search(r'passes per image: unet ([\d.]+)', glad_nb('bench', '--dataset', 'demo', '--n-images', '2', '--set', 'tau=0', *sets).stdout).group(1))
    one, two = unet(), unet('draws=2')   # ADS off: the same steps for every draw
    assert two == 2 * one > 0, (one, two)
