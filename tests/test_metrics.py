"""Parity and edge cases of glad_nb.metrics against scikit-learn and a slow, independently written AUPRO."""
import tracemalloc
from collections import deque

import numpy as np
import pytest
import torch
from scipy import ndimage
from sklearn import metrics as skm

from glad_nb.metrics import (METRICS, PixelRanks, aupro, evaluate_category, image_ap, image_auroc, image_f1,
                             label_regions, metric_table, pixel_ap, pixel_auroc, pixel_f1, pro_reference)


# ---------------------------------------------------------------- independent references
def flood_regions(mask, connectivity=8):
    "Connected regions of a 2-D 0/1 mask by breadth-first flood fill: a list of lists of (y, x)."
    h, w = mask.shape
    steps = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]
    if connectivity == 4: steps = [(dy, dx) for dy, dx in steps if dy == 0 or dx == 0]
    seen, regions = np.zeros((h, w), bool), []
    for y0 in range(h):
        for x0 in range(w):
            if not mask[y0, x0] or seen[y0, x0]: continue
            seen[y0, x0], todo, region = True, deque([(y0, x0)]), []
            while todo:
                y, x = todo.popleft()
                region.append((y, x))
                for dy, dx in steps:
                    v, u = y + dy, x + dx
                    if 0 <= v < h and 0 <= u < w and mask[v, u] and not seen[v, u]:
                        seen[v, u] = True
                        todo.append((v, u))
            regions.append(region)
    return regions


def slow_aupro(maps, masks, fpr_limit=0.3, connectivity=8):
    "AUPRO by definition: every distinct threshold, every region, trapezoids, interpolation at the limit."
    maps, masks = np.asarray(maps, np.float64), np.asarray(masks) > 0.5
    regions = [(i, reg) for i in range(len(maps)) for reg in flood_regions(masks[i], connectivity)]
    normal_scores = maps[~masks]
    curve = [(0.0, 0.0)]                                   # threshold +inf: nothing is detected
    for t in sorted(set(maps.ravel().tolist()), reverse=True):
        fpr = float(np.sum(normal_scores >= t)) / normal_scores.size
        overlaps = [sum(maps[i][y, x] >= t for y, x in reg) / len(reg) for i, reg in regions]
        curve.append((fpr, sum(overlaps) / len(overlaps)))
    area = 0.0
    for (x0, y0), (x1, y1) in zip(curve, curve[1:]):
        if x1 <= fpr_limit:
            area += (x1 - x0) * (y0 + y1) / 2
        else:                                              # the segment crossing the limit
            y_lim = y0 + (y1 - y0) * (fpr_limit - x0) / (x1 - x0)
            area += (fpr_limit - x0) * (y0 + y_lim) / 2
            break
    return area / fpr_limit


def random_set(n=5, h=11, w=13, levels=None, seed=0, bump=0.15):
    "Small random maps with blob masks; `levels` quantises the scores to create ties."
    g = np.random.default_rng(seed)
    masks = ndimage.gaussian_filter(g.random((n, h, w)), (0, 1.2, 1.2)) > 0.56
    masks[: n // 3] = False                                # some normal images
    if not masks.any(): masks[-1, 2:5, 3:7] = True
    maps = ndimage.gaussian_filter(g.random((n, h, w)), (0, 1, 1)) + bump * masks + 0.05 * g.random((n, h, w))
    if levels: maps = np.round(maps * levels) / levels
    return maps.astype(np.float32), masks.astype(np.uint8)


# ---------------------------------------------------------------- the references themselves
def test_flood_regions_matches_connectivity():
    k = np.array([[1, 0, 0, 1], [0, 1, 0, 1], [1, 0, 0, 0]])
    assert len(flood_regions(k, 8)) == 2 and len(flood_regions(k, 4)) == 4
    assert label_regions(k)[1] == 2 and label_regions(k, 4)[1] == 4


# ---------------------------------------------------------------- AUPRO
@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("levels", [None, 3, 12])
@pytest.mark.parametrize("fpr_limit", [0.3, 0.05, 1.0])
def test_aupro_equals_slow_definition(seed, levels, fpr_limit):
    maps, masks = random_set(levels=levels, seed=seed)
    assert aupro(maps, masks, fpr_limit) == pytest.approx(slow_aupro(maps, masks, fpr_limit), abs=1e-4)


@pytest.mark.parametrize("connectivity", [4, 8])
def test_aupro_connectivity(connectivity):
    maps, masks = random_set(n=4, h=16, w=16, seed=11)
    fast = aupro(maps, masks, connectivity=connectivity)
    assert fast == pytest.approx(slow_aupro(maps, masks, connectivity=connectivity), abs=1e-4)


def test_aupro_diagonal_regions_differ_by_connectivity():
    masks = np.zeros((2, 6, 6), np.uint8)
    masks[1, 1, 1] = masks[1, 2, 2] = 1                    # touching only at a corner
    maps = np.zeros((2, 6, 6), np.float32)
    maps[1, 1, 1], maps[1, 2, 2] = 2.0, 0.5                # one pixel clearly found, the other weakly
    maps[0, 0, :3] = 1.0                                   # normal pixels between the two scores
    for c in (4, 8):
        assert aupro(maps, masks, connectivity=c) == pytest.approx(slow_aupro(maps, masks, connectivity=c), abs=1e-9)


def test_aupro_torch_and_lists_agree():
    maps, masks = random_set(seed=3)
    ref = aupro(maps, masks)
    assert aupro(torch.tensor(maps)[:, None], torch.tensor(masks)[:, None].bool()) == pytest.approx(ref, abs=1e-12)
    assert aupro(list(maps), [m if m.any() else None for m in masks]) == pytest.approx(ref, abs=1e-12)
    assert aupro(maps.astype(np.float16), masks * 255) == pytest.approx(
        aupro(maps.astype(np.float16).astype(np.float32), masks), abs=1e-12)


def test_pro_curve_area_is_aupro():
    maps, masks = random_set(seed=5, levels=6)
    r = PixelRanks(maps, masks)
    for lim in (0.3, 0.1, 1.0):
        x, y = r.pro_curve(lim)
        assert x[0] == 0 and x[-1] == pytest.approx(lim) and np.all(np.diff(x) >= 0)
        assert np.trapezoid(y, x) / lim == pytest.approx(r.aupro(lim), abs=1e-9)


# ---------------------------------------------------------------- pixel metrics vs scikit-learn
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("levels", [None, 4, 50])
def test_pixel_metrics_equal_sklearn(seed, levels):
    maps, masks = random_set(n=6, h=20, w=17, levels=levels, seed=seed)
    y, s = masks.ravel(), maps.ravel()
    p, rc, _ = skm.precision_recall_curve(y, s)
    with np.errstate(invalid='ignore'): f1 = 2 * p * rc / (p + rc)
    assert pixel_auroc(maps, masks) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-6)
    assert pixel_ap(maps, masks) == pytest.approx(skm.average_precision_score(y, s), abs=1e-6)
    assert pixel_f1(maps, masks) == pytest.approx(np.nanmax(f1), abs=1e-6)


def test_pixel_metrics_with_infinities():
    maps, masks = random_set(seed=7)
    finite = maps.copy()
    maps[0, 0, 0], maps[-1, 0, 0] = np.inf, -np.inf        # only the ranks matter: +-inf are the extremes
    finite[0, 0, 0], finite[-1, 0, 0] = 10.0, -10.0
    y, s = masks.ravel(), finite.ravel()
    assert pixel_auroc(maps, masks) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-6)
    assert aupro(maps, masks) == pytest.approx(aupro(finite, masks), abs=1e-12)


# ---------------------------------------------------------------- image metrics
@pytest.mark.parametrize("seed", range(3))
def test_image_metrics_equal_sklearn(seed):
    g = np.random.default_rng(seed)
    y = g.random(60) < 0.4
    s = np.round(g.random(60) + 0.3 * y, 1)                  # rounded: ties
    assert image_auroc(s, y) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)
    assert image_ap(torch.tensor(s), torch.tensor(y)) == pytest.approx(skm.average_precision_score(y, s), abs=1e-12)
    f1 = max(skm.f1_score(y, s >= t) for t in np.unique(s))
    assert image_f1(s, y.astype(int)) == pytest.approx(f1, abs=1e-12)


# ---------------------------------------------------------------- edge cases
def test_constant_scores():
    maps, masks = random_set(seed=1)
    assert pixel_auroc(np.full_like(maps, 3.0), masks) == pytest.approx(0.5)
    assert aupro(np.zeros_like(maps), masks) == pytest.approx(0.15)   # diagonal: (0.3^2/2)/0.3
    assert aupro(np.zeros_like(maps), masks, fpr_limit=1.0) == pytest.approx(0.5)
    assert image_auroc(np.ones(6), [0, 1, 0, 1, 1, 0]) == pytest.approx(0.5)
    with pytest.raises(ValueError, match='threshold grid'): pro_reference(np.zeros_like(maps), masks)


def test_one_region_is_its_tpr():
    maps, _ = random_set(seed=2)
    masks = np.zeros(maps.shape, np.uint8)
    masks[2, 3:7, 4:9] = 1
    assert aupro(maps, masks, fpr_limit=1.0) == pytest.approx(pixel_auroc(maps, masks), abs=1e-12)
    assert aupro(maps, masks) == pytest.approx(slow_aupro(maps, masks), abs=1e-9)


def test_perfect_and_inverted_maps():
    maps, masks = random_set(seed=4)
    assert aupro(masks.astype(np.float32), masks) == pytest.approx(1.0)
    assert pixel_auroc(-masks.astype(np.float32), masks) == pytest.approx(0.0)
    assert aupro(-masks.astype(np.float32), masks) == pytest.approx(0.0)


@pytest.mark.parametrize("fn", [aupro, pixel_auroc, pixel_ap, pixel_f1, pro_reference])
def test_missing_pixel_classes_raise(fn):
    maps, masks = random_set(seed=0)
    with pytest.raises(ValueError, match='no anomalous pixel'): fn(maps, np.zeros_like(masks))
    with pytest.raises(ValueError, match='no normal pixel'): fn(maps, np.ones_like(masks))


@pytest.mark.parametrize("fn", [image_auroc, image_ap, image_f1])
def test_missing_image_classes_raise(fn):
    with pytest.raises(ValueError, match='3 normal and 0 anomalous'): fn([0.1, 0.2, 0.3], [0, 0, 0])
    with pytest.raises(ValueError, match='0 normal and 2 anomalous'): fn([0.1, 0.2], [True, True])
    with pytest.raises(ValueError, match='3 image scores but 2 labels'): fn([0.1, 0.2, 0.3], [0, 1])


def test_bad_inputs_raise():
    maps, masks = random_set(seed=0)
    with pytest.raises(ValueError, match='5 maps but 4 masks'): aupro(maps, masks[:4])
    with pytest.raises(ValueError, match=r'maps\[0\] has shape'): aupro(maps[:, :5], masks)
    with pytest.raises(ValueError, match='NaN'): aupro(np.where(masks > 0, np.nan, maps), masks)
    with pytest.raises(ValueError, match='fpr_limit'): aupro(maps, masks, fpr_limit=1.5)
    with pytest.raises(ValueError, match='expected 8, 4 or None'): aupro(maps, masks, connectivity=6)
    with pytest.raises(ValueError, match=r'\(N,H,W\)'): aupro(maps[0], masks[0])
    with pytest.raises(ValueError, match='no maps'): aupro([], [])


# ---------------------------------------------------------------- the authors' approximation
@pytest.mark.parametrize("seed", range(3))
def test_pro_reference_close_to_exact_on_smooth_maps(seed):
    g = np.random.default_rng(seed)
    masks = ndimage.gaussian_filter(g.random((6, 40, 40)), (0, 3, 3)) > 0.54
    maps = (ndimage.gaussian_filter(g.random((6, 40, 40)), (0, 2, 2)) + 0.04 * masks).astype(np.float32)
    ref, exact = pro_reference(maps, masks), aupro(maps, masks)
    assert abs(ref - exact) < 0.02, (ref, exact)
    assert pro_reference(maps, masks, cache_regions=True) == ref


# ---------------------------------------------------------------- evaluation and table
def test_evaluate_category_and_table():
    maps, masks = random_set(n=6, seed=9)
    labels = masks.reshape(6, -1).any(1)
    scores = maps.reshape(6, -1).max(1)
    res = evaluate_category(scores, labels, maps, masks)
    assert tuple(res) == METRICS
    assert res['aupro'] == pytest.approx(slow_aupro(maps, masks), abs=1e-4)
    assert res['pixel_auroc'] == pytest.approx(skm.roc_auc_score(masks.ravel(), maps.ravel()), abs=1e-6)
    assert res['image_auroc'] == pytest.approx(skm.roc_auc_score(labels, scores))
    no_px = evaluate_category(scores, labels)
    assert all(np.isnan(no_px[k]) for k in METRICS[3:])
    with pytest.raises(ValueError, match='6 maps but 5 image labels'): evaluate_category(scores[:5], labels[:5], maps, masks)
    tab = metric_table({'a': res, 'b': res | {'extra': 1.0}})
    assert list(tab.index) == ['a', 'b', 'mean'] and list(tab.columns) == list(METRICS) + ['extra']
    assert np.isnan(tab.loc['mean', 'extra'])
    assert tab.loc['mean', 'aupro'] == pytest.approx(res['aupro'])
    assert metric_table({'a': res}, percent=True).loc['a', 'image_ap'] == pytest.approx(100 * res['image_ap'])
    with pytest.raises(ValueError, match='reserved'): metric_table({'mean': res})


# ---------------------------------------------------------------- memory
def test_memory_is_bounded():
    "Beyond its inputs, AUPRO holds about one float32 copy of the scores plus a bool mask (no float64 copies)."
    g = np.random.default_rng(0)
    masks = ndimage.gaussian_filter(g.random((16, 128, 128)), (0, 4, 4)) > 0.54   # ~3% anomalous, as in MVTec
    maps = g.random((16, 128, 128), np.float32)
    tracemalloc.start()
    aupro(maps, masks)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 1.5 * maps.size * 4 + masks.size, (peak, maps.nbytes)


@pytest.mark.cuda
def test_gpu_tensors_match_cpu():
    maps, masks = random_set(n=6, h=32, w=32, seed=12)
    labels = masks.reshape(6, -1).any(1)
    tm, tk = torch.tensor(maps, device='cuda').half(), torch.tensor(masks, device='cuda').bool()
    cpu = evaluate_category(tm.amax((1, 2)).cpu(), labels, tm.float().cpu().numpy(), masks)
    gpu = evaluate_category(tm.amax((1, 2)), torch.tensor(labels, device='cuda'), tm, tk)
    assert gpu == pytest.approx(cpu, abs=1e-12)
