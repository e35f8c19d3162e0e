"""glad-nb against bad inputs and faults, as a hostile user would try it: every case asserts the exit code, a one-line
message naming the culprit, no traceback, and that no input or earlier result was lost or changed.
`main()` runs in-process and the tiny inputs are shared (conftest.py), so the whole file takes well under a minute."""
import hashlib, os, pickle, shutil
from pathlib import Path
import pandas as pd
import pytest
import glad_nb.cli as cli
import glad_nb.commands as commands
from glad_nb.cli import main
from glad_nb.runs import read_run, open_run
from conftest import SMALL, ctrl_c_default

def snapshot(*folders)->dict:
    "sha256 of every file below the folders: to show that nothing was lost or changed."
    out = {}
    for f in folders:
        f = Path(f)
        for p in sorted([f] if f.is_file() else f.rglob('*')):
            if p.is_file(): out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out

def run(capsys, *argv):
    "(exit code, last stderr line, whole stderr) of one in-process call."
    capsys.readouterr()
    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err
    lines = [l for l in err.strip().splitlines() if l.strip()]
    assert 'Traceback' not in err, err
    return rc, (lines[-1] if lines else ''), err

def bad(capsys, code, needles, *argv):
    rc, line, err = run(capsys, *argv)
    assert rc == code, (rc, err)
    assert line.startswith('glad-nb') and 'error' in line, line
    for n in ([needles] if isinstance(needles, str) else needles): assert str(n) in line, (n, line)
    return line

def _images(tmp_path, tiny_inputs, n=3):
    d = tmp_path/'imgs'; d.mkdir()
    for k, f in enumerate(sorted((tiny_inputs['root']/'pcb1'/'test'/'good').glob('*.png')) + sorted((tiny_inputs['root']/'pcb1'/'test'/'bad').glob('*.png'))):
        if k < n: shutil.copy(f, d/f'img{k}.png')
    return d

def _train(i, out, *extra):
    return ['train', '--dataset', 'visa', '--root', i['root'], '--category', 'pcb1', '--weights', i['sd'], '--dino', i['dino'],
            '--out', out, '--steps', '4', '--batch-size', '2', '--no-progress', *SMALL, 'ckpt_every=2', *extra]

def _testcmd(i, out, *extra):
    return ['test', '--dataset', 'visa', '--root', i['root'], '--category', 'pcb1', '--out', out, '--no-progress', *extra]

# --- 1. run folders: inputs are never deleted, other runs' results never reused -------------------------

def test_predict_into_its_own_images_folder_with_overwrite(capsys, trained_run, tiny_inputs, tmp_path):
    imgs = _images(tmp_path, tiny_inputs); before = snapshot(imgs)
    bad(capsys, 2, ['--images', str(imgs)], 'predict', '--model', trained_run/'pcb1'/'model', '--images', imgs, '--out', imgs, '--overwrite')
    assert snapshot(imgs) == before

def test_predict_into_a_folder_containing_the_images(capsys, trained_run, tiny_inputs, tmp_path):
    imgs = _images(tmp_path, tiny_inputs); before = snapshot(tmp_path)
    bad(capsys, 2, 'contains the input --images', 'predict', '--model', trained_run/'pcb1'/'model', '--images', imgs, '--out', tmp_path, '--overwrite')
    assert snapshot(tmp_path) == before

def test_predict_into_the_model_run(capsys, trained_run, tiny_inputs, tmp_path):
    imgs = _images(tmp_path, tiny_inputs); before = snapshot(trained_run)
    bad(capsys, 2, '--model', 'predict', '--model', trained_run/'pcb1'/'model', '--images', imgs, '--out', trained_run, '--overwrite')
    assert snapshot(trained_run) == before

def test_train_into_the_dataset_root(capsys, tiny_inputs):
    before = snapshot(tiny_inputs['root'])
    bad(capsys, 2, '--root', *_train(tiny_inputs, tiny_inputs['root'], '--overwrite'))
    assert snapshot(tiny_inputs['root']) == before

def test_overwrite_never_deletes_a_folder_glad_nb_did_not_write(capsys, tmp_path):
    out = tmp_path/'mine'; out.mkdir(); (out/'thesis.tex').write_text('years of work')
    bad(capsys, 4, ['not a glad_nb run', str(out)], 'demo', '--quick', '--out', out, '--overwrite')
    assert (out/'thesis.tex').read_text() == 'years of work'

def test_test_into_a_demo_run_is_refused_naming_the_difference(capsys, tiny_inputs, tmp_path):
    out = tmp_path/'demo-run'
    open_run(out, 'demo', dict(dataset='demo', seed=0, quick=True), ('dataset', 'seed', 'quick'))
    (out/'pcb1').mkdir(); (out/'pcb1'/'metrics.csv').write_text('image_auroc\n0.99\n'); before = snapshot(out)
    bad(capsys, 4, ['demo', "dataset: 'demo' there, 'visa' now"], *_testcmd(tiny_inputs, out, '--weights', tiny_inputs['sd'], '--dino', tiny_inputs['dino'], *SMALL))
    assert snapshot(out) == before

def test_test_of_other_data_into_a_train_run(capsys, run_copy, tiny_inputs, tmp_path):
    other = tmp_path/'visa2'; shutil.copytree(tiny_inputs['root'], other); before = snapshot(run_copy)
    bad(capsys, 4, ['root:', str(other)], 'test', '--dataset', 'visa', '--root', other, '--category', 'pcb1', '--out', run_copy, *SMALL)
    assert snapshot(run_copy) == before

def test_train_with_another_seed_into_a_run(capsys, run_copy, tiny_inputs):
    before = snapshot(run_copy)
    bad(capsys, 4, ["seed: 0 there, 1 now", '--overwrite'], *_train(tiny_inputs, run_copy, '--seed', '1'))
    assert snapshot(run_copy) == before

def test_same_evaluation_with_another_precision(capsys, run_copy, tiny_inputs):
    assert run(capsys, *_testcmd(tiny_inputs, run_copy, '--preset', 'default', *SMALL))[0] == 0
    bad(capsys, 4, "precision: 'auto' there, 'fp32' now", *_testcmd(tiny_inputs, run_copy, '--preset', 'default', '--precision', 'fp32', *SMALL))
    # --overwrite replaces only that evaluation, never the trained model
    model = snapshot(run_copy/'pcb1'/'model', run_copy/'pcb1'/'train')
    assert run(capsys, *_testcmd(tiny_inputs, run_copy, '--preset', 'default', '--precision', 'fp32', '--overwrite', *SMALL))[0] == 0
    assert snapshot(run_copy/'pcb1'/'model', run_copy/'pcb1'/'train') == model

# --- 2. nothing executed ---------------------------------------------------------------------------------

class _Evil:
    def __init__(self, marker): self.marker = marker
    def __reduce__(self): return (Path.write_text, (Path(self.marker), 'pwned'))

def test_planted_pickle_in_a_training_checkpoint_is_not_executed(capsys, run_copy, tiny_inputs, tmp_path):
    marker = tmp_path/'pwned'
    ck = run_copy/'pcb1'/'train'/'checkpoints'/'step_000006'
    shutil.copytree(run_copy/'pcb1'/'train'/'checkpoints'/'step_000004', ck)
    for f in ck.glob('training_state.*'): f.unlink()
    with open(ck/'training_state.pt', 'wb') as f: pickle.dump(_Evil(marker), f)
    bad(capsys, 3, ['training_state.pt', 'never unpickles'], *_train(tiny_inputs, run_copy, '--steps', '8'))
    assert not marker.exists()

def test_planted_pickle_as_dino_checkpoint_is_not_executed(capsys, tiny_inputs, tmp_path):
    marker, evil = tmp_path/'pwned', tmp_path/'dino_vitbase8.pth'
    with open(evil, 'wb') as f: pickle.dump(_Evil(marker), f)
    i = {**tiny_inputs, 'dino': evil}
    bad(capsys, 3, ['--dino', str(evil)], *_train(i, tmp_path/'out'))
    assert not marker.exists() and not (tmp_path/'out').exists()

# --- 3. errors, not tracebacks ----------------------------------------------------------------------------

@pytest.mark.parametrize('argv,needle', [
    (['train', '--dataset', 'demo', '--steps', '0'], 'argument --steps: 0 is out of range'),
    (['demo', '--batch-size', '-3'], 'argument --batch-size: -3 is out of range'),
    (['demo', '--batch-size', '0'], 'argument --batch-size: 0 is out of range'),
    (['bench', '--dataset', 'demo', '--n-images', '0'], 'argument --n-images: 0 is out of range'),
    (['demo', '--seed', '-1'], 'argument --seed: -1 is out of range'),
    (['demo', '--seed', 'abc'], "argument --seed: 'abc' is not an integer"),
    (['demo', '--category', 'bricks'], "unknown demo category ['bricks']"),
    (['bench', '--dataset', 'kolektor'], "invalid choice: 'kolektor'"),
    (['predict', '--model', 'm', '--images', 'i', '--seed', '3'], 'unrecognized arguments: --seed 3'),
    (['demo', '--device', 'cuda:7'], '--device cuda:7: no such device on this machine; found: cpu'),
    (['demo', '--device', 'banana'], "--device 'banana' is not a device name"),
    (['bench', '--dataset', 'demo', '--precision', 'fp16', '--device', 'cpu'], '--precision fp16 needs a CUDA device'),
])
def test_bad_numbers_and_devices(capsys, tmp_path, argv, needle):
    bad(capsys, 2, needle, *argv, *(['--out', tmp_path/'o'] if argv[0] == 'demo' else []))
    assert not (tmp_path/'o').exists()

@pytest.mark.parametrize('sets,needle', [
    (['tua=0.3'], '--set tua: not a setting of this command; did you mean tau?'),
    (['tau=abc'], '--set tau=abc: expected a finite value of type float'),
    (['tau=-1'], 'tau=-1.0 is out of range'),
    (['lr=1e-4'], '--set lr: not a setting of this command'),
    (['seed=3'], '--set seed: use --seed instead'),
])
def test_bad_settings(capsys, tiny_inputs, tmp_path, sets, needle):
    bad(capsys, 2, needle, *_testcmd(tiny_inputs, tmp_path/'o', '--weights', tiny_inputs['sd'], '--dino', tiny_inputs['dino'], '--set', *sets))
    assert not (tmp_path/'o').exists()

def test_dataset_errors(capsys, tiny_inputs, tmp_path):
    i = tiny_inputs
    bad(capsys, 2, "unknown visa category ['pcb9']", *_train(i, tmp_path/'o', '--category', 'pcb9'))
    bad(capsys, 2, ['--root', '/nonexistent/visa', 'does not exist'], *_train({**i, 'root': '/nonexistent/visa'}, tmp_path/'o'))
    empty = tmp_path/'empty'; empty.mkdir()
    bad(capsys, 2, ['--root', 'holds no visa category'], 'train', '--dataset', 'visa', '--root', empty, '--weights', i['sd'], '--dino', i['dino'], '--out', tmp_path/'o')
    assert not (tmp_path/'o').exists()

def test_unreadable_training_image_stops_before_step_one(capsys, tiny_inputs, tmp_path):
    root = tmp_path/'visa'; shutil.copytree(tiny_inputs['root'], root)
    (root/'pcb1'/'train'/'good'/'train002.png').write_text('not an image')
    bad(capsys, 2, ['1 unreadable file', 'train002.png'], *_train({**tiny_inputs, 'root': root}, tmp_path/'out'))
    assert not (tmp_path/'out').exists()      # nothing claimed: the corrected rerun is not refused

def test_anomaly_without_mask_is_a_data_error(capsys, tiny_inputs, tmp_path):
    root = tmp_path/'visa'; shutil.copytree(tiny_inputs['root'], root)
    next((root/'pcb1'/'ground_truth'/'bad').glob('*.png')).unlink()
    bad(capsys, 2, ['--root', str(root)], *_testcmd({**tiny_inputs, 'root': root}, tmp_path/'o', '--weights', tiny_inputs['sd'], '--dino', tiny_inputs['dino'], *SMALL))

def test_missing_and_corrupt_weights(capsys, tiny_inputs, tmp_path):
    i = tiny_inputs
    bad(capsys, 3, '--weights is required', 'train', '--dataset', 'visa', '--root', i['root'], '--out', tmp_path/'o')
    sd = tmp_path/'sd'; shutil.copytree(i['sd'], sd)
    shutil.rmtree(sd/'vae')
    bad(capsys, 3, ['--weights', 'vae'], *_train({**i, 'sd': sd}, tmp_path/'o'))
    shutil.copytree(i['sd']/'vae', sd/'vae')
    w = next((sd/'unet').glob('*.safetensors')); w.write_bytes(w.read_bytes()[:1000])
    bad(capsys, 3, ['--weights', str(sd)], *_train({**i, 'sd': sd}, tmp_path/'o'))
    garbage = tmp_path/'dino.pth'; garbage.write_bytes(b'\x00garbage' * 100)
    bad(capsys, 3, ['--dino', str(garbage)], *_train({**i, 'dino': garbage}, tmp_path/'o'))
    assert not (tmp_path/'o').exists()

def test_broken_model_folders(capsys, run_copy, tiny_inputs, tmp_path):
    imgs = _images(tmp_path, tiny_inputs)
    model = run_copy/'pcb1'/'model'
    (model/'config.json').write_text('{"T0": 450,')
    bad(capsys, 3, ['config.json', 'corrupt'], 'predict', '--model', model, '--images', imgs, '--out', tmp_path/'p')
    bad(capsys, 3, 'not a glad_nb model folder', 'predict', '--model', run_copy/'pcb1', '--images', imgs, '--out', tmp_path/'p')
    bad(capsys, 3, ['--model', 'does not exist'], 'predict', '--model', tmp_path/'nomodel', '--images', imgs, '--out', tmp_path/'p')
    assert not (tmp_path/'p').exists()

def test_moved_or_changed_dino_file(capsys, trained_run, tiny_inputs, tmp_path):
    imgs, i = _images(tmp_path, tiny_inputs), tiny_inputs
    dino = tmp_path/'dino'/'dino.pth'; dino.parent.mkdir(); shutil.copy(i['dino'], dino)
    out = tmp_path/'run'
    assert run(capsys, *_train({**i, 'dino': dino}, out, '--steps', '2'))[0] == 0
    dino.write_bytes(dino.read_bytes() + b'\0')
    bad(capsys, 3, ['changed since', str(dino)], 'predict', '--model', out/'pcb1'/'model', '--images', imgs, '--out', tmp_path/'p')
    dino.unlink()
    bad(capsys, 3, ['do not exist', str(dino)], 'predict', '--model', out/'pcb1'/'model', '--images', imgs, '--out', tmp_path/'p')

def test_paper_checkpoint_that_was_never_trained(capsys, run_copy, tiny_inputs):
    bad(capsys, 3, ['checkpoint step 4000 not found', '--steps >= 4000'], *_testcmd(tiny_inputs, run_copy, '--preset', 'paper', *SMALL))

def test_output_folder_that_cannot_be_written(capsys, tmp_path):
    f = tmp_path/'afile'; f.write_text('x')
    bad(capsys, 2, ['--out', 'is a file'], 'demo', '--quick', '--out', f)
    bad(capsys, 2, ['--out', 'cannot be created'], 'demo', '--quick', '--out', f/'sub')
    assert f.read_text() == 'x'

def test_predict_inputs(capsys, trained_run, tiny_inputs, tmp_path):
    model = trained_run/'pcb1'/'model'
    f = tmp_path/'one.png'; shutil.copy(next((tiny_inputs['root']/'pcb1'/'test'/'good').glob('*.png')), f)
    bad(capsys, 2, ['--images', 'is not a folder'], 'predict', '--model', model, '--images', f, '--out', tmp_path/'p')
    empty = tmp_path/'empty'; empty.mkdir()
    bad(capsys, 2, ['--images', 'holds no images'], 'predict', '--model', model, '--images', empty, '--out', tmp_path/'p')

def test_predict_skips_unreadable_images_and_keeps_names_apart(capsys, trained_run, tiny_inputs, tmp_path):
    imgs = _images(tmp_path, tiny_inputs)
    shutil.copy(imgs/'img0.png', imgs/'img1.bmp')        # same stem as img1.png
    (imgs/'broken.png').write_bytes(b'\x89PNG\r\n\x1a\n' + b'\0' * 20)
    before, out = snapshot(imgs), tmp_path/'p'
    bad(capsys, 2, ['skipped 1 unreadable image', 'broken.png', '--skip-bad'], 'predict', '--model', trained_run/'pcb1'/'model', '--images', imgs, '--out', out)
    df = pd.read_csv(out/'scores.csv')
    assert len(df) == 5 and (df.status == 'ok').sum() == 4 and df.status[df.path.str.endswith('broken.png')].iloc[0].startswith('skipped')
    assert sorted(p.name for p in (out/'overlays').iterdir()) == ['img0.png', 'img1_bmp.png', 'img1_png.png', 'img2.png']
    assert read_run(out)['attempts'][-1]['status'] == 'failed' and snapshot(imgs) == before
    # the same command with --skip-bad is the same run: not refused, exit 0
    assert run(capsys, 'predict', '--model', trained_run/'pcb1'/'model', '--images', imgs, '--out', out, '--skip-bad')[0] == 0
    assert read_run(out)['attempts'][-1]['status'] == 'done'

def test_unexpected_errors_are_one_line_with_the_traceback_in_a_file(capsys, monkeypatch, tmp_path):
    def boom(args): raise ZeroDivisionError('division by zero in a bug')
    monkeypatch.setitem(commands.COMMANDS, 'demo', boom)
    rc, line, _ = run(capsys, 'demo', '--out', tmp_path/'o')
    assert rc == 1 and 'unexpected error: ZeroDivisionError: division by zero in a bug' in line
    log = Path(line.split('traceback in ')[1].split(';')[0])
    assert 'Traceback' in log.read_text() and 'boom' in log.read_text()
    with pytest.raises(ZeroDivisionError): main(['demo', '--out', str(tmp_path/'o'), '--debug'])
    monkeypatch.setenv('GLAD_NB_DEBUG', '1')
    with pytest.raises(ZeroDivisionError): main(['demo', '--out', str(tmp_path/'o')])

def test_interrupt_says_whether_there_is_anything_to_resume(capsys, monkeypatch, tmp_path):
    def interrupted(args):
        args._run = open_run(tmp_path/'o', 'demo', dict(seed=0), ('seed',))[0]
        raise KeyboardInterrupt
    monkeypatch.setitem(commands.COMMANDS, 'demo', interrupted)
    rc, line, _ = run(capsys, 'demo', '--out', tmp_path/'o')
    assert rc == 130 and 'no checkpoint was written yet' in line
    assert read_run(tmp_path/'o')['attempts'][-1]['status'] == 'interrupted'
    (tmp_path/'o'/'brick'/'train'/'checkpoints'/'step_000200').mkdir(parents=True)
    rc, line, _ = run(capsys, 'demo', '--out', tmp_path/'o')
    assert rc == 130 and 'resume from' in line and 'step_000200' in line

def test_exit_codes_are_documented(capsys):
    with pytest.raises(SystemExit): cli.build_parser().parse_args(['train', '--help'])
    out = capsys.readouterr().out
    for code in (0, 1, 2, 3, 4, 130): assert f'{code} ' in out.split('exit codes:')[1]
    assert 'example:' in out
    readme = (Path(__file__).resolve().parent.parent/'README.md').read_text()
    for code, what in cli.EXIT_CODES.items(): assert f"| {code} | {what} |" in readme

@pytest.mark.parametrize('sig,code,said', [('SIGINT', 130, 'interrupted'), ('SIGTERM', 143, 'terminated (SIGTERM)')])
def test_ctrl_c_or_sigterm_and_the_rerun_ends_where_an_uninterrupted_run_ends(tiny_inputs, tmp_path, sig, code, said):
    "A real SIGINT (Ctrl-C) or SIGTERM to a training process: its exit code, then the same command resumes to bit-identical weights."
    import signal, subprocess, sys, time
    from safetensors.torch import load_file
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    args = lambda out: [sys.executable, '-m', 'glad_nb.cli'] + [a if a != 'ckpt_every=2' else 'ckpt_every=10'
                                                                 for a in map(str, _train(tiny_inputs, out, '--steps', '40'))]
    p = subprocess.Popen(args(tmp_path/'a'), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, preexec_fn=ctrl_c_default)
    ck = tmp_path/'a'/'pcb1'/'train'/'checkpoints'
    t0 = time.time()
    while not (ck/'step_000010').exists() and p.poll() is None and time.time() - t0 < 300: time.sleep(0.05)
    p.send_signal(getattr(signal, sig)); _, err = p.communicate(timeout=300)
    if p.returncode == 0: pytest.skip('training finished before the interrupt arrived')
    assert p.returncode == code and f'{said}; run the same command again to resume from' in err and 'Traceback' not in err, err
    again = subprocess.run(args(tmp_path/'a'), capture_output=True, text=True, env=env)
    whole = subprocess.run(args(tmp_path/'b'), capture_output=True, text=True, env=env)
    assert again.returncode == 0 and whole.returncode == 0, again.stderr[-2000:] + whole.stderr[-2000:]
    wa, wb = (load_file(next((tmp_path/r/'pcb1'/'model'/'backbone'/'unet').glob('*.safetensors'))) for r in 'ab')
    assert wa.keys() == wb.keys() and all((wa[k] == wb[k]).all() for k in wa)
    assert [a['status'] for a in read_run(tmp_path/'a')['attempts']] == ['interrupted', 'done']

def test_predict_warns_about_squashed_or_tiny_images(capsys, trained_run, tiny_inputs, tmp_path):
    from PIL import Image
    imgs = tmp_path/'odd'; imgs.mkdir()
    Image.new('RGB', (96, 30), (120, 90, 60)).save(imgs/'wide.png'); Image.new('RGB', (10, 10), (120, 90, 60)).save(imgs/'tiny.png')
    with pytest.warns(UserWarning) as rec:
        assert main(['predict', '--model', str(trained_run/'pcb1'/'model'), '--images', str(imgs), '--out', str(tmp_path/'p')]) == 0
    msgs = ' '.join(str(w.message) for w in rec)
    assert 'wide.png is 96x30: aspect ratio beyond 2:1' in msgs and 'tiny.png is 10x10: smaller than half' in msgs
