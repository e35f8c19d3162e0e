"""Reliability, round 2: run folders and settings, as a hostile user tries them with the CPU recipe on a plain folder.
Nothing is written outside `--out`, one process per run folder, `--overwrite` deletes only glad_nb's files, results are
reused only for the same inputs and settings, SIGTERM ends like Ctrl-C. Each case asserts the exit code, one line naming
the culprit, no traceback, and that nothing outside `--out` (and no user file) changed."""
import json, os, shutil, signal, subprocess, sys, time
from pathlib import Path
import numpy as np
import pandas as pd
import pytest
from PIL import Image
from glad_nb.cli import main
from glad_nb.runs import read_run, LOCK_FILE
from test_reliability import snapshot, run, bad
from conftest import ctrl_c_default

FAST = ['--set', 'image_size=32', 'K=4', 'ckpt_every=1']
ENV = {**os.environ, 'OMP_NUM_THREADS': '1'}

def run_text(capsys, *argv):
    "(exit code, stdout and stderr together) of one in-process call."
    capsys.readouterr(); rc = main([str(a) for a in argv]); c = capsys.readouterr()
    assert 'Traceback' not in c.err, c.err
    return rc, c.out + c.err

def _img(rng, S=32, defect=None):
    a = 0.5 + 0.15 * np.sin(np.arange(S) / 3)[None, :, None] + rng.normal(0, 0.02, (S, S, 3))
    if defect is not None: r, c = defect; a[r:r + 8, c:c + 8] = (0.95, 0.1, 0.1)
    return Image.fromarray((np.clip(a, 0, 1) * 255).astype(np.uint8))

def write_folder(root:Path, n_normal=12, n_bad=3, seed=0)->Path:
    "root/normal (the last 20 % are the normal test images), root/abnormal and root/masks/<stem>.png (the layout data/README.md gives)."
    rng = np.random.default_rng(seed)
    for sub in ('normal', 'abnormal', 'masks'): (root/sub).mkdir(parents=True, exist_ok=True)
    for k in range(n_normal): _img(rng).save(root/'normal'/f'n{k:02d}.png')
    for k in range(n_bad):
        r, c = rng.integers(4, 20, 2); _img(rng, defect=(r, c)).save(root/'abnormal'/f'a{k}.png')
        m = np.zeros((32, 32), np.uint8); m[r:r + 8, c:c + 8] = 255; Image.fromarray(m).save(root/'masks'/f'a{k}.png')
    return root

def train_args(root, out, *extra):
    return ['train', '--dataset', 'folder', '--root', str(root), '--backbone', 'pixel', '--preset', 'default', '--no-progress', '--steps', '2',
            '--out', str(out), *FAST, *extra]   # the defaults: no selection here (tests/test_practitioner.py runs it)

def eval_args(root, out, *extra):
    return ['test', '--dataset', 'folder', '--root', str(root), '--no-progress', '--out', str(out), *extra]

@pytest.fixture(scope='module')
def pixel_run(tmp_path_factory):
    "A tiny `--backbone pixel` run on a folder with masks/, and its `test` evaluation."
    d = tmp_path_factory.mktemp('rel2'); root = write_folder(d/'data')
    assert main(train_args(root, d/'run')) == 0
    assert main(eval_args(root, d/'run')) == 0
    return dict(root=root, run=d/'run', dir=d)

@pytest.fixture
def copy(tmp_path):
    "A private folder dataset and run (trained and tested as `pixel_run`; a run records where its data lies, so it is not copied)."
    root, out = write_folder(tmp_path/'data'), tmp_path/'run'
    assert main(train_args(root, out)) == 0 and main(eval_args(root, out)) == 0
    return root, out

# --- 1. every path written is inside --out ---------------------------------------------------------------------

@pytest.mark.parametrize('category', ['../runs/victim', 'ABS', '..', 'a/b'])
def test_a_category_is_a_name_never_a_path(capsys, tmp_path, category):
    root = write_folder(tmp_path/'data'/'cat', n_normal=4, n_bad=0).parent
    victim = tmp_path/'runs'/'victim'; victim.mkdir(parents=True); (victim/'protocol.json').write_text('{"mine": 1}')
    if category == 'ABS': category = str(victim)
    before = snapshot(tmp_path)
    bad(capsys, 2, ['--category', 'not a category name'], *train_args(root, tmp_path/'out', '--category', category))
    assert snapshot(tmp_path) == before and not (tmp_path/'out').exists()

def test_an_out_name_too_long_is_a_usage_error(capsys, tmp_path):
    root = write_folder(tmp_path/'data', n_normal=4, n_bad=0)
    bad(capsys, 2, ['--out', 'too long'], *train_args(root, tmp_path/('x' * 300)))

# --- 2. non-finite numbers are refused where they arise ----------------------------------------------------------

@pytest.mark.parametrize('argv,needle', [(['--lr', 'inf'], '--lr'), (['--lr', 'nan'], '--lr'), (['--set', 'sigma=inf'], 'sigma=inf'),
                                         (['--set', 'lr=nan'], 'lr=nan'), (['--set', 'layers=3,nan'], 'layers')])
def test_non_finite_settings_are_refused_at_parse_time(capsys, tmp_path, argv, needle):
    root = write_folder(tmp_path/'data', n_normal=4, n_bad=0)
    bad(capsys, 2, needle, *train_args(root, tmp_path/'out', *argv))
    assert not (tmp_path/'out').exists()

# --- 3. --overwrite deletes only what glad_nb wrote ---------------------------------------------------------------

def test_overwrite_keeps_user_files_and_the_config_it_reads(capsys, copy):
    root, out = copy
    (out/'notes.txt').write_text('mine'); (out/'analysis').mkdir(); (out/'analysis'/'plot.png').write_bytes(b'png')
    (out/'folder'/'notes.md').write_text('mine too'); (out/'my.yaml').write_text('sigma: 3.0\n')
    mine = snapshot(out/'notes.txt', out/'analysis', out/'folder'/'notes.md', out/'my.yaml')
    rc, _, err = run(capsys, *train_args(root, out, '--config', out/'my.yaml', '--overwrite'))
    assert rc == 0, err
    assert snapshot(out/'notes.txt', out/'analysis', out/'folder'/'notes.md', out/'my.yaml') == mine
    assert 'kept what glad_nb did not write' in err and 'notes.txt' in err and 'my.yaml' in err
    assert not list(out.glob('folder/eval-*')), 'the old evaluation was glad_nb\'s: it goes'
    assert read_run(out)['settings']['sets']['sigma'] == 3.0

# --- 4. one process per run folder; SIGTERM ends like Ctrl-C; a killed holder's lock is taken over --------------

def _start(argv):
    return subprocess.Popen([sys.executable, '-m', 'glad_nb.cli', *map(str, argv)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)

def _wait_running(out:Path, p, timeout=240):
    t0 = time.time()
    while time.time() - t0 < timeout and p.poll() is None:
        try:
            a = (read_run(out) or {}).get('attempts', [])
            if a and a[-1].get('pid') == p.pid and a[-1].get('status') == 'running' and (out/'folder'/'train'/'inputs.json').exists(): return
        except Exception: pass
        time.sleep(0.1)
    raise AssertionError(f"the first process did not start its run (exit {p.poll()})")

def test_two_processes_one_out_then_sigterm_then_sigkill(tmp_path):
    root = write_folder(tmp_path/'data')
    long = train_args(root, tmp_path/'out')[:-len(FAST)] + ['--set', 'image_size=32', 'K=4', 'ckpt_every=50']
    long[long.index('--steps') + 1] = '100000'
    a = _start(long); _wait_running(tmp_path/'out', a)
    b = subprocess.run([sys.executable, '-m', 'glad_nb.cli', *map(str, long)], capture_output=True, text=True, env=ENV, timeout=300)
    assert b.returncode == 4, b.stderr
    line = b.stderr.strip().splitlines()[-1]
    assert 'in use by another glad-nb process' in line and f'pid {a.pid}' in line and 'Traceback' not in b.stderr, b.stderr
    a.send_signal(signal.SIGTERM); _, err = a.communicate(timeout=300)
    assert a.returncode == 143 and 'terminated (SIGTERM)' in err and 'run the same command again' in err and 'Traceback' not in err, err
    assert read_run(tmp_path/'out')['attempts'][-1]['status'] == 'interrupted'
    c = _start(long); _wait_running(tmp_path/'out', c)          # the lock is free again; then a SIGKILL leaves it stale
    c.send_signal(signal.SIGKILL); c.communicate(timeout=60)
    assert read_run(tmp_path/'out')['attempts'][-1]['status'] == 'running'
    d = _start(long); _wait_running(tmp_path/'out', d)          # taken over, and the killed attempt recorded as such
    d.send_signal(signal.SIGTERM); _, err = d.communicate(timeout=300)
    assert [x['status'] for x in read_run(tmp_path/'out')['attempts']] == ['interrupted', 'killed', 'interrupted'], err[-3000:]
    assert (tmp_path/'out'/LOCK_FILE).exists()

@pytest.mark.parametrize('sig, code', [(None, 1), (signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_interrupt_that_a_library_turns_into_its_own_error(capsys, monkeypatch, tmp_path, sig, code):
    "A signal that lands in safetensors' reader comes out as a ValueError: still an interruption, never a failed attempt (or a 'corrupt checkpoint')."
    import glad_nb.commands as commands
    from glad_nb.runs import open_run
    def command(args):
        args._run = open_run(tmp_path/'out', 'train', dict(seed=0), ('seed',))[0]
        try:
            if sig is not None: os.kill(os.getpid(), sig); time.sleep(10)
        except KeyboardInterrupt: pass
        raise ValueError("could not determine the shape of object type 'torch.storage.UntypedStorage'")
    monkeypatch.setitem(commands.COMMANDS, 'config', command)
    old_int = signal.signal(signal.SIGINT, signal.default_int_handler)   # Python's own Ctrl-C handler (a pytest-xdist worker ignores SIGINT)
    term = signal.getsignal(signal.SIGTERM)
    try:
        capsys.readouterr(); rc = main(['config', '--dataset', 'folder']); err = capsys.readouterr().err
        handlers = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    finally: signal.signal(signal.SIGINT, old_int)
    attempt = read_run(tmp_path/'out')['attempts'][-1]
    assert rc == code and (attempt['status'], attempt['exit_code']) == ('failed' if sig is None else 'interrupted', code), (rc, attempt, err)
    assert len(err.strip().splitlines()) == 1 and ('UntypedStorage' in err) == (sig is None), err
    assert handlers == (term, signal.default_int_handler)   # the handlers are put back

def test_interrupt_while_starting_is_one_line(tmp_path):
    exe = Path(sys.executable).parent/'glad-nb'
    if not exe.exists(): pytest.skip('the glad-nb console script is not installed beside this python')
    for sig, code in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
        for delay in (0.4, 0.2, 0.1, 0.05, 0.02):   # a fast machine may finish `config` before the first
            p = subprocess.Popen([str(exe), 'config', '--dataset', 'folder'], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
                                 preexec_fn=ctrl_c_default)
            time.sleep(delay); p.send_signal(sig); _, err = p.communicate(timeout=120)
            if p.returncode != 0: break
        if p.returncode == 0: pytest.skip('the command finished before the signal arrived, even 0.02 s after it started')
        assert p.returncode == code and 'Traceback' not in err and len(err.strip().splitlines()) == 1, err

# --- 5. results are reused only for the same inputs --------------------------------------------------------------

def test_changed_test_images_are_not_reused(capsys, copy):
    root, out = copy
    metrics = snapshot(out/'folder')
    rc, _, err = run(capsys, *eval_args(root, out)); assert rc == 0
    shutil.copy(root/'abnormal'/'a1.png', root/'abnormal'/'a0.png')
    bad(capsys, 4, ['the test images changed since', '1 changed (abnormal/a0.png)', '--overwrite'], *eval_args(root, out))
    (root/'abnormal'/'a2.png').unlink(); (root/'masks'/'a2.png').unlink()
    bad(capsys, 4, ['2 removed (abnormal/a2.png, masks/a2.png)'], *eval_args(root, out))
    assert snapshot(out/'folder') == metrics
    rc, _, err = run(capsys, *eval_args(root, out, '--overwrite')); assert rc == 0, err
    assert 'a2.png' not in (out/'folder'/'eval-default'/'per_image.csv').read_text()

def test_changed_training_images_are_not_reused(capsys, copy):
    root, out = copy
    _img(np.random.default_rng(9)).save(root/'normal'/'n03.png')
    bad(capsys, 4, ['the training images changed since', 'n03.png'], *train_args(root, out))

# --- 6. settings never vanish ----------------------------------------------------------------------------------

def test_repeated_set_and_config_accumulate(capsys, tmp_path):
    (tmp_path/'a.yaml').write_text('T0: 100\nsigma: 2.0\n'); (tmp_path/'b.yaml').write_text('sigma: 3.0\n')
    rc = main(['config', '--dataset', 'folder', '--backbone', 'pixel', '--set', 'T0=200', '--set', 'K=5', '--config', str(tmp_path/'a.yaml'),
               '--config', str(tmp_path/'b.yaml')])
    out = capsys.readouterr().out
    assert rc == 0 and 'T0: 200' in out and 'K: 5' in out and 'sigma: 3.0' in out, out

def test_config_prints_every_field_given_and_round_trips(capsys, tmp_path):
    rc = main(['config', '--dataset', 'folder', '--backbone', 'pixel', '--train', '--set', 'tau=0.3', 'lr=0.0002'])
    first = capsys.readouterr().out
    assert rc == 0 and '\ntau: 0.3\n' in first and 'left out' not in first, first
    (tmp_path/'c.yaml').write_text(first)
    assert main(['config', '--dataset', 'folder', '--backbone', 'pixel', '--train', '--config', str(tmp_path/'c.yaml')]) == 0
    assert capsys.readouterr().out.split('\n', 3)[3] == first.split('\n', 3)[3]      # every field, past the header lines

def test_ckpt_step_is_one_setting(capsys, copy):
    root, out = copy
    rc, _, err = run(capsys, *eval_args(root, out, '--set', 'ckpt_step=1')); assert rc == 0, err
    assert (out/'folder'/'eval-default-ckpt1'/'metrics.csv').exists()
    rc, text = run_text(capsys, *eval_args(root, out, '--ckpt-step', '1'))
    assert rc == 0 and 'already evaluated' in text, text

def test_resume_rules(capsys, copy, tmp_path):
    root, out = copy
    bad(capsys, 2, ['--resume', 'seed', 'give the recorded values'], *train_args(root, out, '--resume', '--seed', '5'))
    bad(capsys, 2, ['--resume', '--overwrite'], *train_args(root, out, '--resume', '--overwrite'))
    bad(capsys, 2, ['no glad_nb run to continue'], *train_args(root, tmp_path/'new', '--resume'))
    before = snapshot(out/'folder'/'model')
    bad(capsys, 2, ['--resume', 'T0'], *train_args(root, out, '--resume', '--set', 'T0=100'))
    assert snapshot(out/'folder'/'model') == before

@pytest.mark.parametrize('record', [{'settings': 'abc'}, {'settings': None}])
def test_a_run_json_without_its_fields_is_not_a_run(capsys, copy, record):
    root, out = copy
    rj = json.loads((out/'run.json').read_text()); rj.update(record); rj.pop('sections', None)
    (out/'run.json').write_text(json.dumps(rj))
    bad(capsys, 2, ['run.json', 'damaged'], *eval_args(root, out))

# --- 7. predict never uses stale thresholds; test reads folder masks ------------------------------------------

def test_predict_refuses_thresholds_of_other_settings(capsys, pixel_run, tmp_path):
    model, imgs = pixel_run['run']/'folder'/'model', pixel_run['root']/'abnormal'
    bad(capsys, 2, ['T0 changed', 'thresholds.json', '--recalibrate'], 'predict', '--model', model, '--images', imgs, '--out', tmp_path/'p', '--set', 'T0=60')
    assert not (tmp_path/'p').exists()
    rc, _, err = run(capsys, 'predict', '--model', model, '--images', imgs, '--out', tmp_path/'p', '--set', 'T0=60',
                     '--recalibrate', pixel_run['root']/'normal', '--no-progress')
    assert rc == 0, err
    assert len(pd.read_csv(tmp_path/'p'/'scores.csv')) == 3

def test_folder_masks_are_read(pixel_run):
    m = pd.read_csv(pixel_run['run']/'folder'/'eval-default'/'metrics.csv', index_col=0).iloc[0]
    assert np.isfinite(m['pixel_auroc']) and np.isfinite(m['aupro']), m

def test_empty_masks_say_why_the_pixel_metrics_are_missing(capsys, copy):
    root, out = copy
    for f in (root/'masks').glob('*.png'): Image.new('L', (32, 32), 0).save(f)
    rc, text = run_text(capsys, *eval_args(root, out, '--overwrite'))
    assert rc == 0 and 'every mask is empty' in text, text

def test_a_mask_of_another_size_is_bad_input(capsys, copy):
    root, out = copy
    Image.new('L', (20, 20), 255).save(root/'masks'/'a0.png')
    bad(capsys, 2, ['a0.png', '20x20'], *eval_args(root, out, '--overwrite'))

# --- 8. inputs of any name, sizes the data allows ------------------------------------------------------------

def test_empty_images_argument_is_refused(capsys, pixel_run, tmp_path):
    bad(capsys, 2, '--images is empty', 'predict', '--model', pixel_run['run']/'folder'/'model', '--images', '', '--out', tmp_path/'p')

def test_file_names_of_any_bytes_and_length(capsys, pixel_run, tmp_path):
    imgs = tmp_path/'imgs'; imgs.mkdir()
    src = pixel_run['root']/'abnormal'/'a0.png'
    shutil.copy(src, imgs/('x' * 250 + '.png'))
    if sys.platform == 'linux': shutil.copy(src, os.fsdecode(os.path.join(os.fsencode(imgs), b'\xff\xfe.png')))
    rc, _, err = run(capsys, 'predict', '--model', pixel_run['run']/'folder'/'model', '--images', imgs, '--out', tmp_path/'p', '--no-progress')
    assert rc == 0, err
    df = pd.read_csv(tmp_path/'p'/'scores.csv', encoding_errors='surrogateescape')   # a file name's own bytes
    assert (df.status == 'ok').all() and len(df) == len(os.listdir(imgs)), df
    assert not [p for p in (tmp_path/'p').rglob('.glad-tmp-*')]

def test_batch_size_is_capped_by_the_data(tmp_path):
    root = write_folder(tmp_path/'data', n_normal=3, n_bad=0)
    r = subprocess.run([sys.executable, '-m', 'glad_nb.cli', *train_args(root, tmp_path/'out', '--batch-size', '1000')],
                       capture_output=True, text=True, env=ENV, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert 'there are only' in r.stdout, r.stdout

# --- 9. the label-free selection never reads a test image ---------------------------------------------------------

def test_selection_reads_no_test_image(capsys, tmp_path):
    "`train --preset auto` on a folder whose anomalous images and masks are unreadable: it still selects (it never opens them)."
    root = write_folder(tmp_path/'data')
    for f in list((root/'abnormal').iterdir()) + list((root/'masks').iterdir()): f.write_bytes(b'not an image')
    argv = train_args(root, tmp_path/'run'); argv[argv.index('default')] = 'auto'
    rc, _, err = run(capsys, *argv)
    assert rc == 0, err
    sel = pd.read_csv(tmp_path/'run'/'folder'/'selection.csv')
    assert sel.winner.sum() == 1 and json.loads((tmp_path/'run'/'folder'/'model'/'config.json').read_text())['preset'] == 'auto'
