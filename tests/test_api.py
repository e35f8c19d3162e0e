"""The Python API end to end (issue 13): a fresh-process `from glad_nb import GLAD`, `GLAD.from_pretrained` on a tiny
SD-layout folder predicting on paths, PIL images and arrays of any size, thresholds that survive save/load, and the CPU
recipe (`GLAD.pixel`) trained on a generated folder dataset, calibrated on held-out normals, deciding sensibly."""
import json, subprocess, sys
from pathlib import Path
import numpy as np
import pytest
import torch
from PIL import Image
from tiny import _img

ROOT = Path(__file__).resolve().parent.parent
RED = lambda o: (o[..., 0] == 255) & (o[..., 1] == 0) & (o[..., 2] == 0)   # the top of the overlay's fixed scale

def test_top_level_import_in_fresh_process():
    code = "from glad_nb import GLAD, GLADConfig, TrainConfig, preset, get_dataset; print(GLAD.__module__, GLAD.predict.__doc__ is not None)"
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split() == ['glad_nb.pipeline', 'True']

# -- GLAD.from_pretrained on the tiny SD 1.4 / DINO stand-ins

@pytest.fixture(scope='module')
def sd_glad(tiny_inputs):
    from glad_nb import GLAD, preset
    cfg = preset('mvtec', 'carpet').replace(image_size=32, feature_size=32, score_topk=10)
    return GLAD.from_pretrained(tiny_inputs['sd'], dino=tiny_inputs['dino'], config=cfg, device='cpu')

def test_from_pretrained_predicts_paths_pil_and_arrays_at_their_own_size(sd_glad, tiny_inputs):
    f = sorted((tiny_inputs['root']/'pcb1'/'test'/'bad').glob('*.png'))[0]
    a = np.asarray(Image.open(f).convert('RGB'))
    pil = Image.fromarray(a).resize((50, 40))
    preds = sd_glad.predict([f, pil, a[:24, :20], a[..., 0]])
    assert [p.anomaly_map.shape for p in preds] == [a.shape[:2], (40, 50), (24, 20), a.shape[:2]]
    assert all(p.anomaly_map.dtype == np.float32 and np.isfinite(p.score) for p in preds)
    assert [p.path for p in preds] == [str(f), None, None, None]
    assert all(p.label is None and p.mask is None and p.norm_score is None for p in preds)   # fresh: no thresholds
    assert sd_glad.predict(a)[0].score == pytest.approx(preds[0].score, abs=1e-6)         # same pixels, same result
    alone = sd_glad.predict(pil)[0]                                                       # alone or in a batch: the same
    assert alone.score == pytest.approx(preds[1].score, abs=1e-5) and np.allclose(alone.anomaly_map, preds[1].anomaly_map, atol=1e-4)

def test_calibrate_then_predict_gives_labels_and_masks_and_they_survive_save_load(sd_glad, tiny_inputs, tmp_path):
    from glad_nb import GLAD, get_dataset
    tr = get_dataset('visa', tiny_inputs['root'], 'pcb1', 'train', image_size=32)
    te = get_dataset('visa', tiny_inputs['root'], 'pcb1', 'test', image_size=32)
    th = sd_glad.calibrate(tr)
    assert th.method == 'normal' and th.n_images == len(tr) and th.image > th.image_max and th.pixel > th.pixel_max   # a hair above
    preds = sd_glad.predict(te)
    assert all(isinstance(p.label, bool) and p.mask.dtype == bool and p.mask.shape == p.anomaly_map.shape for p in preds)
    assert all(p.label == (p.norm_score > 0.5) and 0 <= p.norm_score <= 1 for p in preds)
    assert not any(p.label for p in sd_glad.predict(tr))          # calibration images are never flagged by the default
    sd_glad.save(tmp_path/'model')
    assert json.loads((tmp_path/'model'/'thresholds.json').read_text()) == th.to_dict()
    back = GLAD.load(tmp_path/'model', device='cpu')
    assert back.thresholds.to_dict() == th.to_dict()
    assert back.protocol()['thresholds'] == th.to_dict()
    again = back.predict(te)
    assert [p.label for p in again] == [p.label for p in preds]
    assert np.allclose([p.score for p in again], [p.score for p in preds], atol=1e-5)

def test_bad_inputs_are_refused_with_a_reason(sd_glad):
    with pytest.raises(ValueError, match=r'\[-1, 1\]'): sd_glad.predict(torch.rand(3, 16, 16) * 2 - 1)
    with pytest.raises(TypeError, match='cannot read an image'): sd_glad.predict([object()])
    with pytest.raises(FileNotFoundError): sd_glad.predict(['/no/such/image.png'])
    with pytest.raises(ValueError, match='no images'): sd_glad.calibrate([])
    with pytest.raises(ValueError, match='quantile'): sd_glad.calibrate([np.zeros((8, 8))], quantile=0)
    assert sd_glad.predict([]) == []

def test_every_kind_of_input_reads_the_same_pixels(tmp_path):
    "A file, the PIL image it opens to and the array behind it: same tensor, same key (so the same noise and result)."
    from glad_nb.api import load_input
    rgba = (np.random.default_rng(3).random((12, 10, 4)) * 255).astype(np.uint8)
    Image.fromarray(rgba, 'RGBA').save(tmp_path/'a.png')
    Image.fromarray(rgba[..., 0]).save(tmp_path/'g.png')
    Image.fromarray(rgba[..., 0].astype(np.uint16) * 257).save(tmp_path/'g16.png')    # a 16-bit grey PNG
    (xf, kf, pf), (xp, kp, pp) = load_input(tmp_path/'a.png'), load_input(Image.open(tmp_path/'a.png'))
    assert kf == kp and torch.allclose(xf, xp) and pf == str(tmp_path/'a.png') and pp is None   # RGBA: onto black, both ways
    grey = [load_input(x) for x in (tmp_path/'g.png', tmp_path/'g16.png', rgba[..., 0], torch.from_numpy(rgba[..., 0]),
                                    rgba[..., 0] / 255.0, Image.open(tmp_path/'g.png'))]
    assert all(torch.allclose(g[0], grey[0][0], atol=1e-6) and g[1] == grey[0][1] for g in grey)
    assert grey[0][0].shape == (3, 12, 10)

def test_predict_takes_a_folder_in_name_order(sd_glad, tmp_path):
    rng = np.random.default_rng(4)
    for name, (h, w) in (('b.png', (20, 36)), ('a.jpg', (40, 24)), ('c.bmp', (32, 32))):
        Image.fromarray((rng.random((h, w, 3)) * 255).astype(np.uint8)).save(tmp_path/name)
    (tmp_path/'notes.txt').write_text('not an image')
    preds = sd_glad.predict(tmp_path, batch_size=2)
    assert [Path(p.path).name for p in preds] == ['a.jpg', 'b.png', 'c.bmp']
    assert [p.anomaly_map.shape for p in preds] == [(40, 24), (20, 36), (32, 32)]

# -- the CPU recipe on a generated folder dataset

@pytest.fixture(scope='module')
def pixel_run(tmp_path_factory):
    "GLAD.pixel trained briefly on 25 normal 32-px images (8 held out for τ and thresholds)."
    from glad_nb import GLAD, get_dataset
    root, rng = tmp_path_factory.mktemp('folder'), np.random.default_rng(0)
    for sub, n in (('normal', 28), ('abnormal', 2)):
        d = root/'parts'/sub; d.mkdir(parents=True)
        for i in range(n): Image.fromarray(_img(rng, 32, sub == 'abnormal')[0]).save(d/f'{i:03d}.png')
    tr = get_dataset('folder', root, 'parts', 'train', image_size=32, test_ratio=0.1)
    te = get_dataset('folder', root, 'parts', 'test', image_size=32, test_ratio=0.1)
    glad = GLAD.pixel(32, device='cpu')
    glad.fit_calibrated(tr, GLAD.pixel_train_config(32, steps=120, ckpt_every=120, batch_size=8), root/'train', progress=False)
    return glad, tr, te

def test_pixel_recipe_holds_out_normals_and_calibrates_on_them(pixel_run):
    glad, tr, te = pixel_run
    ho = glad.thresholds.holdout
    assert ho['n_holdout'] == 8 and ho['n_train'] == len(tr) - 8 and glad.thresholds.n_images == 8
    assert glad.protocol()['thresholds']['holdout'] == ho       # recorded with every result
    preds = glad.predict([tr[i]['path'] for i in ho['indices']])
    assert all(not p.label and not p.mask.any() and p.norm_score <= 0.5 for p in preds)
    assert all(p.norm_score < 0.5 for p in preds)                # the threshold sits a hair above the held-out maximum

def test_pixel_recipe_normal_looks_normal_and_a_defect_is_red(pixel_run):
    from glad_nb.api import overlay
    glad, tr, te = pixel_run
    good = [te[i]['path'] for i in range(len(te)) if te[i]['label'] == 0]     # normal images it neither trained nor calibrated on
    preds = glad.predict(good)
    # the image threshold is the largest of 8 held-out normal scores: a new normal image lies above it with probability
    # 1/9 (exchangeable scores), so one of three may; none may reach the top of the scale, and none shows a red pixel
    assert len(good) == 3 and sum(p.label for p in preds) <= 1
    for f, p in zip(good, preds):
        assert p.norm_score < 1.0
        assert not RED(overlay(f, p.anomaly_map, glad.thresholds, alpha=1)).any()
    x = np.asarray(Image.open(good[0]).convert('RGB')).copy(); x[8:20, 10:22] = (255, 0, 255)   # a large magenta patch
    x = np.asarray(Image.fromarray(x).resize((64, 64), Image.NEAREST))                          # at twice the model's size
    p = glad.predict(x)[0]
    assert p.label and p.norm_score > 0.5 and p.mask.shape == (64, 64) and p.mask[16:40, 20:44].mean() > 0.5
    assert RED(overlay(x, p.anomaly_map, glad.thresholds, alpha=1))[16:40, 20:44].any()
    assert overlay(x, p.anomaly_map, glad.thresholds).shape == (64, 64, 3)
