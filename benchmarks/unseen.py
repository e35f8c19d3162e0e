"""A second small evaluation set that is not the demo: crops of photographs that ship offline with scikit-image and
scikit-learn, and defects from physical models that share no code with the demo (glad_nb/demo.py), ATP's
synthesis (glad_nb/synthesis.py) or the label-free selection's validation anomalies (glad_nb/select.py).

    python benchmarks/unseen.py --out data/unseen --seed 0          # 4 categories, 256 px, about 10 s
    glad-nb train --backbone pixel --dataset folder --root data/unseen --category moon --out runs/unseen
    glad-nb test  --dataset folder --root data/unseen --category moon --out runs/unseen

Layout (what `glad_nb.data.FolderDataset` reads): <out>/<category>/normal/*.png (normal images; FolderDataset holds out
test_ratio = 0.2 of them, seeded, as the normal test images: 80 -> 64 train, 16 test), <out>/<category>/abnormal/*.png
(defective test images) and <out>/<category>/masks/<stem>.png (exact ground truth, 0/255), plus <out>/manifest.json
(parameters, and the defect kind and mask area of every abnormal image).

Categories (none of them the demo's brick, grass, gravel or coffee):
- tissue: skimage.data.immunohistochemistry, random crops (a texture)
- moon: skimage.data.moon, grey, random crops (a texture)
- china: sklearn's china.jpg, a crop around one place with a few pixels of jitter (an aligned scene)
- flower: sklearn's flower.jpg, the same
Every normal image also gets its own exposure (x0.95-1.05) and sensor noise (σ = 1/255), so no two are equal.

Defects (8 of each kind per category), every one a physical model with an exact mask:
- scratch: a groove with a V-shaped depth profile along a smooth path of slowly varying curvature, shaded by a
  Lambertian light from a random direction (one wall lit, the other in shadow) and darkened by occlusion at its bottom.
- dent: a smooth elliptical height field (Gaussian), truncated where it is shallower than 10 % of its depth,
  shaded by the same light model.
- stain: drops of dye that spread by diffusion (explicit heat-equation steps on a heterogeneous substrate) up to a
  wetting front, tinting the surface by Beer-Lambert absorption with a per-channel absorption spectrum.
- crack: a fracture path that advances through a random toughness field, turning at each step towards the weakest
  of a few nearby directions, opened with the elliptical crack-opening profile of a Griffith crack (widest in the
  middle, closed at the tips), dark inside.
"""
import argparse, json, sys, time
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

CATEGORIES = ('tissue', 'moon', 'china', 'flower')
DEFECTS = ('scratch', 'dent', 'stain', 'crack')


# ------------------------------------------------------------------ photographs and crops
def photo(category:str)->np.ndarray:
    "The category's photograph as (H, W, 3) float32 in [0, 1]."
    if category in ('tissue', 'moon'):
        import skimage.data
        a = (skimage.data.immunohistochemistry() if category == 'tissue' else skimage.data.moon()).astype(np.float32) / 255
    else:
        from sklearn.datasets import load_sample_image
        a = load_sample_image(f'{category}.jpg').astype(np.float32) / 255
    return np.repeat(a[..., None], 3, -1) if a.ndim == 2 else a[..., :3]

# (top, left, side) of the aligned crop in the photograph, and the jitter in pixels
ALIGNED = dict(china=(60, 180, 300, 8), flower=(40, 150, 340, 8))

def normal_image(src:np.ndarray, category:str, size:int, rng:np.random.Generator)->np.ndarray:
    "One normal image: a crop (random for textures, jittered for aligned scenes), resized, with its own exposure and noise."
    H, W = src.shape[:2]
    if category in ALIGNED:
        top, left, side, j = ALIGNED[category]
        top, left = top + rng.integers(-j, j + 1), left + rng.integers(-j, j + 1)
    else:
        side = min(H, W) // 2
        top, left = rng.integers(0, H - side + 1), rng.integers(0, W - side + 1)
    crop = src[top:top + side, left:left + side]
    if side != size:
        crop = np.asarray(Image.fromarray((crop * 255).round().astype(np.uint8)).resize((size, size), Image.BILINEAR), np.float32) / 255
    return np.clip(crop * rng.uniform(0.95, 1.05) + rng.normal(0, 1 / 255, crop.shape), 0, 1).astype(np.float32)


# ------------------------------------------------------------------ shading of a height field
def lambert(h:np.ndarray, rng:np.random.Generator)->np.ndarray:
    "Relative brightness n·l / l_z of a surface with height h (pixels) under a light of random azimuth and 35-60° elevation."
    az, el = rng.uniform(0, 2 * np.pi), np.deg2rad(rng.uniform(35, 60))
    l = np.array([np.cos(el) * np.sin(az), np.cos(el) * np.cos(az), np.sin(el)])   # (row, col, up)
    hy, hx = np.gradient(h)
    n = np.stack([-hy, -hx, np.ones_like(h)], -1)
    n /= np.linalg.norm(n, axis=-1, keepdims=True)
    return np.clip(n @ l, 0, None) / l[2]

def smooth_path(start:np.ndarray, theta:float, length:float, rng:np.random.Generator, bend:float)->np.ndarray:
    "(n, 2) points (row, col) every half pixel along a path whose curvature drifts slowly (a random walk of the curvature)."
    n = int(2 * length)
    kappa = np.cumsum(rng.normal(0, bend, n))                 # curvature: itself a random walk
    th = theta + np.cumsum(kappa) * 0.5
    return start + np.cumsum(0.5 * np.stack([np.sin(th), np.cos(th)], 1), 0)

def near_path(shape:tuple, pts:np.ndarray)->tuple:
    "(distance to the nearest path point, index of that point) for every pixel."
    H, W = shape
    r = np.rint(pts).astype(int)
    ok = (r[:, 0] >= 0) & (r[:, 0] < H) & (r[:, 1] >= 0) & (r[:, 1] < W)
    idx = -np.ones(shape, int); idx[r[ok, 0], r[ok, 1]] = np.flatnonzero(ok)
    d, (iy, ix) = ndimage.distance_transform_edt(idx < 0, return_indices=True)
    return d, idx[iy, ix]


# ------------------------------------------------------------------ defects: (image, mask) from an image
def scratch(x:np.ndarray, rng:np.random.Generator)->tuple:
    "A V-shaped groove along a smooth path, Lambert-shaded, occluded at its bottom."
    S = x.shape[0]; k = S / 256
    pts = smooth_path(rng.uniform(0.2, 0.8, 2) * S, rng.uniform(0, 2 * np.pi), rng.uniform(0.25, 0.5) * S, rng, 0.0006 / k)
    d, _ = near_path(x.shape[:2], pts)
    w = rng.uniform(1.5, 3.0) * k                                      # half-width, pixels
    D = rng.uniform(0.6, 1.2) * w                                      # depth: walls 30-50° steep
    depth = D * np.clip(1 - d / w, 0, None)                             # V profile
    mask = depth > 0
    shade = lambert(-depth, rng) * (1 - 0.25 * depth / D)
    return np.clip(x * np.where(mask, shade, 1)[..., None], 0, 1), mask

def dent(x:np.ndarray, rng:np.random.Generator)->tuple:
    "A smooth elliptical depression (Gaussian height field, cut at 10 % of its depth), Lambert-shaded."
    S = x.shape[0]
    a, b = rng.uniform(0.035, 0.08, 2) * S
    cy, cx = rng.uniform(0.2, 0.8, 2) * S
    t = rng.uniform(0, np.pi)
    yy, xx = np.mgrid[0:S, 0:S].astype(np.float32)
    u, v = (yy - cy) * np.cos(t) + (xx - cx) * np.sin(t), -(yy - cy) * np.sin(t) + (xx - cx) * np.cos(t)
    D = rng.uniform(0.3, 0.6) * min(a, b)
    g = D * np.exp(-0.5 * ((u / a) ** 2 + (v / b) ** 2))
    depth = np.clip(g - 0.1 * D, 0, None)
    mask = depth > 0
    shade = lambert(-depth, rng) * (1 - 0.15 * depth / depth.max())
    return np.clip(x * np.where(mask, shade, 1)[..., None], 0, 1), mask

DYES = np.array([(0.35, 0.8, 1.4), (1.3, 0.5, 0.25), (0.9, 0.9, 0.9), (0.3, 1.2, 0.9)], np.float32)   # absorbance per (R, G, B)

def stain(x:np.ndarray, rng:np.random.Generator)->tuple:
    "Dye drops diffusing over a heterogeneous substrate up to a wetting front; Beer-Lambert tint inside it."
    S = x.shape[0]; k = S / 256; R = int(0.14 * S)
    yy, xx = np.mgrid[0:2 * R, 0:2 * R].astype(np.float32)
    c = np.zeros((2 * R, 2 * R), np.float32)
    for _ in range(rng.integers(1, 4)):                                 # 1-3 drops near the middle of the window
        py, px = R + rng.normal(0, 0.2 * R, 2)
        c += rng.uniform(0.5, 1.0) * (np.hypot(yy - py, xx - px) <= rng.uniform(4, 8) * k)
    kappa = ndimage.gaussian_filter(rng.random(c.shape), 3 * k)         # substrate diffusivity, 0.03-0.24
    kappa = (0.03 + 0.21 * (kappa - kappa.min()) / np.ptp(kappa)).astype(np.float32)
    for _ in range(int(250 * k * k)):                                   # explicit heat-equation steps (stable: κ <= 0.25)
        p = np.pad(c, 1, mode='edge')
        c = c + kappa * (p[:-2, 1:-1] + p[2:, 1:-1] + p[1:-1, :-2] + p[1:-1, 2:] - 4 * c)
    front = rng.uniform(0.1, 0.2) * c.max()                              # the wetting front's concentration
    conc = np.clip(c - front, 0, None) / (c.max() - front)
    cy, cx = rng.integers(R, S - R, 2)
    full = np.zeros(x.shape[:2], np.float32); full[cy - R:cy + R, cx - R:cx + R] = conc
    A = DYES[rng.integers(len(DYES))] * rng.uniform(0.6, 1.0)
    return x * np.exp(-A * (0.4 + 0.6 * full[..., None]) * (full[..., None] > 0)), full > 0

def crack(x:np.ndarray, rng:np.random.Generator)->tuple:
    "A fracture path through a random toughness field, opened with a Griffith crack's elliptical profile, dark inside."
    S = x.shape[0]; k = S / 256
    tough = ndimage.gaussian_filter(rng.random((S, S)), 3 * k)
    p, th = rng.uniform(0.25, 0.75, 2) * S, rng.uniform(0, 2 * np.pi)
    L, step, pts = rng.uniform(0.25, 0.45) * S, 3 * k, []
    for _ in range(int(L / step)):
        opts = th + np.deg2rad(np.array([-25, -10, 0, 10, 25]))          # the tip turns towards the weakest material ahead
        ahead = np.clip(np.rint(p + 2 * step * np.stack([np.sin(opts), np.cos(opts)], 1)), 0, S - 1).astype(int)
        th = opts[np.argmin(tough[ahead[:, 0], ahead[:, 1]] + 0.05 * np.abs(opts - th))]
        q = p + step * np.array([np.sin(th), np.cos(th)])
        pts += [p + f * (q - p) for f in np.linspace(0, 1, int(2 * step) + 1)[:-1]]; p = q
    pts = np.array(pts)
    s = np.linspace(-1, 1, len(pts))
    half = 0.5 + rng.uniform(1.0, 2.0) * k * np.sqrt(1 - s ** 2)       # half opening, >= half a pixel
    d, i = near_path(x.shape[:2], pts)
    mask = d <= half[i]
    inside = np.where(mask, 0.12 + 0.25 * (d / half[i]) ** 2, 1)         # darkest at the middle of the gap
    return x * inside[..., None].astype(np.float32), mask

DEFECT_FNS = dict(scratch=scratch, dent=dent, stain=stain, crack=crack)


# ------------------------------------------------------------------ the dataset
def write_png(path:Path, a:np.ndarray):
    Image.fromarray(np.clip(np.rint(a * 255), 0, 255).astype(np.uint8)).save(path, compress_level=1)

def make_unseen(out, seed:int=0, size:int=256, n_normal:int=80, n_per_defect:int=8, categories=CATEGORIES)->dict:
    "Write the set under `out`; returns its manifest."
    out = Path(out)
    manifest = dict(generator='benchmarks/unseen.py', seed=seed, size=size, n_normal=n_normal, n_per_defect=n_per_defect,
                    categories=list(categories), defects=list(DEFECTS), abnormal={})
    for ci, cat in enumerate(categories):
        if cat not in CATEGORIES: raise ValueError(f"unknown category {cat!r}: expected some of {CATEGORIES}")
        src = photo(cat)
        dirs = {k: out/cat/k for k in ('normal', 'abnormal', 'masks')}
        for d in dirs.values(): d.mkdir(parents=True, exist_ok=True)
        for i in range(n_normal):
            write_png(dirs['normal']/f'{i:03d}.png', normal_image(src, cat, size, np.random.default_rng([seed, ci, 0, i])))
        rows = manifest['abnormal'][cat] = []
        for di, kind in enumerate(DEFECTS):
            for i in range(n_per_defect):
                rng = np.random.default_rng([seed, ci, 1 + di, i])
                img, m = DEFECT_FNS[kind](normal_image(src, cat, size, rng), rng)
                stem = f'{kind}_{i:03d}'
                write_png(dirs['abnormal']/f'{stem}.png', img); write_png(dirs['masks']/f'{stem}.png', m.astype(np.float32))
                rows.append(dict(file=f'{stem}.png', defect=kind, mask_pixels=int(m.sum())))
    (out/'manifest.json').write_text(json.dumps(manifest, indent=1))
    return manifest

def main(argv=None)->int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--out', required=True, help='folder to write (created; existing files of the same names are replaced)')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--size', type=int, default=256, help='image side in pixels (default 256)')
    ap.add_argument('--normal', type=int, default=80, help='normal images per category (FolderDataset tests on 20%% of them)')
    ap.add_argument('--per-defect', type=int, default=8, help='defective images per defect kind and category')
    ap.add_argument('--categories', nargs='+', default=list(CATEGORIES), choices=CATEGORIES)
    a = ap.parse_args(argv)
    if a.size < 32 or a.normal < 2 or a.per_defect < 1:
        print(f"unseen.py: expected --size >= 32, --normal >= 2, --per-defect >= 1 (got {a.size}, {a.normal}, {a.per_defect})", file=sys.stderr)
        return 2
    out = Path(a.out)
    if out.exists() and not out.is_dir():
        print(f"unseen.py: --out {out} exists and is not a folder", file=sys.stderr); return 2
    t0 = time.time()
    m = make_unseen(out, a.seed, a.size, a.normal, a.per_defect, a.categories)
    n = len(m['categories']) * (a.normal + len(DEFECTS) * a.per_defect)
    print(f"wrote {n} images ({', '.join(m['categories'])}) to {out} in {time.time() - t0:.1f} s")
    return 0

if __name__ == '__main__':
    sys.exit(main())
