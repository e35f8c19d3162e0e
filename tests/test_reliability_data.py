"""Reliability, round 2: images, masks and datasets as a hostile tester feeds them. Each test is one case of the issue:
EXIF orientation, float and 32-bit images and masks, JPEG masks, the folder layout's masks/, masks of another size,
splits whose metrics are undefined, and file names that are not UTF-8 or are near 255 bytes. No model is needed:
the whole file takes a few seconds."""
import os, sys
from pathlib import Path
import numpy as np
import pytest
import torch
from PIL import Image, ImageOps
from scipy import ndimage as ndi
from glad_nb.core import read_image, read_mask
from glad_nb.data import check_readable, get_dataset, list_images, load_sample, split_warnings

RNG = np.random.default_rng(0)

def save(path, a, **kw):
    "Save an array or PIL image to `path` (parents created); returns the path."
    path = Path(path); path.parent.mkdir(parents=True, exist_ok=True)
    (a if isinstance(a, Image.Image) else Image.fromarray(a)).save(path, **kw)
    return path

def with_orientation(path, a, o, **kw):
    "Save `a` with EXIF orientation `o`."
    ex = Image.Exif(); ex[0x0112] = o
    return save(path, a, exif=ex.tobytes(), **kw)

def square(h=16, w=16, v=255, box=(4, 12, 3, 11)):
    m = np.zeros((h, w), np.uint8); m[box[0]:box[1], box[2]:box[3]] = v; return m

def rgb(h=16, w=16): return RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)

def folder(root, n_normal=5, n_bad=2, mask=lambda i: square(), mask_name='a{i}.png'):
    "data/README.md's folder layout: normal/, abnormal/ and masks/."
    root = Path(root)
    for i in range(n_normal): save(root/f'normal/n{i}.png', rgb())
    for i in range(n_bad):
        save(root/f'abnormal/a{i}.png', rgb())
        if mask is not None: save(root/'masks'/mask_name.format(i=i), mask(i))
    return root

# --- 1. EXIF orientation ------------------------------------------------------------------------------------------

def test_exif_orientation_6_jpeg_is_read_upright(tmp_path):
    "A photo stored 200x100 with Orientation=6 is shown (and read) 100 wide, 200 high: images, masks and api inputs alike."
    up = np.zeros((200, 100, 3), np.uint8); up[10:50, 20:60] = 255                   # as shown
    p = with_orientation(tmp_path/'photo.jpg', np.rot90(up, 1).copy(), 6, quality=95)  # as stored
    assert Image.open(p).size == (200, 100) and Image.open(p).getexif().get(0x0112) == 6
    x = read_image(p)
    assert x.shape == (3, 200, 100)
    assert torch.allclose(x[0], torch.tensor(up[..., 0] / 255, dtype=torch.float32), atol=0.1)
    m = with_orientation(tmp_path/'mask.jpg', np.rot90(up[..., 0], 1).copy(), 6, quality=95)
    assert torch.equal(read_mask(m)[0], torch.tensor(up[..., 0] > 127, dtype=torch.float32))
    from glad_nb.api import load_input                                                # predict's path reader
    xi, key, path = load_input(p)
    assert xi.shape == (3, 200, 100) and path == str(p)

@pytest.mark.parametrize('o', range(1, 9))
def test_every_orientation_matches_pil(tmp_path, o):
    a = rgb(6, 10)
    p = with_orientation(tmp_path/'x.png', a, o)                                     # PNG eXIf: lossless, exact
    ref = np.asarray(ImageOps.exif_transpose(Image.open(p)))
    assert np.array_equal((read_image(p).permute(1, 2, 0) * 255).round().byte().numpy(), ref)

def test_upright_mask_fits_rotated_photo_in_a_dataset(tmp_path):
    "The mask is drawn on what the viewer shows: the size check and the dataset agree with it."
    up = np.zeros((24, 16, 3), np.uint8); up[2:8, 3:9] = 255
    root = tmp_path/'parts'
    for i in range(3): save(root/f'normal/n{i}.png', rgb(24, 16))
    with_orientation(root/'abnormal/a.jpg', np.rot90(up, 1).copy(), 6, quality=95)
    save(root/'masks/a.png', up[..., 0])
    ds = get_dataset('folder', root, '', 'test', image_size=None, test_ratio=0.4)
    assert check_readable(ds) == []
    it = ds[len(ds) - 1]
    assert it['image'].shape == (3, 24, 16) and torch.equal(it['mask'][0], torch.tensor(up[..., 0] > 0, dtype=torch.float32))

# --- 2. float and 32-bit images, float masks ------------------------------------------------------------------------

def test_float_tiff_is_intensity_not_scaled_by_its_maximum(tmp_path):
    g = RNG.random((12, 10)).astype(np.float32)
    half = save(tmp_path/'half.tif', Image.fromarray(g * 0.25, 'F'))
    assert Image.open(half).mode == 'F'
    assert torch.allclose(read_image(half)[0], torch.from_numpy(g * 0.25), atol=1e-6)   # dark stays dark
    wide = save(tmp_path/'wide.tif', Image.fromarray(g * 4 - 2, 'F'))
    assert torch.allclose(read_image(wide)[1], torch.from_numpy(np.clip(g * 4 - 2, 0, 1)), atol=1e-6)

@pytest.mark.parametrize('bad', [np.nan, np.inf, -np.inf])
def test_float_nan_or_inf_is_refused_naming_the_file(tmp_path, bad):
    g = RNG.random((8, 8)).astype(np.float32); g[2, 3] = bad
    p = save(tmp_path/'weird.tif', Image.fromarray(g, 'F'))
    with pytest.raises(ValueError, match=r'weird\.tif.*NaN or infinite') as e: read_image(p)
    assert '\n' not in str(e.value)
    with pytest.raises(ValueError, match=r'weird\.tif'): read_mask(p)

def test_integer_images_by_bit_depth(tmp_path):
    "16-bit: /65535; 32-bit integer: the 16-bit scale too, whatever the maximum; out of 0..65535 refused."
    v = RNG.integers(0, 200, (8, 8)).astype(np.uint16)                                 # a very dark 16-bit image
    assert torch.allclose(read_image(save(tmp_path/'d16.png', v))[0], torch.from_numpy(v / 65535).float(), atol=1e-6)
    p = save(tmp_path/'i32.tif', v.astype(np.int32))
    assert Image.open(p).mode == 'I'
    assert torch.allclose(read_image(p)[0], torch.from_numpy(v / 65535).float(), atol=1e-6)   # not /255
    with pytest.raises(ValueError, match=r'big\.tif.*0\.\.65535'): read_image(save(tmp_path/'big.tif', v.astype(np.int32) * 1000))

def test_float_mask_is_anomalous_above_one_half(tmp_path):
    g = RNG.random((12, 10)).astype(np.float32)
    p = save(tmp_path/'m.tif', Image.fromarray(g, 'F'))
    assert torch.equal(read_mask(p)[0], torch.from_numpy((g > 0.5).astype(np.float32)))
    assert torch.equal(read_mask(save(tmp_path/'m01.tif', Image.fromarray((g > 0.5).astype(np.float32), 'F')))[0],
                       read_mask(p)[0])

# --- 3. JPEG masks ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize('quality', [30, 75, 95])
def test_jpeg_mask_equals_png_mask_up_to_edge_pixels(tmp_path, quality):
    m = np.zeros((64, 64), np.uint8); m[20:40, 10:50] = 255; m[5:8, 5:60] = 255; m[45:60, 30:33] = 255
    png, jpg = save(tmp_path/'m.png', m), save(tmp_path/'m.jpg', m, quality=quality)
    raw = np.asarray(Image.open(jpg))
    assert ((raw > 0) & (m == 0)).sum() > 0                                          # the noise `> 0` used to count
    a, b = read_mask(png)[0].numpy() > 0, read_mask(jpg)[0].numpy() > 0
    edge = ndi.binary_dilation(a) & ~ndi.binary_erosion(a)
    assert not ((a != b) & ~edge).any()
    for size, how in [(32, 'gt0.5'), (48, 'int')]:                                    # both binarisations, after a resize
        a, b = read_mask(png, size, how)[0].numpy() > 0, read_mask(jpg, size, how)[0].numpy() > 0
        edge = ndi.binary_dilation(a, iterations=2) | ndi.binary_dilation(b, iterations=2)
        edge &= ~(ndi.binary_erosion(a, iterations=2) & ndi.binary_erosion(b, iterations=2))
        assert not ((a != b) & ~edge).any(), (size, how)

def test_mask_encodings_agree(tmp_path):
    "0/255, 0/1, 16-bit 0/65535, 0/1 16-bit, RGB, a red-only mask and a palette mask are one mask."
    m = square()
    pal = Image.fromarray((m > 0).astype(np.uint8), 'P'); pal.putpalette([0, 0, 0, 255, 0, 0])
    files = [save(tmp_path/'a.png', m), save(tmp_path/'b.png', m // 255), save(tmp_path/'c.png', (m > 0).astype(np.uint16) * 65535),
             save(tmp_path/'d.png', (m > 0).astype(np.uint16)), save(tmp_path/'e.png', np.dstack([m] * 3)),
             save(tmp_path/'f.png', np.dstack([m, m * 0, m * 0])), save(tmp_path/'g.png', pal)]
    ref = torch.tensor(m > 0, dtype=torch.float32)[None]
    for f in files: assert torch.equal(read_mask(f), ref), f.name
    faint = save(tmp_path/'faint.png', (m > 0).astype(np.uint8) * 100)                # below half the range: not a defect
    assert read_mask(faint).sum() == 0

# --- 4. the folder layout's masks/ ------------------------------------------------------------------------------------

def test_folder_dataset_finds_masks_folder_by_default(tmp_path):
    folder(tmp_path)
    te = get_dataset('folder', tmp_path, '', 'test', image_size=8)
    assert te.has_masks and te.counts() == {'good': 1, 'abnormal': 2}
    masks = [te[i]['mask'] for i in range(len(te)) if te.samples[i].label == 1]
    assert len(masks) == 2 and all(m.sum() > 0 for m in masks)
    assert not get_dataset('folder', tmp_path, '', 'test', image_size=8, mask_dir=None).has_masks   # turned off on request

def test_folder_masks_any_suffix_and_mask_suffix(tmp_path):
    folder(tmp_path, mask=None)
    save(tmp_path/'masks/a0_mask.jpg', square(), quality=90); save(tmp_path/'masks/a1.bmp', square())
    te = get_dataset('folder', tmp_path, '', 'test', image_size=None)
    assert [s.mask_path.name for s in te.samples if s.label == 1] == ['a0_mask.jpg', 'a1.bmp']
    assert all(te[i]['mask'].sum() == 64 for i in range(len(te)) if te.samples[i].label == 1)

def test_folder_anomalous_image_without_mask_is_a_one_line_error(tmp_path):
    folder(tmp_path, n_bad=3)
    (tmp_path/'masks/a1.png').unlink()
    with pytest.raises(FileNotFoundError, match=r'abnormal/a1\.png has no mask.*1 of 3') as e: get_dataset('folder', tmp_path, '', 'test')
    assert '\n' not in str(e.value)
    from glad_nb.options import checked_dataset, CLIError
    with pytest.raises(CLIError, match=r'a1\.png has no mask') as e: checked_dataset('folder', tmp_path, '', 'test', image_size=8)
    assert e.value.code == 2

def test_folder_two_masks_for_one_image_is_an_error(tmp_path):
    folder(tmp_path); save(tmp_path/'masks/a0.jpg', square())
    with pytest.raises(ValueError, match=r'a0\.jpg and a0\.png'): get_dataset('folder', tmp_path, '', 'test')

def test_folder_train_split_ignores_masks(tmp_path):
    folder(tmp_path, mask=None); (tmp_path/'masks').mkdir()                         # an empty masks/ does not hurt training
    assert len(get_dataset('folder', tmp_path, '', 'train', image_size=8)) == 4
    with pytest.raises(FileNotFoundError, match='mask_dir=None'): get_dataset('folder', tmp_path, '', 'test')

# --- 5. a mask of another size ----------------------------------------------------------------------------------------

def test_mask_of_another_size_is_a_bad_file_naming_both(tmp_path):
    folder(tmp_path, mask=lambda i: square(16, 12) if i == 1 else square())
    ds = get_dataset('folder', tmp_path, '', 'test', image_size=8)
    bad = check_readable(ds)
    assert [p.name for p, _ in bad] == ['a1.png'] and bad[0][0].parent.name == 'masks'
    assert bad[0][1] == f"mask is 12x16 but its image {tmp_path/'abnormal/a1.png'} is 16x16 (width x height)"
    assert [p.name for p, _ in check_readable(ds, full=False)] == ['a1.png']          # the header pass finds it
    with pytest.raises(ValueError, match=r'masks/a1\.png is 12x16 but its image .*abnormal/a1\.png is 16x16'): ds[len(ds) - 1]
    from glad_nb.options import checked_dataset, CLIError
    with pytest.raises(CLIError) as e: checked_dataset('folder', tmp_path, '', 'test', image_size=8)
    assert e.value.code == 2 and 'masks/a1.png' in str(e.value) and 'abnormal/a1.png is 16x16' in str(e.value) and '12x16' in str(e.value)
    with pytest.warns(UserWarning, match='a1.png'):
        kept = get_dataset('folder', tmp_path, '', 'test', image_size=8, skip_unreadable=True)
    assert [s.path.name for s in kept.samples if s.label == 1] == ['a0.png']

# --- 6. splits whose metrics are undefined ----------------------------------------------------------------------------

def test_split_warnings_all_black_masks(tmp_path):
    folder(tmp_path, mask=lambda i: np.zeros((16, 16), np.uint8))
    w = split_warnings(get_dataset('folder', tmp_path, '', 'test', image_size=8))
    assert len(w) == 1 and w[0].startswith('every mask is empty') and 'pixel AUROC' in w[0] and 'AUPRO' in w[0]
    assert all('\n' not in l for l in w)

def test_split_warnings_single_normal_image_no_anomalies(tmp_path):
    for i in range(3): save(tmp_path/f'normal/n{i}.png', rgb())
    save(tmp_path/'test_normal/only.png', rgb())
    ds = get_dataset('folder', tmp_path, '', 'test', image_size=8, normal_test_dir='test_normal', abnormal_dir=None)
    assert len(ds) == 1
    w = split_warnings(ds)
    assert len(w) == 1 and w[0].startswith('no anomalous images among the 1 test image') and 'undefined' in w[0]

def test_split_warnings_masks_missing_and_fine(tmp_path):
    folder(tmp_path, mask=None)
    w = split_warnings(get_dataset('folder', tmp_path, '', 'test', image_size=8))
    assert len(w) == 1 and w[0].startswith('2 of 2 anomalous images have no mask')
    folder(tmp_path/'ok')
    assert split_warnings(get_dataset('folder', tmp_path/'ok', '', 'test', image_size=8)) == []

def test_split_warnings_mask_vanishing_at_the_run_size(tmp_path):
    folder(tmp_path, mask=lambda i: square(box=(5, 6, 5, 6)))                         # one pixel of 16x16
    assert split_warnings(get_dataset('folder', tmp_path, '', 'test', image_size=None)) == []
    w = split_warnings(get_dataset('folder', tmp_path, '', 'test', image_size=4))
    assert w and w[0].startswith('every mask is empty at 4x4')

# --- 7. file names --------------------------------------------------------------------------------------------------

@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='file names that are not UTF-8: Linux file systems only')
def test_non_utf8_file_names(tmp_path):
    raw = b'\xff\xfe'
    d = os.fsencode(tmp_path)
    for sub in (b'normal', b'abnormal', b'masks'): os.makedirs(os.path.join(d, sub))
    for i in range(3): save(os.fsdecode(os.path.join(d, b'normal', b'n%d.png' % i)), rgb())
    save(os.fsdecode(os.path.join(d, b'normal', raw + b'.png')), rgb())
    save(os.fsdecode(os.path.join(d, b'abnormal', raw + b'.png')), rgb())
    save(os.fsdecode(os.path.join(d, b'masks', raw + b'.png')), square())
    names = [p.name for p in list_images(tmp_path/'normal')]
    assert os.fsdecode(raw + b'.png') in names and len(names) == 4
    p = tmp_path/'abnormal'/os.fsdecode(raw + b'.png')
    assert os.fsencode(p).endswith(raw + b'.png') and read_image(p).shape == (3, 16, 16)
    ds = get_dataset('folder', tmp_path, '', 'test', image_size=8, normal_test_dir='normal')
    assert ds.has_masks and check_readable(ds) == [] and split_warnings(ds) == []
    items = [ds[i] for i in range(len(ds))]
    assert items[-1]['mask'].sum() > 0 and items[-1]['path'] == str(p)
    assert torch.utils.data.default_collate(items)['image'].shape == (5, 3, 8, 8)

def test_names_near_255_bytes(tmp_path):
    stem = 'x' * 246                                                                   # 250 bytes with '.png'
    folder(tmp_path, n_bad=0)
    try:
        save(tmp_path/f'abnormal/{stem}.png', rgb()); save(tmp_path/f'masks/{stem}_mask.png', square())   # 255 bytes
    except OSError as e: pytest.skip(f'this file system refuses such names: {e}')
    assert len(f'{stem}_mask.png'.encode()) == 255
    ds = get_dataset('folder', tmp_path, '', 'test', image_size=8)
    assert ds.samples[-1].mask_path.name == f'{stem}_mask.png' and check_readable(ds) == []
    assert ds[len(ds) - 1]['mask'].sum() > 0 and load_sample(ds.samples[-1], None)['image'].shape == (3, 16, 16)
    assert [p.name for p in list_images(tmp_path/'abnormal')] == [f'{stem}.png']
    assert read_image(tmp_path/f'abnormal/{stem}.png', with_key=True)[1]
