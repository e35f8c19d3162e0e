"Edge cases and bad inputs of glad_nb.data (the notebook nbs/01_data.ipynb shows the normal paths)."
import csv, json, os, shutil, subprocess, sys, warnings
from pathlib import Path
import numpy as np
import pytest
import torch
from PIL import Image
from glad_nb.core import image_key, read_image
from glad_nb.core import DEMO_DEFECTS
from glad_nb.data import (AnomalyDataset, DEMO_CATEGORIES, DemoDataset, FolderDataset, MPDDDataset,
                          MVTecDataset, PCBBankDataset, Sample, VISA_COLUMNS, VisADataset, check_readable,
                          get_dataset, list_categories, load_sample, read_visa_split)
from glad_nb.demo import demo_root, make_demo_dataset

REPO = Path(__file__).resolve().parents[1]
VISA_CSV = REPO.parent/'shared'/'data'/'visa_split_1cls.csv'
RNG = np.random.default_rng(0)

def png(path, a, **kw):
    path = Path(path); path.parent.mkdir(parents=True, exist_ok=True)
    (a if isinstance(a, Image.Image) else Image.fromarray(a)).save(path, **kw); return path

def rgb(h=16, w=16): return RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)

def square_mask(h=16, w=16, v=255):
    m = np.zeros((h, w), np.uint8); m[4:10, 3:12] = v; return m

def mvtec(root, cat='widget', n_train=3, n_good=2, n_bad=2, defect='crack', mask_suffix='_mask'):
    c = Path(root)/cat
    for i in range(n_train): png(c/f'train/good/{i:03d}.png', rgb())
    for i in range(n_good): png(c/f'test/good/{i:03d}.png', rgb())
    for i in range(n_bad):
        png(c/f'test/{defect}/{i:03d}.png', rgb()); png(c/f'ground_truth/{defect}/{i:03d}{mask_suffix}.png', square_mask())
    return c

# ---------------------------------------------------------------- missing / empty things

def test_missing_root(tmp_path):
    with pytest.raises(FileNotFoundError, match='does not exist'): MVTecDataset(tmp_path/'nope', 'bottle')

def test_missing_category_lists_present(tmp_path):
    mvtec(tmp_path, 'bottle'); mvtec(tmp_path, 'cable')
    with pytest.raises(FileNotFoundError, match=r"'screw' not found.*present: \['bottle', 'cable'\]"):
        MVTecDataset(tmp_path, 'screw')
    with pytest.raises(FileNotFoundError, match=r"present: none.*carpet"): MVTecDataset(tmp_path/'bottle', 'screw')

def test_empty_and_missing_train_good(tmp_path):
    (tmp_path/'empty'/'train'/'good').mkdir(parents=True)
    (tmp_path/'empty'/'train'/'good'/'notes.txt').write_text('x')
    with pytest.raises(ValueError, match=r'empty/train/good holds no images'): MVTecDataset(tmp_path, 'empty')
    (tmp_path/'nogood'/'test').mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=r'nogood/train/good not found'): MVTecDataset(tmp_path, 'nogood')
    with pytest.raises(ValueError, match=r'test folder .*nogood/test holds no images'): MVTecDataset(tmp_path, 'nogood', 'test')

def test_anomalous_image_without_mask(tmp_path):
    c = mvtec(tmp_path)
    (c/'ground_truth/crack/001_mask.png').unlink()
    with pytest.raises(FileNotFoundError, match=r'test/crack/001.png has no mask.*001_mask.png'):
        MVTecDataset(tmp_path, 'widget', 'test')
    MVTecDataset(tmp_path, 'widget', 'train')   # training is unaffected

def test_mask_size_differs(tmp_path):
    c = mvtec(tmp_path)
    png(c/'ground_truth/crack/000_mask.png', square_mask(16, 12))
    ds = MVTecDataset(tmp_path, 'widget', 'test', 8)
    with pytest.raises(ValueError, match=r'000_mask.png is 12x16 but its image .*test/crack/000.png is 16x16'): ds[0]

def test_bad_arguments(tmp_path):
    mvtec(tmp_path)
    with pytest.raises(ValueError, match="split='val'"): MVTecDataset(tmp_path, 'widget', 'val')
    with pytest.raises(ValueError, match="mask_binarize='round'"): MVTecDataset(tmp_path, 'widget', mask_binarize='round')
    for bad in (0, -3, 1.5, (8,), (8, 0), 'big'):
        with pytest.raises(ValueError, match='image_size='): MVTecDataset(tmp_path, 'widget', image_size=bad)

# ---------------------------------------------------------------- unreadable files

def test_corrupt_image_names_file(tmp_path):
    c = mvtec(tmp_path)
    (c/'train/good/001.png').write_bytes(b'not a png at all')
    ds = MVTecDataset(tmp_path, 'widget', 'train', 8)   # lazy: construction does not decode
    ds[0]
    with pytest.raises(ValueError, match=r'cannot read image .*train/good/001.png'): ds[1]

def test_truncated_image_and_skip_unreadable(tmp_path):
    c = mvtec(tmp_path)
    good = (c/'train/good/002.png').read_bytes()
    (c/'train/good/002.png').write_bytes(good[:len(good) // 2])          # truncated
    (c/'train/good/000.png').write_bytes(b'\x89PNG garbage')              # corrupt header
    with pytest.warns(UserWarning, match='skipping unreadable') as rec:
        ds = MVTecDataset(tmp_path, 'widget', 'train', 8, skip_unreadable=True)
    assert len(rec) == 2 and {'000.png', '002.png'} == {Path(str(w.message).split(':')[0].split()[-1]).name for w in rec}
    assert [Path(s.path).name for s in ds.samples] == ['001.png']

def test_skip_unreadable_mask(tmp_path):
    c = mvtec(tmp_path)
    (c/'ground_truth/crack/000_mask.png').write_bytes(b'broken')
    with pytest.warns(UserWarning, match=r'000_mask.png'):
        ds = MVTecDataset(tmp_path, 'widget', 'test', 8, skip_unreadable=True)
    assert ds.counts() == {'crack': 1, 'good': 2}
    with pytest.raises(ValueError, match='000_mask.png'): MVTecDataset(tmp_path, 'widget', 'test', 8)[0]

def test_all_unreadable_is_an_error(tmp_path):
    c = mvtec(tmp_path, n_train=1)
    (c/'train/good/000.png').write_bytes(b'x')
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        with pytest.raises(ValueError, match='no train images'): MVTecDataset(tmp_path, 'widget', skip_unreadable=True)

# ---------------------------------------------------------------- image modes and masks

def test_image_modes_become_rgb(tmp_path):
    g = RNG.integers(0, 256, (16, 16), dtype=np.uint8)
    d = tmp_path/'c'/'train'/'good'
    png(d/'gray.png', g)
    png(d/'rgba.png', Image.fromarray(np.dstack([g, g, g, np.full_like(g, 255)]), 'RGBA'))
    png(d/'g16.png', Image.fromarray(g.astype(np.uint16) * 257))   # 16-bit grayscale, same picture
    png(d/'pal.png', Image.fromarray(g).convert('P'))
    png(d/'jpg.jpg', np.dstack([g] * 3), quality=100)
    ds = MVTecDataset(tmp_path, 'c', 'train', None)
    ref = torch.tensor(g / 255 * 2 - 1, dtype=torch.float32)
    for it in ds:
        x = it['image']
        assert x.shape == (3, 16, 16) and x.dtype == torch.float32, it['path']
        assert x.min() >= -1 and x.max() <= 1
        tol = 0.05 if it['path'].endswith('.jpg') else 1e-5
        assert torch.allclose(x, ref.expand(3, -1, -1), atol=tol), it['path']

def test_mask_encodings_and_binarisation(tmp_path):
    m255 = square_mask(); c = tmp_path/'c'
    for i, (m, kw) in enumerate([(m255, {}), (m255 // 255, {}), ((m255 // 255).astype(np.uint16) * 65535, {}),
                                 (np.dstack([m255] * 3), {})]):      # 0/255, 0/1, 16-bit, RGB masks
        png(c/f'test/bad/{i}.png', rgb()); png(c/f'ground_truth/bad/{i}.png', m, **kw)
    png(c/'train/good/0.png', rgb())
    ds = PCBBankDataset(tmp_path, 'c', 'test', None)
    ref = torch.tensor(m255 > 0, dtype=torch.float32)[None]
    for it in ds: assert torch.equal(it['mask'], ref), it['path']
    gt = PCBBankDataset(tmp_path, 'c', 'test', 24)[0]['mask']
    it = PCBBankDataset(tmp_path, 'c', 'test', 24, mask_binarize='int')[0]['mask']
    assert set(gt.unique().tolist()) <= {0.0, 1.0} and (it <= gt).all() and it.sum() < gt.sum()

def test_image_size_tuple_and_native(tmp_path):
    c = tmp_path/'c'
    png(c/'train/good/0.png', rgb(20, 30))
    png(c/'test/bad/0.png', rgb(20, 30)); png(c/'ground_truth/bad/0_mask.png', square_mask(20, 30))
    assert MVTecDataset(tmp_path, 'c', 'test', (10, 14))[0]['mask'].shape == (1, 10, 14)
    it = MVTecDataset(tmp_path, 'c', 'test', None)[0]
    assert it['image'].shape == (3, 20, 30) and it['mask'].shape == (1, 20, 30)

def test_collate_mixed_items(tmp_path):
    mvtec(tmp_path)
    ds = MVTecDataset(tmp_path, 'widget', 'test', 8)
    b = next(iter(torch.utils.data.DataLoader(ds, batch_size=len(ds))))
    assert b['image'].shape == (4, 3, 8, 8) and b['mask'].shape == (4, 1, 8, 8)
    assert b['label'].tolist() == [1, 1, 0, 0] and b['defect'] == ['crack', 'crack', 'good', 'good']
    assert b['has_mask'].all() and (b['mask'].flatten(1).sum(1) > 0).tolist() == [True, True, False, False]

def test_load_sample_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='gone.png'): load_sample(Sample(tmp_path/'gone.png', 0, 'good'), 8)

def test_hidden_and_non_image_files_ignored(tmp_path):
    c = mvtec(tmp_path)
    (c/'train/good/.DS_Store').write_bytes(b'x'); (c/'train/good/readme.txt').write_text('x')
    (c/'test/.ipynb_checkpoints').mkdir()
    assert len(MVTecDataset(tmp_path, 'widget')) == 3
    assert MVTecDataset(tmp_path, 'widget', 'test').counts() == {'crack': 2, 'good': 2}

# ---------------------------------------------------------------- VisA

def visa_rows(objs=('candle',), n=(2, 1, 2)):
    rows = []
    for o in objs:
        rows += [dict(object=o, split='train', label='normal', image=f'{o}/Data/Images/Normal/{i:04d}.JPG', mask='') for i in range(n[0])]
        rows += [dict(object=o, split='test', label='normal', image=f'{o}/Data/Images/Normal/{100 + i:04d}.JPG', mask='') for i in range(n[1])]
        rows += [dict(object=o, split='test', label='anomaly', image=f'{o}/Data/Images/Anomaly/{i:03d}.JPG',
                      mask=f'{o}/Data/Masks/Anomaly/{i:03d}.png') for i in range(n[2])]
    return rows

def write_visa(root, rows, columns=VISA_COLUMNS, csv_name='split_csv/1cls.csv', mask_value=255):
    root = Path(root)
    for r in rows:
        png(root/r['image'], rgb(12, 18))
        if r['mask']: png(root/r['mask'], square_mask(12, 18, mask_value))
    p = root/csv_name; p.parent.mkdir(parents=True, exist_ok=True)
    with open(p, 'w', newline='') as f:
        w = csv.writer(f); w.writerow(columns)
        for r in rows: w.writerow([r.get(c, '') for c in columns])
    return p

def test_visa_csv_layout(tmp_path):
    write_visa(tmp_path, visa_rows(('candle', 'fryum')), mask_value=1)
    tr, te = VisADataset(tmp_path, 'fryum', 'train', 8), VisADataset(tmp_path, 'fryum', 'test', 8)
    assert tr.layout == 'csv' and len(tr) == 2 and te.counts() == {'good': 1, 'bad': 2}
    it = te[1]
    assert it['label'] == 1 and it['mask'].sum() > 0 and 'fryum/Data/Images/Anomaly' in it['path']
    assert VisADataset.categories(tmp_path) == ['candle', 'fryum']
    assert list_categories('visa', tmp_path) == ['candle', 'fryum']

def test_visa_csv_explicit_path_and_search(tmp_path):
    p = write_visa(tmp_path, visa_rows(), csv_name='elsewhere/my.csv')
    with pytest.raises(FileNotFoundError, match=r'no split CSV was found.*split_csv/1cls.csv'): VisADataset(tmp_path, 'candle')
    assert len(VisADataset(tmp_path, 'candle', split_csv=p)) == 2
    with pytest.raises(FileNotFoundError, match='VisA split CSV not found'): VisADataset(tmp_path, 'candle', split_csv=tmp_path/'x.csv')

def test_visa_csv_wrong_columns(tmp_path):
    p = write_visa(tmp_path, visa_rows(), columns=('object', 'split', 'label', 'image_path', 'mask'))
    with pytest.raises(ValueError, match=r"1cls.csv: columns .* missing \['image'\]"): VisADataset(tmp_path, 'candle')
    with pytest.raises(ValueError, match='1cls.csv'): read_visa_split(p)

def test_visa_csv_bad_values(tmp_path):
    rows = visa_rows(); rows[1]['label'] = 'ok'
    p = write_visa(tmp_path/'a', rows)
    with pytest.raises(ValueError, match=r"line 3: label='ok'"): read_visa_split(p)
    rows = visa_rows(); rows[-1]['mask'] = ''
    p = write_visa(tmp_path/'b', rows)
    with pytest.raises(ValueError, match=r'Anomaly/001.JPG has no mask'): read_visa_split(p)
    p = tmp_path/'empty.csv'; p.write_text(','.join(VISA_COLUMNS) + '\n')
    with pytest.raises(ValueError, match='no rows'): read_visa_split(p)

def test_visa_csv_missing_files_and_object(tmp_path):
    write_visa(tmp_path, visa_rows())
    (tmp_path/'candle/Data/Masks/Anomaly/001.png').unlink()
    with pytest.raises(FileNotFoundError, match=r'1 file\(s\) named in .* missing.*Anomaly/001.png'): VisADataset(tmp_path, 'candle', 'test')
    (tmp_path/'cashew'/'Data').mkdir(parents=True)
    with pytest.raises(ValueError, match=r"no rows for object 'cashew'; objects: \['candle'\]"): VisADataset(tmp_path, 'cashew')

def test_visa_csv_cache_sees_edits(tmp_path):
    p = write_visa(tmp_path, visa_rows())
    assert len(read_visa_split(p)) == 5
    rows = visa_rows(n=(3, 1, 2)); write_visa(tmp_path, rows)
    os.utime(p, ns=(p.stat().st_atime_ns, p.stat().st_mtime_ns + 10**9))
    assert len(read_visa_split(p)) == 6

def test_visa_converted_layout(tmp_path):
    mvtec(tmp_path, 'pcb2', defect='bad', mask_suffix='')
    ds = VisADataset(tmp_path, 'pcb2', 'test', 8)
    assert ds.layout == 'converted' and ds.counts() == {'bad': 2, 'good': 2} and ds[0]['mask'].sum() > 0
    with pytest.raises(ValueError, match='layout='): VisADataset(tmp_path, 'pcb2', layout='mvtec')

@pytest.mark.skipif(not VISA_CSV.exists(), reason=f'{VISA_CSV} not found')
def test_real_visa_split():
    rows = read_visa_split(VISA_CSV)
    assert len(rows) == 8659 + 962 + 1200
    per = {}
    for r in rows: per.setdefault(r['object'], [0, 0, 0])[[('train', 'normal'), ('test', 'normal'), ('test', 'anomaly')].index((r['split'], r['label']))] += 1
    assert sorted(per) == sorted(list_categories('visa'))
    assert per['candle'] == [900, 100, 100] and per['capsules'] == [542, 60, 100] and per['pcb3'] == [905, 101, 100]
    for r in rows:
        assert r['image'].startswith(f"{r['object']}/Data/Images/{'Anomaly' if r['label'] == 'anomaly' else 'Normal'}/")
        assert (r['mask'] != '') == (r['label'] == 'anomaly')

@pytest.mark.skipif(not VISA_CSV.exists(), reason=f'{VISA_CSV} not found')
def test_real_visa_split_tiny_copy(tmp_path):
    rows = read_visa_split(VISA_CSV)
    keep = [r for r in rows if r['object'] == 'pcb1']
    keep = [r for k in [('train', 'normal'), ('test', 'normal'), ('test', 'anomaly')] for r in [r for r in keep if (r['split'], r['label']) == k][:4]]
    write_visa(tmp_path, keep)
    te = VisADataset(tmp_path, 'pcb1', 'test', 8, split_csv=tmp_path/'split_csv/1cls.csv')
    assert te.counts() == {'good': 4, 'bad': 4} and te.labels.tolist() == [0] * 4 + [1] * 4

# ---------------------------------------------------------------- Folder

def folder(root, n_normal=5, n_bad=2, masks=True):
    for i in range(n_normal): png(Path(root)/f'normal/n{i}.png', rgb())
    for i in range(n_bad):
        png(Path(root)/f'abnormal/a{i}.png', rgb())
        if masks: png(Path(root)/f'masks/a{i}.png', square_mask())

def test_folder_dataset(tmp_path):
    folder(tmp_path)
    tr = FolderDataset(tmp_path, split='train', image_size=8, test_ratio=0.4, mask_dir='masks')
    te = FolderDataset(tmp_path, split='test', image_size=8, test_ratio=0.4, mask_dir='masks')
    assert (len(tr), len(te)) == (3, 4) and te.has_masks and te.counts() == {'good': 2, 'abnormal': 2}
    assert not {s.path for s in tr.samples} & {s.path for s in te.samples}
    other = FolderDataset(tmp_path, split='train', image_size=8, test_ratio=0.4, seed=5)
    assert len(other) == 3
    te = FolderDataset(tmp_path, split='test', image_size=8, normal_test_dir='normal', mask_dir=None)   # masks/ ignored on request
    assert te.counts() == {'good': 5, 'abnormal': 2} and not te.has_masks and te[-1]['has_mask'] is False
    assert te[-1]['mask'].sum() == 0 and te[0]['has_mask'] is True

def test_folder_bad_inputs(tmp_path):
    folder(tmp_path, masks=False)
    with pytest.raises(FileNotFoundError, match=r'mask_dir .*masks does not exist'):
        FolderDataset(tmp_path, split='test', mask_dir='masks')
    png(tmp_path/'masks/a0.png', square_mask())
    with pytest.raises(FileNotFoundError, match=r'abnormal/a1.png has no mask'): FolderDataset(tmp_path, split='test', mask_dir='masks')
    with pytest.raises(FileNotFoundError, match=r'normal_dir .*good does not exist'): FolderDataset(tmp_path, normal_dir='good')
    with pytest.raises(ValueError, match='test_ratio=1'): FolderDataset(tmp_path, test_ratio=1)
    (tmp_path/'empty').mkdir()
    with pytest.raises(ValueError, match='holds no images'): FolderDataset(tmp_path, normal_dir='empty')

def test_folder_category_subfolder(tmp_path):
    folder(tmp_path/'part_a'); folder(tmp_path/'part_b')
    assert FolderDataset.categories(tmp_path) == ['part_a', 'part_b']
    assert len(get_dataset('folder', tmp_path, 'part_b', 'test', image_size=8, mask_dir='masks')) == 3

# ---------------------------------------------------------------- factory

def test_get_dataset_and_categories(tmp_path):
    mvtec(tmp_path, 'x')
    for name, cls in [('mvtec', MVTecDataset), ('mpdd', MPDDDataset), ('pcbbank', PCBBankDataset), ('visa', VisADataset)]:
        ds = get_dataset(name, tmp_path, 'x', 'test', image_size=8)
        assert type(ds) is cls and isinstance(ds, AnomalyDataset) and len(ds) == 4
    with pytest.raises(ValueError, match="unknown dataset 'btad'"): get_dataset('btad', tmp_path, 'x')
    with pytest.raises(ValueError, match='needs root'): get_dataset('visa', None, 'candle')
    assert [len(list_categories(n)) for n in ('mvtec', 'mpdd', 'visa', 'pcbbank', 'demo', 'folder')] == [15, 6, 12, 7, 4, 0]
    assert list_categories('mpdd', tmp_path) == ['x'] and list_categories('mvtec', tmp_path/'nope') == []
    with pytest.raises(ValueError, match='unknown dataset'): list_categories('nope')

# ---------------------------------------------------------------- demo dataset

SMALL = dict(n_train=2, n_test_good=1, n_test_bad=1, size=32)

def snapshot(root):
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, p.read_bytes()) for p in Path(root).rglob('*') if p.is_file()}

def test_demo_layout_and_masks(tmp_path):
    r = make_demo_dataset(tmp_path/'demo', n_train=3, n_test_good=2, n_test_bad=2, size=48)
    man = json.loads((r/'manifest.json').read_text())
    assert len(man['files']) == 4 * (3 + 2 + 3 * 2 * 2) and not (r/'.incomplete').exists()
    for cat in DEMO_CATEGORIES:
        te = MVTecDataset(r, cat, 'test', None)
        assert te.counts() == {'good': 2, **{d: 2 for d in DEMO_DEFECTS[cat]}}
        for s, it in zip(te.samples, te):
            assert it['image'].shape == (3, 48, 48)
            assert (it['mask'].sum() > 0) == (s.label == 1)
            if s.label: assert s.mask_path.name == s.path.stem + '_mask.png'

def test_demo_idempotent(tmp_path):
    r = make_demo_dataset(tmp_path, **SMALL)
    before = snapshot(r)
    make_demo_dataset(tmp_path, **SMALL)
    assert snapshot(r) == before

def test_demo_interrupted_is_redone(tmp_path):
    r = make_demo_dataset(tmp_path, **SMALL)
    ref = snapshot(r)
    params = json.loads((r/'manifest.json').read_text())['params']
    (r/'manifest.json').unlink(); (r/'brick/train/good/001.png').unlink()   # as if killed before the manifest:
    (r/'.incomplete').write_text(json.dumps(params))                         # the marker written first (its params) is still there
    make_demo_dataset(tmp_path, **SMALL)
    assert not (r/'.incomplete').exists()
    assert {k: v[1] for k, v in snapshot(r).items()} == {k: v[1] for k, v in ref.items()}
    (r/'grass/test/good/000.png').unlink()                                  # a file lost after completion
    make_demo_dataset(tmp_path, **SMALL)
    assert (r/'grass/test/good/000.png').read_bytes() == ref['grass/test/good/000.png'][1]
    (r/'manifest.json').unlink()                                            # no manifest, no marker: not ours
    with pytest.raises(FileExistsError, match='holds no demo manifest'): make_demo_dataset(tmp_path, **SMALL)

def test_demo_never_follows_a_planted_category_link(tmp_path):
    "A symbolic link named like a demo category in the demo's own root: a one-line refusal, the link and its target untouched."
    r = make_demo_dataset(tmp_path/'demo', **{**SMALL, 'n_train': 4})
    user = tmp_path/'user'; user.mkdir(); (user/'keep.png').write_text('precious')
    shutil.rmtree(r/'brick'); (r/'brick').symlink_to(user, target_is_directory=True)
    with pytest.raises(FileExistsError, match='brick is a symbolic link'): make_demo_dataset(r, **SMALL)   # new parameters: a rewrite
    assert (user/'keep.png').read_text() == 'precious' and (r/'brick').is_symlink()

def test_demo_parameters_change_rewrites_without_stale_files(tmp_path):
    make_demo_dataset(tmp_path, **{**SMALL, 'n_train': 4})
    r = make_demo_dataset(tmp_path, categories=['coffee', 'brick'], **SMALL)
    assert sorted(p.name for p in r.iterdir() if p.is_dir()) == ['brick', 'coffee']
    assert len(list((r/'coffee/train/good').iterdir())) == 2
    assert MVTecDataset.categories(r) == ['brick', 'coffee']

def test_demo_more_images_keep_the_first(tmp_path):
    a = make_demo_dataset(tmp_path/'a', categories='gravel', **SMALL)
    b = make_demo_dataset(tmp_path/'b', categories='gravel', **{**SMALL, 'n_train': 5, 'n_test_bad': 3})
    for f in ['gravel/train/good/001.png', 'gravel/test/stain/000.png', 'gravel/ground_truth/stain/000_mask.png']:
        assert (a/f).read_bytes() == (b/f).read_bytes()

def test_demo_deterministic_across_processes(tmp_path):
    code = ("from glad_nb.demo import make_demo_dataset; import sys; "
            "make_demo_dataset(sys.argv[1], categories=['coffee', 'grass'], seed=3, n_train=1, n_test_good=1, n_test_bad=1, size=32)")
    for d in 'ab': subprocess.run([sys.executable, '-c', code, str(tmp_path/d)], check=True)
    sa, sb = snapshot(tmp_path/'a'), snapshot(tmp_path/'b')
    assert sa.keys() == sb.keys() and all(sa[k][1] == sb[k][1] for k in sa)

def test_demo_refuses_foreign_folder_and_bad_args(tmp_path):
    (tmp_path/'mine.txt').write_text('precious')
    with pytest.raises(FileExistsError, match='not empty and holds no demo manifest'): make_demo_dataset(tmp_path, **SMALL)
    assert (tmp_path/'mine.txt').read_text() == 'precious'
    d = tmp_path/'d'
    with pytest.raises(ValueError, match='categories='): make_demo_dataset(d, categories=['carpet'])
    with pytest.raises(ValueError, match='categories='): make_demo_dataset(d, categories=[])
    with pytest.raises(ValueError, match='size=33'): make_demo_dataset(d, size=33)
    with pytest.raises(ValueError, match='n_train=0'): make_demo_dataset(d, n_train=0)
    assert not d.exists()

def test_demo_dataset_class_and_root(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match='does not exist'): DemoDataset(tmp_path/'x', 'brick', generate=False)
    monkeypatch.setenv('GLAD_NB_DEMO', str(tmp_path/'env'))
    assert demo_root() == tmp_path/'env'
    make_demo_dataset(**SMALL)                                 # written at $GLAD_NB_DEMO
    ds = get_dataset('demo', None, 'coffee', 'test', image_size=16)
    assert ds.root == tmp_path/'env' and len(ds) == 4 and ds.labels.sum() == 3   # the existing set is used as is
    monkeypatch.delenv('GLAD_NB_DEMO'); monkeypatch.chdir(REPO/'nbs' if (REPO/'nbs').is_dir() else REPO)
    assert demo_root() == REPO/'data'/'demo'

# ---------------------------------------------------------------- per-image keys

def test_key_is_the_pixels_identity(tmp_path):
    "Same pixels under two names and formats: one key; other pixels: other keys; image_size does not matter."
    a, b = rgb(20, 30), rgb(20, 30)
    png(tmp_path/'normal/x.png', a); png(tmp_path/'normal/x_copy.bmp', a); png(tmp_path/'normal/y.png', b)
    png(tmp_path/'normal/x_big.png', np.kron(a, np.ones((2, 2, 1), np.uint8)))   # the same picture at twice the size
    keys = {}
    for size in (None, 8, (12, 20)):
        ds = FolderDataset(tmp_path, image_size=size, test_ratio=0)
        keys[size] = {Path(it['path']).name: it['key'] for it in ds}
    assert keys[None] == keys[8] == keys[(12, 20)]                               # not a function of image_size
    k = keys[None]
    assert k['x.png'] == k['x_copy.bmp'] == image_key(torch.from_numpy(a).permute(2, 0, 1) / 255)
    assert len({k['x.png'], k['y.png'], k['x_big.png']}) == 3
    assert isinstance(k['y.png'], str) and len(k['y.png']) == 16

def test_every_dataset_class_gives_keys(tmp_path):
    "MVTec, MPDD, PCB-Bank, VisA (both layouts), Folder and Demo items all carry the key of their image file."
    mvtec(tmp_path/'m', 'x'); write_visa(tmp_path/'v', visa_rows()); folder(tmp_path/'f')
    make_demo_dataset(tmp_path/'d', categories='brick', **SMALL)
    sets = [cls(tmp_path/'m', 'x', 'test', 8) for cls in (MVTecDataset, MPDDDataset, PCBBankDataset, VisADataset)]
    sets += [VisADataset(tmp_path/'v', 'candle', 'test', 8), FolderDataset(tmp_path/'f', split='test', image_size=8, mask_dir='masks'),
             DemoDataset(tmp_path/'d', 'brick', 'test', 8, generate=False)]
    for ds in sets:
        for s, it in zip(ds.samples, ds):
            assert it['key'] == read_image(s.path, with_key=True)[1], (type(ds).__name__, s.path)
    b = next(iter(torch.utils.data.DataLoader(sets[0], batch_size=4)))
    assert b['key'] == [sets[0][i]['key'] for i in range(4)]                       # keys collate as a list of str

# ---------------------------------------------------------------- readability scan

def test_check_readable_reports_every_bad_file(tmp_path):
    "A truncated PNG, a text file named .png and an unreadable mask are all reported, with one-line reasons; good files are not."
    c = mvtec(tmp_path, n_train=3)
    good = (c/'train/good/000.png').read_bytes()
    (c/'train/good/001.png').write_bytes(good[:len(good) // 2])                   # truncated
    (c/'train/good/002.png').write_text('version https://git-lfs.github.com/spec/v1\noid sha256:0\n')   # text named .png
    m = (c/'ground_truth/crack/001_mask.png').read_bytes()
    (c/'ground_truth/crack/001_mask.png').write_bytes(m[:40])                     # a mask that cannot be read
    tr, te = MVTecDataset(tmp_path, 'widget', 'train', 8), MVTecDataset(tmp_path, 'widget', 'test', 8)   # lazy: builds fine
    bad = check_readable(tr)
    assert [p.name for p, _ in bad] == ['001.png', '002.png']
    why = dict((p.name, r) for p, r in bad)
    assert why['001.png'].startswith('cannot decode: ') and 'truncated' in why['001.png']
    assert why['002.png'] == 'not an image file (PIL cannot identify its format)'
    assert [p.name for p, _ in check_readable(tr, full=False)] == ['002.png']     # the header pass alone
    bad = check_readable(te, progress=True)
    assert [p.relative_to(c).as_posix() for p, _ in bad] == ['ground_truth/crack/001_mask.png'] and '\n' not in bad[0][1]
    assert check_readable([c/'train/good/000.png', c/'nope.png']) == [(c/'nope.png', 'file not found')]
