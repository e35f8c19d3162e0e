"""The README's real-data flow end to end on tiny models: `train` -> `test --preset default` -> `test --preset paper`
(a reachable checkpoint, DINO adaptation, pixel term, reverse map) -> `predict`, all through `glad_nb.cli.main`."""
import json, shutil
from pathlib import Path
import pandas as pd
from glad_nb.cli import main
from glad_nb.runs import read_run
from glad_nb.pipeline import MODEL_JSON
from glad_nb.core import file_sha256
from conftest import SMALL

def _test(i, run, *extra):
    return main(['test', '--dataset', 'visa', '--root', str(i['root']), '--category', 'pcb1', '--out', str(run),
                 '--batch-size', '4', '--no-progress', *extra])

def test_train_writes_a_complete_model_folder(trained_run, tiny_inputs):
    m = trained_run/'pcb1'/'model'
    assert (m/MODEL_JSON).exists() and (m/'backbone').is_dir() and (m/'config.json').exists()
    spec = json.loads((m/'extractor'/'extractor.json').read_text())
    assert spec['kind'] == 'dino' and spec['weights']['sha256'] == file_sha256(tiny_inputs['dino'])   # referenced, not copied
    assert not (m/'extractor'/'weights.safetensors').exists()
    steps = sorted(p.name for p in (trained_run/'pcb1'/'train'/'checkpoints').iterdir())
    assert steps == ['step_000002', 'step_000004']
    run = read_run(trained_run)
    assert run['kind'] == 'train' and run['attempts'][-1]['status'] == 'done' and run['settings']['seed'] == 0

def test_default_and_paper_evaluations_live_side_by_side(run_copy, tiny_inputs, capsys):
    i, run = tiny_inputs, run_copy
    assert _test(i, run, '--preset', 'default', *SMALL) == 0
    assert _test(i, run, '--preset', 'paper', '--set', 'image_size=32', 'feature_size=32', 'ckpt_step=2') == 0
    evals = sorted(p.name for p in (run/'pcb1').iterdir() if p.name.startswith('eval-'))
    assert len(evals) == 2 and evals[0].startswith('eval-default') and evals[1].startswith('eval-paper'), evals
    d, p = (json.loads((run/'pcb1'/e/'protocol.json').read_text()) for e in evals)
    # the default evaluation: the final model, untouched DINO, authors' raw ADS input, no checkpoint claimed
    assert d['preset'] == 'default' and 'checkpoint' not in d and 'dino_adaptation' not in d and d['ads_input'] == 'raw'
    # the paper evaluation names what actually ran: checkpoint 2 and its hash, DINO adapted to epoch 7
    ck = p['checkpoint']
    assert ck['step'] == 2 and 'step_000002' in ck['path'] and all(len(h) == 64 for h in ck['sha256'].values())
    unet = Path(ck['path'])
    assert ck['sha256'] == {f.name:file_sha256(f) for f in unet.glob('*.safetensors')}
    ad = p['dino_adaptation']
    assert ad['epoch'] == 7 and ad['lam'] == 0.0 and p['extractor_hash'] == ad['adapted_hash'] != ad['frozen_hash']
    assert p['backbone_hash'] == ck['unet_hash'] != d['backbone_hash']
    cfg = p['config']
    assert (cfg['reverse'], cfg['pixel_weight'], cfg['half_ads'], cfg['z0_mode'], p['tuned_on_test']) == (True, 1.0, True, 'sample', True)
    assert Path(ad['weights']).exists()
    for e in evals: assert (run/e/'metrics.csv').exists() and (run/e/'report.html').exists()
    sections = read_run(run)['sections']
    assert set(sections) == set(evals) and sections[evals[1]]['preset'] == 'paper'
    # the same evaluation again is reused, not recomputed
    capsys.readouterr()
    assert _test(i, run, '--preset', 'default', *SMALL) == 0
    assert 'already evaluated with these settings' in capsys.readouterr().out

def test_predict_needs_only_the_model_and_scores_do_not_depend_on_the_folder(trained_run, tiny_inputs, tmp_path):
    src = tiny_inputs['root']/'pcb1'/'test'
    a, b = tmp_path/'a', tmp_path/'b'; a.mkdir(); b.mkdir()
    files = sorted((src/'good').glob('*.png')) + sorted((src/'bad').glob('*.png'))
    for k, f in enumerate(files[:3]): shutil.copy(f, a/f'img{k}.png'); shutil.copy(f, b/f'img{k}.png')
    shutil.copy(files[3], b/'img0b.png')            # one more file, sorting between the others
    model = trained_run/'pcb1'/'model'
    assert main(['predict', '--model', str(model), '--images', str(a), '--out', str(tmp_path/'pa'), '--batch-size', '2']) == 0
    assert main(['predict', '--model', str(model), '--images', str(b), '--out', str(tmp_path/'pb'), '--batch-size', '3']) == 0
    sa = pd.read_csv(tmp_path/'pa'/'scores.csv').assign(name=lambda d: d.path.map(lambda p: Path(p).name)).set_index('name')
    sb = pd.read_csv(tmp_path/'pb'/'scores.csv').assign(name=lambda d: d.path.map(lambda p: Path(p).name)).set_index('name')
    assert len(sa) == 3 and len(sb) == 4 and (sa.status == 'ok').all()
    for n in sa.index:
        assert sa.step[n] == sb.step[n]
        assert abs(sa.score[n] - sb.score[n]) <= 1e-5 * max(1.0, abs(sa.score[n])), (n, sa.score[n], sb.score[n])
    assert len(list((tmp_path/'pb'/'overlays').glob('*.png'))) == 4

def test_the_run_explorer_opens_a_test_run(run_copy, tiny_inputs):
    from glad_nb.results import load_run
    assert _test(tiny_inputs, run_copy, '--preset', 'default', *SMALL) == 0
    runs = load_run(run_copy)
    assert any(k.startswith('pcb1/eval-default') for k in runs), list(runs)

def test_multi_class_setting_trains_one_model_and_evaluates_every_category(tiny_inputs, tmp_path):
    from tiny import write_layout_dataset
    root = write_layout_dataset(tmp_path/'visa', 'pcb2', seed=1); write_layout_dataset(root, 'pcb3', seed=2)
    run, i = tmp_path/'run', tiny_inputs
    common = ['--dataset', 'visa', '--root', str(root), '--setting', 'multi', '--out', str(run), '--no-progress', '--batch-size', '4']
    assert main(['train', *common, '--weights', str(i['sd']), '--dino', str(i['dino']), '--steps', '2', *SMALL]) == 0
    assert (run/'multi'/'model'/MODEL_JSON).exists() and not (run/'pcb2'/'model').exists()
    cfg = json.loads((run/'multi'/'model'/'config.json').read_text())
    assert cfg['preset'] == 'default' and cfg['category'] == 'multi'
    assert main(['test', *common, '--preset', 'paper', '--set', 'image_size=32', 'feature_size=32', 'ckpt_step=2']) == 0
    for c in ('pcb2', 'pcb3'):
        e = next((run/c).glob('eval-paper-multi*'))
        p = json.loads((e/'protocol.json').read_text())
        assert p['preset'] == 'paper-multi' and p['config']['category'] == c and p['config']['K'] == 25 and p['checkpoint']['step'] == 2
        assert 'multi/train/checkpoints/step_000002' in p['checkpoint']['path']
    metrics = pd.read_csv(next(run.glob('eval-paper-multi*'))/'metrics.csv', index_col=0)
    assert list(metrics.index) == ['pcb2', 'pcb3', 'mean']
