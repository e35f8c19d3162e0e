"""Reliability, round 2: no silent NaN model, weights verified, model files checked. Each case was found by a hostile tester:
a huge learning rate, flipped bytes in weights and checkpoints, hand-edited model files, NaN/inf settings and images. The CLI
cases run `main()` in-process on a tiny `--backbone pixel` run (12 small PNGs, 2 steps), as tests/test_reliability.py does."""
import json, pickle, shutil
from pathlib import Path
import numpy as np
import pytest
import torch
from PIL import Image
from glad_nb.cli import main
from glad_nb.core import GLADConfig, TrainConfig
from test_reliability import run, bad, snapshot

def _images(folder:Path, n:int=12, size:int=32, seed:int=0)->Path:
    folder.mkdir(parents=True, exist_ok=True); rng = np.random.default_rng(seed)
    base = rng.integers(60, 200, (size, size, 3))
    for k in range(n): Image.fromarray(np.clip(base + rng.integers(-20, 20, (size, size, 3)), 0, 255).astype(np.uint8)).save(folder/f'img{k:02d}.png')
    return folder

def _train(root, out, *extra):
    return ['train', '--dataset', 'folder', '--root', root, '--backbone', 'pixel', '--no-progress', '--steps', '2', '--out', out,
            '--set', 'image_size=32', 'feature_size=32', *extra]

@pytest.fixture(scope='module')
def pixel_run(tmp_path_factory):
    "A 2-step `--backbone pixel` run on 12 small PNGs: (dataset root, run folder)."
    d = tmp_path_factory.mktemp('pixel'); root = d/'R'; _images(root/'normal')
    assert main([str(a) for a in _train(root, d/'run')]) == 0
    return root, d/'run'

@pytest.fixture
def pixel_copy(pixel_run, tmp_path):
    root, r = pixel_run; dst = tmp_path/'run'; shutil.copytree(r, dst); return root, dst

model_of = lambda run_dir: next(Path(run_dir).rglob('glad_model.json')).parent
def _predict(model, imgs, out, *extra): return ['predict', '--model', model, '--images', imgs, '--out', out, '--no-progress', *extra]
def _flip(f:Path, at:int=-6, bit:int=0x10):
    b = bytearray(f.read_bytes()); b[at] ^= bit; f.write_bytes(bytes(b))

# --- 1. a diverging training stops; NaN thresholds are never saved -------------------------------------

def test_huge_learning_rate_stops_training_naming_step_and_lr(capsys, pixel_run, tmp_path):
    root, _ = pixel_run
    rc, line, err = run(capsys, *_train(root, tmp_path/'out', '--lr', '1e12', '--set', 'ckpt_every=1'))
    assert rc != 0, err
    assert 'learning rate' in line and ('diverged at step' in line or 'calibration failed' in line), line
    assert not list((tmp_path/'out').rglob('glad_model.json')) and not list((tmp_path/'out').rglob('thresholds.json'))   # nothing NaN saved

def test_huge_learning_rate_exits_2(capsys, pixel_run, tmp_path):
    rc, line, err = run(capsys, *_train(pixel_run[0], tmp_path/'out', '--lr', '1e12', '--set', 'ckpt_every=1'))
    assert rc == 2, (rc, line)

def test_training_diverged_is_raised_before_any_nan_checkpoint(tmp_path):
    from glad_nb.train import train_backbone, TrainingDiverged
    from glad_nb.backbone import PixelBackbone
    from glad_nb.checkpoints import list_checkpoints, load_checkpoint
    data = [torch.rand(3, 16, 16) * 2 - 1 for _ in range(8)]
    cfg = TrainConfig(image_size=16, batch_size=4, steps=8, ckpt_every=1, lr=1e12, synth_prob=0.0)
    with pytest.raises(TrainingDiverged, match=r'training diverged at step \d+: .*learning rate lr=1e\+12'):
        train_backbone(PixelBackbone.tiny(), data, cfg, tmp_path, progress=False)
    for _, ck in list_checkpoints(tmp_path): load_checkpoint(ck)      # every checkpoint written holds finite weights

def test_nan_thresholds_are_never_saved(tmp_path):
    from glad_nb.pipeline import GLAD
    from glad_nb.api import Thresholds
    g = GLAD.pixel(image_size=16)
    g.thresholds = Thresholds(image=float('nan'), pixel=0.5, image_min=0.0, image_max=1.0, pixel_min=0.0, pixel_max=1.0)
    with pytest.raises(ValueError, match='image=nan: expected a finite number'): g.save(tmp_path/'m')
    assert not (tmp_path/'m'/'thresholds.json').exists() and not (tmp_path/'m'/'glad_model.json').exists()

# --- 2. weights verified: sha256 recorded and checked; NaN weights refused ---------------------------------

def test_model_records_the_sha256_of_every_weight_file(pixel_run):
    from glad_nb.core import file_sha256
    model = model_of(pixel_run[1]); rec = json.loads((model/'glad_model.json').read_text())['weights_sha256']
    files = sorted(p.relative_to(model).as_posix() for p in model.rglob('*.safetensors'))
    assert sorted(rec) == files and all(file_sha256(model/k) == v for k, v in rec.items())
    ck = sorted(pixel_run[1].rglob('glad_checkpoint.json'))[-1]
    assert 'unet/diffusion_pytorch_model.safetensors' in json.loads(ck.read_text())['weights_sha256']

def test_flipped_byte_in_model_unet(capsys, pixel_copy, tmp_path):
    root, r = pixel_copy; model = model_of(r); f = model/'backbone'/'unet'/'diffusion_pytorch_model.safetensors'; _flip(f)
    line = bad(capsys, 3, [str(f), 'changed since it was written: sha256', 'expected'], *_predict(model, root/'normal', tmp_path/'p'))
    assert '\n' not in line

def test_flipped_byte_in_checkpoint_stops_resume(capsys, pixel_copy):
    root, r = pixel_copy
    f = sorted(r.rglob('checkpoints/step_*'))[-1]/'unet'/'diffusion_pytorch_model.safetensors'; _flip(f); before = snapshot(r)
    bad(capsys, 3, [str(f), 'changed since it was written'], *_train(root, r, '--steps', '4'))
    drop = lambda s: {k: v for k, v in s.items() if not k.endswith('run.json')}   # run.json records the failed attempt
    assert drop(snapshot(r)) == drop(before)

def test_flipped_byte_in_training_state_stops_resume(capsys, pixel_copy):
    root, r = pixel_copy; f = sorted(r.rglob('checkpoints/step_*'))[-1]/'training_state.safetensors'; _flip(f)
    bad(capsys, 3, [str(f), 'changed since it was written'], *_train(root, r, '--steps', '4'))

def test_verification_is_skipped_only_explicitly(pixel_copy):
    from glad_nb.pipeline import GLAD
    model = model_of(pixel_copy[1]); f = model/'backbone'/'unet'/'diffusion_pytorch_model.safetensors'
    _flip(f, -6, 0x10)                                       # a mantissa bit: finite, but not what was written
    with pytest.raises(ValueError, match='changed since it was written'): GLAD.load(model)
    GLAD.load(model, verify=False)

def test_model_saved_before_hashes_loads_unverified(capsys, pixel_copy, tmp_path):
    root, r = pixel_copy; model = model_of(r)
    for j in (model/'glad_model.json', model/'backbone'/'glad_backbone.json'):   # as an earlier glad_nb wrote them
        d = json.loads(j.read_text()); d.pop('weights_sha256'); j.write_text(json.dumps(d))
    assert run(capsys, *_predict(model, root/'normal', tmp_path/'p'))[0] == 0

def test_nan_weights_in_a_valid_file_are_refused(capsys, pixel_copy, tmp_path):
    from safetensors.torch import load_file, save_file
    root, r = pixel_copy; model = model_of(r); f = model/'backbone'/'unet'/'diffusion_pytorch_model.safetensors'
    sd = load_file(f); k = sorted(sd)[0]; sd[k].view(-1)[0] = float('nan'); save_file(sd, f)
    for j in (model/'glad_model.json', model/'backbone'/'glad_backbone.json'):   # no record to catch it first
        d = json.loads(j.read_text()); d.pop('weights_sha256'); j.write_text(json.dumps(d))
    bad(capsys, 3, [str(f.resolve()), 'holds NaN or inf'], *_predict(model, root/'normal', tmp_path/'p'))

@pytest.mark.parametrize('value', [float('nan'), float('inf')])
def test_non_finite_threshold_in_thresholds_json(capsys, pixel_copy, tmp_path, value):
    root, r = pixel_copy; f = model_of(r)/'thresholds.json'
    f.write_text(json.dumps({**json.loads(f.read_text()), 'pixel': value}))   # json writes NaN / Infinity
    bad(capsys, 3, [str(f), 'pixel=', 'expected a finite number'], *_predict(model_of(r), root/'normal', tmp_path/'p'))

# --- 3. model files checked: each error names the file and what was expected; nothing unpickled; one line ---

def _edit(model:Path, rel:str, change):
    f = model/rel; f.write_text(json.dumps(change(json.loads(f.read_text())))); return f

CASES = {
    'thresholds_string': ('thresholds.json', lambda d: {**d, 'image': 'high'}, "image='high': expected a finite number"),
    'thresholds_list':   ('thresholds.json', lambda d: [d['image'], d['pixel']], 'expected an object'),
    'extractor_kind':    ('extractor/extractor.json', lambda d: {**d, 'kind': 'resnet'}, "kind='resnet': expected one of"),
    'extractor_layers':  ('extractor/extractor.json', lambda d: {**d, 'layers': 'all'}, "layers='all': expected a non-empty list"),
    'backbone_kind':     ('backbone/glad_backbone.json', lambda d: {**d, 'kind': 'video'}, "unknown backbone kind 'video'"),
    'backbone_format':   ('backbone/glad_backbone.json', lambda d: {**d, 'format': 99}, 'reads backbone format(s) [1]'),
    'scheduler':         ('backbone/scheduler/scheduler_config.json', lambda d: {**d, 'num_train_timesteps': 'many'}, "num_train_timesteps='many': expected an integer"),
    'scheduler_betas':   ('backbone/scheduler/scheduler_config.json', lambda d: {**d, 'beta_end': 3.0}, 'noise schedule is not a decreasing'),
    'config_tau':        ('config.json', lambda d: {**d, 'tau': 'abc'}, "tau='abc' is out of range: expected a finite number"),
    'config_layers':     ('config.json', lambda d: {**d, 'layers': [99]}, 'layers=[99] is out of range for this model'),
    'marker_format':     ('glad_model.json', lambda d: {**d, 'format': 99}, 'format 99: this glad_nb reads model format(s) [1]'),
}

@pytest.mark.parametrize('case', list(CASES))
def test_bad_model_file(capsys, pixel_copy, tmp_path, case):
    root, r = pixel_copy; model = model_of(r); rel, change, needle = CASES[case]
    f = _edit(model, rel, change)
    rc, line, err = run(capsys, *_predict(model, root/'normal', tmp_path/'p'))
    assert rc == 3 and str(f) in line and needle in line, (rc, err)
    assert len([l for l in err.splitlines() if l.strip()]) == 1, err     # no diffusers/transformers chatter or warnings above it

class _Evil:
    def __init__(self, marker): self.marker = marker
    def __reduce__(self): return (Path.write_text, (Path(self.marker), 'pwned'))

@pytest.mark.parametrize('kind', ['truncated', 'pickled'])
def test_bad_unet_file_in_model(capsys, pixel_copy, tmp_path, kind):
    root, r = pixel_copy; model = model_of(r); f = model/'backbone'/'unet'/'diffusion_pytorch_model.safetensors'; marker = tmp_path/'pwned'
    if kind == 'truncated': f.write_bytes(f.read_bytes()[:1000])
    else:
        with open(f, 'wb') as fh: pickle.dump(_Evil(marker), fh)
    for verify in ([], ['model']):   # with the record (a sha256 mismatch) and without it (the file itself is refused)
        if verify:
            for j in (model/'glad_model.json', model/'backbone'/'glad_backbone.json'):
                d = json.loads(j.read_text()); d.pop('weights_sha256'); j.write_text(json.dumps(d))
        rc, line, err = run(capsys, *_predict(model, root/'normal', tmp_path/f'p{len(verify)}'))
        assert rc == 3 and str(f) in line, (rc, err)
        assert len([l for l in err.splitlines() if l.strip()]) == 1, err
    assert 'not a readable safetensors file' in line and not marker.exists()

@pytest.mark.parametrize('kind', ['truncated', 'pickled'])
def test_bad_unet_file_in_checkpoint(capsys, pixel_copy, tmp_path, kind):
    root, r = pixel_copy; ck = sorted(r.rglob('checkpoints/step_*'))[-1]; f = ck/'unet'/'diffusion_pytorch_model.safetensors'; marker = tmp_path/'pwned'
    if kind == 'truncated': f.write_bytes(f.read_bytes()[:1000])
    else:
        with open(f, 'wb') as fh: pickle.dump(_Evil(marker), fh)
    bad(capsys, 3, [str(f), 'changed since it was written'], *_train(root, r, '--steps', '4'))
    j = ck/'glad_checkpoint.json'; d = json.loads(j.read_text()); d.pop('weights_sha256'); j.write_text(json.dumps(d))   # an older checkpoint
    bad(capsys, 3, [str(f), 'not a readable safetensors file'], *_train(root, r, '--steps', '4'))
    assert not marker.exists()

# --- 4. settings: finite floats, layers, score_topk, image_size ---------------------------------------------

@pytest.mark.parametrize('field', ['sigma', 'tau', 'guidance', 'pixel_weight'])
@pytest.mark.parametrize('value', [float('inf'), float('nan'), 'abc'])
def test_glad_config_rejects_non_finite_floats(field, value):
    with pytest.raises(ValueError, match=rf"{field}=.* is out of range: expected a finite number"): GLADConfig(**{field: value})

@pytest.mark.parametrize('field', ['lr', 'grad_clip', 'weight_decay', 'beta_max', 'perlin_threshold', 'synth_prob', 'ema_decay'])
@pytest.mark.parametrize('value', [float('inf'), float('nan')])
def test_train_config_rejects_non_finite_floats(field, value):
    with pytest.raises(ValueError, match=rf"{field}=.* is out of range: expected a finite number"): TrainConfig(**{field: value})

def test_layers_out_of_range_for_the_model():
    from glad_nb.pipeline import GLAD
    g = GLAD.pixel(image_size=16)
    with pytest.raises(ValueError, match=r'layers=\[99\] is out of range for this model: its FilterBankExtractor computes layers \[1, 2, 3\]'):
        g.cfg = g.cfg.replace(layers=(99,))
    with pytest.raises(ValueError, match='filter bank'): GLAD.pixel(config=g.cfg.replace(layers=(99,)))

def test_score_topk_larger_than_the_map():
    with pytest.raises(ValueError, match=r'score_topk=100000000 is out of range: expected an integer in 0..feature_size² = 1024'):
        GLADConfig(feature_size=32, score_topk=100_000_000)
    assert GLADConfig(feature_size=32, score_topk=1024).score_topk == 1024

@pytest.mark.parametrize('size', [0, -64, 20])
def test_pixel_image_size_is_never_silently_the_default(size):
    from glad_nb.pipeline import GLAD
    with pytest.raises(ValueError, match=f'image_size={size} is out of range'): GLAD.pixel(image_size=size)

# --- 5. predict on NaN/inf images: flagged per row, never scored --------------------------------------------

def test_predict_flags_non_finite_arrays(pixel_run):
    from glad_nb.pipeline import GLAD
    from glad_nb.api import predictions_table
    glad = GLAD.load(model_of(pixel_run[1]), device='cpu')
    ok = np.asarray(Image.open(next((pixel_run[0]/'normal').glob('*.png')))) / 255.0
    nan, inf = ok.copy(), ok.copy(); nan[1, 2, 0] = np.nan; inf[5, 5, 2] = np.inf
    preds = glad.predict([nan, ok, inf, ok], batch_size=2)
    assert [p.status for p in preds][1::2] == ['ok', 'ok']
    for p in preds[0::2]:
        assert p.status.startswith('skipped:') and 'NaN or inf' in p.status
        assert np.isnan(p.score) and p.label is None and p.anomaly_map is None
    assert preds[1].score == pytest.approx(glad.predict(ok)[0].score, abs=1e-5) and preds[1].label is not None
    assert predictions_table(preds).status.tolist() == [p.status for p in preds]

def test_predict_cli_flags_a_float_tiff_with_nan(capsys, pixel_run, tmp_path):
    root, r = pixel_run; imgs = tmp_path/'imgs'; imgs.mkdir()
    shutil.copy(next((root/'normal').glob('*.png')), imgs/'good.png')
    a = np.full((32, 32), 0.5, np.float32); a[3, 3] = np.nan; Image.fromarray(a, mode='F').save(imgs/'nan.tif')
    bad(capsys, 2, ['nan.tif'], *_predict(model_of(r), imgs, tmp_path/'p'))
    import pandas as pd
    df = pd.read_csv(tmp_path/'p'/'scores.csv')
    row = df.set_index(df.path.map(lambda p: Path(p).name)).loc['nan.tif']
    assert row.status.startswith('skipped:') and 'NaN or inf' in row.status and pd.isna(row.score)
