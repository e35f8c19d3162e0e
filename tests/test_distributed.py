"""Inference split across processes: `glad-nb test` and `glad-nb predict` under `accelerate launch` with 2 CPU processes (gloo)
give the 1-process results, written once by the main process, with no part files left behind."""
import json, os, shutil, subprocess, sys
from pathlib import Path
import numpy as np, pandas as pd
from glad_nb.cli import main
from glad_nb.runs import read_run
from conftest import SMALL

ROOT = Path(__file__).resolve().parent.parent

def _glad_nb(n:int, *argv):
    "glad-nb in this process (n=1) or in n CPU processes through `accelerate launch` (as tests/test_train.py launches training)."
    argv = [str(a) for a in argv]
    if n == 1: assert main(argv) == 0; return
    env = {**os.environ, 'CUDA_VISIBLE_DEVICES': '', 'PYTHONPATH': f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", 'OMP_NUM_THREADS': '1'}
    cmd = [sys.executable, '-m', 'accelerate.commands.launch', '--multi_gpu', '--num_processes', str(n), '--num_machines', '1',
           '--mixed_precision', 'no', '--dynamo_backend', 'no', '-m', 'glad_nb.cli', *argv]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r

def _parts(folder:Path)->list: return [p for p in folder.rglob('.*part*')]

def _close(a, b, what):
    np.testing.assert_allclose(a.astype(float), b.astype(float), rtol=1e-6, atol=1e-12, err_msg=what)

def test_test_and_predict_in_two_processes_equal_one(trained_run, tiny_inputs, tmp_path):
    i = tiny_inputs
    runs = {n:tmp_path/f'run{n}' for n in (1, 2)}
    for n, run in runs.items():
        shutil.copytree(trained_run, run)
        r = _glad_nb(n, 'test', '--dataset', 'visa', '--root', i['root'], '--category', 'pcb1', '--out', run, '--preset', 'default',
                 '--batch-size', '2', '--no-progress', *SMALL)
    assert '(2 processes)' in r.stdout and r.stdout.count('] image AUROC') == 1   # split, and reported once (the memory bank's line beside it)
    name = next(p.name for p in (runs[1]/'pcb1').iterdir() if p.name.startswith('eval-default'))
    m1, m2 = (pd.read_csv(r/name/'metrics.csv', index_col=0) for r in runs.values())
    assert list(m1.index) == list(m2.index) and list(m1.columns) == list(m2.columns)
    _close(m1.values, m2.values, 'metrics.csv')
    p1, p2 = (pd.read_csv(r/'pcb1'/name/'per_image.csv') for r in runs.values())
    assert len(p1) > 2 and list(p1.path) == list(p2.path) and list(p1.label) == list(p2.label) and list(p1.step) == list(p2.step)
    _close(p1.score.values, p2.score.values, 'per_image.csv scores')
    assert not _parts(runs[2]), _parts(runs[2])
    assert json.loads((runs[2]/'pcb1'/name/'protocol.json').read_text())['processes'] == 2
    a1, a2 = (read_run(r)['attempts'] for r in runs.values())
    assert len(a2) == len(a1) and a2[-1]['status'] == 'done'      # one attempt recorded, by the main process

    imgs = tmp_path/'imgs'; imgs.mkdir()                           # an odd number of images and one unreadable file
    src = sorted((i['root']/'pcb1'/'test').rglob('*.png'))
    for k, f in enumerate(src): shutil.copy(f, imgs/f'img{k}.png')
    (imgs/'img2b.png').write_bytes(b'not a png')
    model = trained_run/'pcb1'/'model'
    outs = {n:tmp_path/f'pred{n}' for n in (1, 2)}
    for n, out in outs.items():
        _glad_nb(n, 'predict', '--model', model, '--images', imgs, '--out', out, '--batch-size', '2', '--skip-bad')
    s1, s2 = (pd.read_csv(o/'scores.csv') for o in outs.values())
    assert len(s1) == len(src) + 1 > 3 and list(s1.path) == list(s2.path) and list(s1.status) == list(s2.status)
    assert (s1.status != 'ok').sum() == 1
    ok = s1.status == 'ok'
    assert list(s1.step[ok]) == list(s2.step[ok]) and list(s1.label[ok].fillna(-1)) == list(s2.label[ok].fillna(-1))
    _close(s1.score[ok].values, s2.score[ok].values, 'scores.csv scores')
    for d in ('maps', 'overlays'):
        assert sorted(p.name for p in (outs[1]/d).iterdir()) == sorted(p.name for p in (outs[2]/d).iterdir())
    assert not _parts(outs[2]), _parts(outs[2])
    assert len(read_run(outs[2])['attempts']) == 1
    (outs[2]/'maps'/'stale.npy').write_bytes(b'')                  # --overwrite: the main process alone deletes and recreates
    _glad_nb(2, 'predict', '--model', model, '--images', imgs, '--out', outs[2], '--batch-size', '2', '--skip-bad', '--overwrite')
    assert not (outs[2]/'maps'/'stale.npy').exists() and len(read_run(outs[2])['attempts']) == 1
    _close(pd.read_csv(outs[2]/'scores.csv').score[ok].values, s1.score[ok].values, 'scores.csv after --overwrite')
