"""glad-nb as a practitioner uses it: the CPU recipe (`--backbone pixel`) on a plain folder of images, with no
weights, then `predict` on new images; every setting from a config file or `--set`; `glad-nb config` round trips.
All through `glad_nb.cli.main` on tiny data (32 px, a few dozen steps), so the file runs in about a minute."""
import json
from pathlib import Path
import numpy as np
import pandas as pd
import torch
import pytest
from PIL import Image
from glad_nb.cli import main
from glad_nb.options import EXIT_CODES
from glad_nb.checkpoints import use_checkpoint, list_checkpoints
from glad_nb.core import AUTO_DRAWS

def _texture(rng, S=48, defect=False):
    "A smooth periodic texture with a little noise; an anomaly is a flat square of a random colour."
    y, x = np.mgrid[0:S, 0:S] / S
    ph = rng.random(3) * 0.3
    a = np.stack([0.5 + 0.2 * np.sin(12 * x + c + ph[c]) * np.cos(10 * y + ph[c]) for c in range(3)], -1) + rng.normal(0, 0.02, (S, S, 3))
    if defect:
        r, c = rng.integers(S // 4, 3 * S // 4, 2); a[r - S // 8:r + S // 8, c - S // 8:c + S // 8] = rng.random(3)
    return Image.fromarray((np.clip(a, 0, 1) * 255).astype(np.uint8))

@pytest.fixture(scope='module')
def folder_data(tmp_path_factory):
    "A folder-layout dataset (<root>/normal, <root>/abnormal) and a folder of new images: 3 normal, 1 anomalous."
    d = tmp_path_factory.mktemp('practitioner'); rng = np.random.default_rng(0)
    root, new = d/'parts', d/'new'
    for sub in (root/'normal', root/'abnormal', new): sub.mkdir(parents=True)
    for i in range(24): _texture(rng).save(root/'normal'/f'n{i:03d}.png')
    for i in range(3): _texture(rng, defect=True).save(root/'abnormal'/f'a{i:03d}.png')
    for i in range(3): _texture(rng).save(new/f'good{i}.png')
    _texture(rng, defect=True).save(new/'bad0.png')
    return d

PIXEL = ['--dataset', 'folder', '--backbone', 'pixel', '--batch-size', '8', '--no-progress', '--set', 'image_size=32']

@pytest.fixture(scope='module')
def pixel_model(folder_data):
    "`glad-nb train --backbone pixel --preset default` on the folder: no --weights, no --dino, the recipe's own settings."
    run = folder_data/'run'
    assert main(['train', '--root', str(folder_data/'parts'), '--out', str(run), '--steps', '40', '--preset', 'default', *PIXEL]) == 0
    return run/'folder'

@pytest.fixture(scope='module')
def auto_model(folder_data):
    "`glad-nb train --backbone pixel` as README shows it (no --preset: the settings are chosen without labels)."
    run = folder_data/'auto'
    assert main(['train', '--root', str(folder_data/'parts'), '--out', str(run), '--steps', '10', *PIXEL]) == 0
    return run/'folder'

def _hot(overlay:np.ndarray, image:np.ndarray)->np.ndarray:
    "Pixels whose heat colour (the overlay less 60 % image) is red-orange: well above the pixel threshold."
    heat = (overlay.astype(np.float32) - 0.6 * image.astype(np.float32)) / 0.4
    return (heat[..., 0] > 200) & (heat[..., 1] < 128)

def test_pixel_recipe_trains_on_a_folder_and_holds_out_normal_images(pixel_model, folder_data):
    m = pixel_model/'model'
    assert (m/'glad_model.json').exists() and (m/'thresholds.json').exists()
    proto = json.loads((pixel_model/'protocol.json').read_text())
    th = json.loads((m/'thresholds.json').read_text())
    assert proto['backbone'] == 'pixel' and proto['config']['preset'] == 'pixel' and proto['config']['image_size'] == 32
    assert th['method'] == 'normal' and th['quantile'] == 1.0 and th['n_images'] == 8 == len(proto['holdout']['paths'])
    held = {Path(p).name for p in proto['holdout']['paths']}
    assert all((folder_data/'parts'/'normal'/n).exists() for n in held)
    assert proto['config']['tau'] == json.loads((m/'config.json').read_text())['tau'] == proto['tau']   # τ calibrated, and saved

def test_predict_writes_deployable_outputs_on_the_models_scale(pixel_model, folder_data):
    out, new = folder_data/'pred', folder_data/'new'
    assert main(['predict', '--model', str(pixel_model/'model'), '--images', str(new), '--out', str(out)]) == 0
    df = pd.read_csv(out/'scores.csv').assign(name=lambda d: d.path.map(lambda p: Path(p).stem)).set_index('name')
    assert list(df.columns[:5]) == ['path', 'score', 'norm_score', 'label', 'step'] and (df.status == 'ok').all()
    for n in df.index:
        amap = np.load(out/df['map'][n]); mask = np.asarray(Image.open(out/df['mask'][n])); ov = np.asarray(Image.open(out/df['overlay'][n]))
        assert amap.dtype == np.float32 and amap.shape == mask.shape == ov.shape[:2] == (48, 48)    # the image's own size
        assert set(np.unique(mask)) <= {0, 255}
        assert (df.label[n] == 1) == (df.norm_score[n] > 0.5)
    for n in ('good0', 'good1', 'good2'):           # normal images look normal: below 0.5, no hot spot, empty mask
        image = np.asarray(Image.open(new/f'{n}.png').convert('RGB'))
        assert df.norm_score[n] < 0.5 and df.label[n] == 0, df
        assert not _hot(np.asarray(Image.open(out/'overlays'/f'{n}.png')), image).any()
        assert not np.asarray(Image.open(out/'masks'/f'{n}.png')).any()
    bad = np.asarray(Image.open(new/'bad0.png').convert('RGB'))
    assert _hot(np.asarray(Image.open(out/'overlays'/'bad0.png')), bad).any() and df.label['bad0'] == 1    # the check can fail
    assert not list(out.rglob('*.tmp*'))

def test_test_evaluates_a_pixel_run_without_weights(capsys, pixel_model, folder_data):
    run = pixel_model.parent
    assert main(['test', '--dataset', 'folder', '--root', str(folder_data/'parts'), '--out', str(run), '--no-progress']) == 0
    out = capsys.readouterr().out
    assert 'GLAD - memory bank (mean)' in out and 'memory bank' in out, out                    # the bank beside every test
    assert (run/'eval-default'/'baseline_metrics.csv').exists() and (run/'folder'/'eval-default'/'baseline'/'metrics.csv').exists()
    p = json.loads(next(run.glob('folder/eval-default*/protocol.json')).read_text())
    assert p['config']['preset'] == 'pixel' and p['config']['tau'] == json.loads((pixel_model/'model'/'config.json').read_text())['tau']

def test_a_tie_average_across_start_steps_in_test_and_predict(pixel_model, folder_data, tmp_path):
    "A model whose tie average has a member at another start step: `test` reconstructs both and saves both in its cache; what it reads back and `predict` give the same scores."
    import shutil
    from glad_nb.pipeline import GLAD
    from glad_nb.results import read_result, score_cache
    from glad_nb.core import GLADConfig
    run = tmp_path/'run'; shutil.copytree(pixel_model.parent, run, ignore=shutil.ignore_patterns('eval-*'))
    g = GLAD.load(run/'folder'/'model', device='cpu')   # the API's way to such a model: set the config, save
    g.cfg = g.cfg.replace(fuse=((g.cfg.pixel_weight, g.cfg.sigma, 0.0, 1.0), (0.0, g.cfg.sigma, 0.5, 2.0, 100, 40, 0.0)))
    g.save(run/'folder'/'model')
    assert main(['test', '--dataset', 'folder', '--root', str(folder_data/'parts'), '--out', str(run), '--no-progress']) == 0
    f = run/'folder'/'eval-default'
    res = read_result(f)
    cfg = GLADConfig.from_dict(res.protocol['config'])
    assert cfg.fuse == g.cfg.fuse and list(res.cache.alts) == [(100, 40, 0.0)] and res.cache.alts[(100, 40, 0.0)].recons.shape == res.cache.recons.shape
    assert not torch.equal(res.cache.alts[(100, 40, 0.0)].recons, res.cache.recons)           # another start step, another reconstruction
    per = pd.read_csv(f/'per_image.csv')
    assert np.allclose(score_cache(res.cache, cfg)[1].numpy(), per.score, rtol=1e-5, atol=1e-6)   # the saved cache scores as reported
    assert main(['predict', '--model', str(run/'folder'/'model'), '--images', str(folder_data/'parts'/'abnormal'), '--out', str(tmp_path/'pred')]) == 0
    pred = pd.read_csv(tmp_path/'pred'/'scores.csv')
    got = {Path(p).name: s for p, s in zip(pred.path, pred.score)}
    want = {Path(p).name: s for p, s in zip(per.path, per.score) if Path(p).name in got}
    assert len(want) == 3 and np.allclose([got[k] for k in want], list(want.values()), rtol=1e-4, atol=1e-5)   # predict: the same two passes, the same scores
    m = g.cfg.fuse   # from the command line: the members as JSON lists (here in the other order), or () for the winner alone
    for sets, want_scores in ((f'fuse={json.dumps([list(m[1]), list(m[0])])}', per.score), ('fuse=()', score_cache(res.cache, cfg.replace(fuse=()))[1].numpy())):
        assert main(['test', '--dataset', 'folder', '--root', str(folder_data/'parts'), '--out', str(run), '--no-progress', '--set', sets]) == 0
        f2 = next(p for p in (run/'folder').glob('eval-default-*') if json.loads((p/'config.json').read_text())['fuse'] == json.loads(sets[5:].replace('(', '[').replace(')', ']')))
        assert np.allclose(pd.read_csv(f2/'per_image.csv').score, want_scores, rtol=1e-4, atol=1e-5)

def test_pixel_train_selects_by_default_then_test_and_predict_use_the_choice(capsys, auto_model, folder_data):
    "README's flow: train --backbone pixel (auto by default) chooses on held-out normal images; test and predict use the choice."
    run = auto_model.parent
    proto = json.loads((run/'folder'/'protocol.json').read_text())
    sel = pd.read_csv(run/'folder'/'selection.csv')
    assert sel.winner.sum() == 1 and len(sel) > 1 and proto['selection']['tuned_on_test'] is False and not proto['config']['tuned_on_test']
    w = sel[sel.winner].iloc[0]
    assert (proto['config']['preset'], proto['config']['T0'], proto['config']['pixel_weight'], proto['config']['sigma']) == ('auto', w.T0, w.pixel_weight, w.sigma)
    assert proto['selection']['n_normal'] == 8 and json.loads((run/'folder'/'model'/'thresholds.json').read_text())['n_images'] == 8
    assert set(sel.t_max) == {150, 1000} and proto['train_config']['t_max'] == w.t_max == proto['selection']['training']['t_max']   # two trainings, one kept
    assert sorted(p.name for p in (run/'folder'/'train').glob('t_max-*')) == sorted(['t_max-1000', 't_max-150', f't_max-{w.t_max}-steps-20'])   # a training folder each
    assert (w.steps, proto['train_config']['steps'], proto['selection']['training']) == (20, 20, {'t_max': w.t_max, 'steps': 20})   # the kept one trained on to twice --steps
    assert set(sel[sel.steps == 10].model) == {0, 1} and set(sel[sel.steps == 20].model) == {2} and sel[sel.fused].model.eq(2).all()   # and chosen for again
    assert (proto['config']['draws'], proto['selection']['draws']) == (AUTO_DRAWS, 1)   # selected with one draw, run with the recipe's average
    capsys.readouterr()
    assert main(['test', '--dataset', 'folder', '--root', str(folder_data/'parts'), '--out', str(run), '--no-progress']) == 0
    assert 'GLAD - memory bank (mean)' in capsys.readouterr().out                                  # the bank beside every test
    p = json.loads((run/'folder'/'eval-auto'/'protocol.json').read_text())
    assert (p['config']['preset'], p['config']['tau'], p['config']['sigma'], p['config']['draws']) == ('auto', proto['config']['tau'], proto['config']['sigma'], AUTO_DRAWS)
    assert main(['predict', '--model', str(auto_model/'model'), '--images', str(folder_data/'new'), '--out', str(run/'pred')]) == 0
    df = pd.read_csv(run/'pred'/'scores.csv')
    assert (df.status == 'ok').all() and (df.label == (df.norm_score > 0.5)).all() and len(list((run/'pred'/'masks').glob('*.png'))) == 4
    stamp = (run/'folder'/'selection.csv').stat().st_mtime_ns; capsys.readouterr()
    assert main(['train', '--root', str(folder_data/'parts'), '--out', str(run), '--steps', '10', *PIXEL]) == 0   # again: nothing redone
    assert '[folder] already trained (20 steps)' in capsys.readouterr().out and (run/'folder'/'selection.csv').stat().st_mtime_ns == stamp

def test_one_pixel_training_trains_on_and_a_rerun_names_the_longer_training(capsys, folder_data, tmp_path):
    "--set t_max=150 (auto): one training, kept and trained on to twice --steps in train/steps-<n>; a rerun redoes nothing and names that training."
    run, args = tmp_path/'run', ['train', '--root', str(folder_data/'parts'), '--out', str(tmp_path/'run'), '--steps', '2', *PIXEL, 't_max=150']
    assert main(args) == 0
    proto = json.loads((run/'folder'/'protocol.json').read_text())
    assert (proto['train_config']['t_max'], proto['train_config']['steps'], proto['selection']['training']) == (150, 4, {'steps': 4})
    assert [s for s, _ in list_checkpoints(run/'folder'/'train'/'steps-4')] == [2, 4] and not list((run/'folder'/'train').glob('t_max-*'))
    stamp = (run/'folder'/'selection.csv').stat().st_mtime_ns; capsys.readouterr()
    assert main(args) == 0 and '[folder] already trained (4 steps)' in capsys.readouterr().out   # the kept model's steps, not the short training's
    assert (run/'folder'/'selection.csv').stat().st_mtime_ns == stamp

def test_config_file_then_set_then_flags(folder_data, tmp_path):
    cfg = tmp_path/'cfg.yaml'
    cfg.write_text('lr: 1e-4\ntau: 0.5\nsigma: 1.5\nimage_size: 32\nsteps: 3\nckpt_every: 3\n')
    run = tmp_path/'run'
    assert main(['train', '--dataset', 'folder', '--root', str(folder_data/'parts'), '--backbone', 'pixel', '--out', str(run), '--preset', 'default',
                 '--no-progress', '--config', str(cfg), '--set', 'lr=1e-5', 'tau=0.3', '--grad-accum', '2']) == 0
    assert not (run/'folder'/'selection.csv').exists()   # --preset default: one training, the recipe's settings
    proto = json.loads((run/'folder'/'protocol.json').read_text())
    assert proto['train_config']['lr'] == 1e-5 and proto['config']['tau'] == 0.3 and proto['tau'] == 0.3   # --set beats the file; τ as set
    assert proto['config']['sigma'] == 1.5 and proto['train_config']['steps'] == 3 and proto['train_config']['grad_accum'] == 2
    assert proto['config_file'] == [str(cfg.resolve())] and proto['overrides']['lr'] == 1e-5   # every --config, in order
    assert json.loads((run/'folder'/'train'/'train_config.json').read_text())['config']['lr'] == 1e-5

@pytest.mark.parametrize('argv,needle', [
    (['--set', 'no_such_key=1'], '--set no_such_key: not a setting of this command; did you mean '),
    (['--set', 'learning_rate=1e-5'], 'did you mean lr?'),
    (['--set', 'lr=fast'], '--set lr=fast: expected a finite value of type float'),
    (['--set', 'seed=1'], 'use --seed instead'),
    (['--lr', '1e-4', '--set', 'lr=1e-5'], 'disagree'),
    (['--config', 'CFG'], 'tua: not a setting of this command; did you mean tau?'),
    (['--config', '/nonexistent.yaml'], '--config /nonexistent.yaml does not exist'),
    (['--weights', 'sd'], 'drop --weights and --dino'),
])
def test_bad_settings_exit_2_naming_the_key(capsys, folder_data, tmp_path, argv, needle):
    cfg = tmp_path/'bad.yaml'; cfg.write_text('tua: 0.3\n')
    argv = [str(cfg) if a == 'CFG' else a for a in argv]
    rc = main(['train', '--root', str(folder_data/'parts'), '--out', str(tmp_path/'o'), *PIXEL[:2], '--backbone', 'pixel', *argv])
    err = capsys.readouterr().err
    assert rc == 2 and needle in err and 'Traceback' not in err, err
    assert not (tmp_path/'o').exists()

def test_test_and_predict_refuse_training_settings(capsys, pixel_model, folder_data, tmp_path):
    rc = main(['predict', '--model', str(pixel_model/'model'), '--images', str(folder_data/'new'), '--out', str(tmp_path/'p'), '--set', 'lr=1e-5'])
    assert rc == 2 and '--set lr: not a setting of this command' in capsys.readouterr().err

def test_config_prints_what_config_reads(capsys, folder_data, tmp_path):
    def config(*a):
        capsys.readouterr(); assert main(['config', *map(str, a)]) == 0; return capsys.readouterr().out
    args = ('--dataset', 'folder', '--backbone', 'pixel', '--train', '--set', 'image_size=32', 'steps=3', 'ckpt_every=3', 'lr=2e-4')
    txt = config(*args)
    f = tmp_path/'cfg.yaml'; f.write_text(txt)
    assert config('--dataset', 'folder', '--backbone', 'pixel', '--train', '--config', f) == txt          # round trip
    run = tmp_path/'run'
    assert main(['train', '--dataset', 'folder', '--root', str(folder_data/'parts'), '--backbone', 'pixel', '--out', str(run),
                 '--no-progress', '--preset', 'default', '--config', str(f)]) == 0
    import yaml
    printed, proto = yaml.safe_load(txt), json.loads((run/'folder'/'protocol.json').read_text())
    for k, v in printed.items():
        got = proto['config'].get(k, proto['train_config'].get(k))
        assert got == v or (isinstance(v, list) and list(got) == v), (k, v, got)
    j = tmp_path/'cfg.json'; j.write_text(json.dumps(printed))                                          # JSON reads the same
    assert config('--dataset', 'folder', '--backbone', 'pixel', '--train', '--config', j) == txt

def test_val_folder_gives_f1_thresholds(folder_data, tmp_path):
    "--val: a labelled folder (normal/, abnormal/, masks/) sets F1-adaptive thresholds instead of the normal maximum."
    rng, val = np.random.default_rng(5), tmp_path/'val'
    for sub in ('normal', 'abnormal', 'masks'): (val/sub).mkdir(parents=True)
    for i in range(3):
        _texture(rng).save(val/'normal'/f'v{i}.png')
        im = np.asarray(_texture(rng)).copy(); m = np.zeros(im.shape[:2], np.uint8); m[10:22, 14:26] = 255; im[m > 0] = (30, 200, 40)
        Image.fromarray(im).save(val/'abnormal'/f'v{i}.png'); Image.fromarray(m).save(val/'masks'/f'v{i}.png')
    run = tmp_path/'run'
    assert main(['train', '--root', str(folder_data/'parts'), '--out', str(run), '--steps', '3', '--val', str(val), *PIXEL]) == 0
    th = json.loads((run/'folder'/'model'/'thresholds.json').read_text())
    assert th['method'] == 'f1' and th['n_images'] == 6
    assert not (run/'folder'/'selection.csv').exists()   # labelled --val: the pixel default is then no selection

def test_sd_train_calibrates_thresholds_on_held_out_images(tiny_inputs, tmp_path):
    "The latent (SD) path holds out and calibrates too; predict then labels and masks."
    from tiny import write_layout_dataset
    root = write_layout_dataset(tmp_path/'visa', 'pcb1', n_train=12)
    run = tmp_path/'run'
    assert main(['train', '--dataset', 'visa', '--root', str(root), '--category', 'pcb1', '--weights', str(tiny_inputs['sd']),
                 '--dino', str(tiny_inputs['dino']), '--out', str(run), '--steps', '2', '--batch-size', '2', '--no-progress',
                 '--set', 'image_size=32', 'feature_size=32', '--threshold-quantile', '0.9']) == 0
    th = json.loads((run/'pcb1'/'model'/'thresholds.json').read_text())
    assert th['n_images'] == 8 and th['quantile'] == 0.9
    assert main(['predict', '--model', str(run/'pcb1'/'model'), '--images', str(root/'pcb1'/'test'/'bad'), '--out', str(tmp_path/'p')]) == 0
    df = pd.read_csv(tmp_path/'p'/'scores.csv')
    assert df.label.notna().all() and df.norm_score.between(0, 1).all() and len(list((tmp_path/'p'/'masks').glob('*.png'))) == len(df)

def test_sd_train_auto_chooses_the_checkpoint_step(capsys, tiny_inputs, tmp_path):
    "SD 1.4 weights, train --preset auto: the checkpoint step is chosen with the settings, on held-out normal images; test uses it."
    from tiny import write_layout_dataset
    from glad_nb.core import state_hash
    from glad_nb.pipeline import GLAD
    root = write_layout_dataset(tmp_path/'visa', 'pcb1', n_train=12)
    run, common = tmp_path/'run', ['--dataset', 'visa', '--root', str(root), '--category', 'pcb1', '--no-progress']
    assert main(['train', *common, '--weights', str(tiny_inputs['sd']), '--dino', str(tiny_inputs['dino']), '--out', str(run), '--steps', '4',
                 '--batch-size', '2', '--preset', 'auto',
                 '--set', 'image_size=32', 'feature_size=32', 'ckpt_every=2', 'T0=300', 'pixel_weight=1', 'sigma=1']) == 0   # fixed: ADS on/off x 2 steps
    sel, proto = pd.read_csv(run/'pcb1'/'selection.csv'), json.loads((run/'pcb1'/'protocol.json').read_text())
    w = sel[sel.winner].iloc[0]
    assert set(sel.ckpt_step) == {2, 4} and sel.winner.sum() == 1 and proto['selection']['tuned_on_test'] is False
    assert proto['selection']['training'] == {'ckpt_step': int(w.ckpt_step)} == {'ckpt_step': proto['config']['ckpt_step']}
    assert (proto['config']['preset'], proto['config']['T0'], proto['config']['sigma']) == ('auto', w.T0, w.sigma)
    def weights(model, step):   # the UNet hash of a model folder, with checkpoint `step` loaded into it (None: as saved)
        g = GLAD.load(model)
        if step: use_checkpoint(g, model.parent/'train', step)
        return state_hash(g.backbone.unet)
    chosen, other = int(w.ckpt_step), 6 - int(w.ckpt_step)
    assert weights(run/'pcb1'/'model', None) == weights(run/'pcb1'/'model', chosen) != weights(run/'pcb1'/'model', other)   # the chosen step's, not the other's
    capsys.readouterr()
    assert main(['test', *common, '--out', str(run)]) == 0                       # no --preset: the model's own choice
    assert 'GLAD - memory bank (mean)' in capsys.readouterr().out
    assert json.loads((run/'pcb1'/'eval-auto'/'protocol.json').read_text())['config']['ckpt_step'] == int(w.ckpt_step)
    mine = tmp_path/'mine'                                                      # a step the user gives is kept, the rest chosen
    assert main(['train', *common, '--weights', str(tiny_inputs['sd']), '--dino', str(tiny_inputs['dino']), '--out', str(mine), '--steps', '4',
                 '--batch-size', '2', '--preset', 'auto', '--set', 'image_size=32', 'feature_size=32', 'ckpt_every=2', 'T0=300', 'pixel_weight=1',
                 'sigma=1', 'ckpt_step=2']) == 0
    assert set(pd.read_csv(mine/'pcb1'/'selection.csv').ckpt_step) == {2} and json.loads((mine/'pcb1'/'protocol.json').read_text())['config']['ckpt_step'] == 2
    assert weights(mine/'pcb1'/'model', None) == weights(mine/'pcb1'/'model', 2) != weights(mine/'pcb1'/'model', 4)

def test_version_and_help(capsys):
    import glad_nb
    assert main(['--version']) == 0
    assert capsys.readouterr().out.strip() == f'glad-nb {glad_nb.__version__}'
    assert main(['--help']) == 0
    top = capsys.readouterr().out
    for code in EXIT_CODES: assert f'{code} ' in top.split('exit codes:')[1]
    for cmd in ('demo', 'train', 'test', 'predict', 'config', 'bench'):
        assert main([cmd, '--help']) == 0
        h = capsys.readouterr().out
        assert 'exit codes:' in h and h.rstrip().splitlines()[-1].strip().startswith(f'glad-nb {cmd}'), (cmd, h[-300:])

def test_license_matches_pyproject():
    import tomllib
    root = Path(__file__).resolve().parent.parent
    assert tomllib.loads((root/'pyproject.toml').read_text())['project']['license'] == 'Apache-2.0'
    text = (root/'LICENSE').read_text()
    assert 'Apache License' in text and 'Version 2.0, January 2004' in text and 'END OF TERMS AND CONDITIONS' in text
