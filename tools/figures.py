"""Static figures for the README and the notebooks (PNG, at most 100 KB each), drawn with PIL from glad_nb's own
functions, so that a reader sees them on GitHub without running anything:

    .venv/bin/python tools/figures.py              # writes nbs/images/{schedule,synthesis,ads}.png

- schedule.png: one photo noised to T0 = 750 and to grid steps of the reference grid (K = 25), one ε (docs/method.md §1-2).
- synthesis.png: ATP's synthesis step by step on three photos (`synthesis.synthesis_view`, docs/method.md §3).
- ads.png: ADS at work on the demo's brick category (`experiments.fit_demo` reuses a finished demo training
  run under runs/ablations/models, else trains one): input, reconstruction, SAFF mask, anomaly map and ground
  truth per test image, with the step ADS chose and whether it fused or fell back at t_min (docs/method.md §2, 4, 5);
  *the SAFF mask is drawn min-max scaled (sigmoid of a small drift sits near 0.5); blank for a fallback.
"""
import argparse, os, sys
from pathlib import Path
import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
LIMIT = 100_000


def labelled(grid:np.ndarray, top:list=(), left:list=(), tile:int=64, gap:int=2, pad_left:int=0)->Image.Image:
    "A mosaic with column labels above and row labels on the left (PIL's default font)."
    head = 14 if top else 0
    img = Image.new('RGB', (grid.shape[1] + pad_left, grid.shape[0] + head), 'white')
    img.paste(Image.fromarray(grid), (pad_left, head))
    d = ImageDraw.Draw(img)
    for j, t in enumerate(top): d.text((pad_left + j * (tile + gap) + 2, 1), str(t), fill='black')
    for i, t in enumerate(left): d.text((2, head + i * (tile + gap) + tile // 2 - 5), str(t), fill='black')
    return img


def save(img:Image.Image, path:Path):
    img.save(path, optimize=True)
    size = path.stat().st_size
    assert size <= LIMIT, f"{path} is {size} bytes (limit {LIMIT})"
    print(f"{path.relative_to(ROOT)}: {img.size[0]}x{img.size[1]} px, {size / 1000:.0f} kB")


def photos(n:int, size:int):
    from glad_nb.dashboard import demo_images
    return demo_images(n, size)


def schedule_png(out:Path):
    from glad_nb.schedule import noised_views
    from glad_nb.images import to_hwc, mosaic
    ts, xt = noised_views(photos(1, 64)[0], 750, 25, n_show=8)
    save(labelled(mosaic([[to_hwc(t) for t in xt]]), [f't={t}' for t in ts]), out/'schedule.png')


def synthesis_png(out:Path):
    from glad_nb.synthesis import synthesis_view
    from glad_nb.images import to_hwc, mosaic
    x = photos(3, 64)
    rows = []
    for i, (src, fg) in enumerate((('texture', 'none'), ('structural', 'none'), ('texture', 'bright'))):
        v = synthesis_view(x[i:i + 1], threshold=0.2, beta=0.3, source=src, foreground=fg, seed=i)
        cols = [x[i], v['noise'][0].clamp(-1, 1), v['foreground'][0] * 2 - 1, v['mask'][0] * 2 - 1, v['source'][0], v['anomaly'][0]]
        rows.append([to_hwc(c) for c in cols])
    save(labelled(mosaic(rows), ['input', 'Perlin', 'foreground', 'mask', 'source', 'anomaly']), out/'synthesis.png')


def ads_png(out:Path):
    import torch
    from glad_nb.demo import make_demo_dataset
    from glad_nb.experiments import demo_data, fit_demo, ablation_dir
    from glad_nb.pipeline import calibrate_tau
    from glad_nb.core import DEMO_PRESET
    from glad_nb.results import score_cache
    from glad_nb.images import to_hwc, mosaic, colorize
    root = make_demo_dataset()
    tr, te = demo_data(root, 'brick', DEMO_PRESET['image_size'])
    glad, _ = fit_demo('brick', tr, ablation_dir()/'models')
    glad.cfg = glad.cfg.replace(tau=calibrate_tau(glad, tr, n=16))
    labels = [int(te[i]['label']) for i in range(len(te))]
    pick = [i for i, l in enumerate(labels) if l][:3] + [labels.index(0)]
    cache = glad.build_cache(torch.utils.data.Subset(te, pick), progress=False)
    maps, scores = score_cache(cache, glad.cfg)
    rows, names = [], []
    for i in range(len(cache)):
        fu = torch.nn.functional.interpolate(cache.fusion[i][None, None], size=cache.size, mode='nearest')[0, 0]
        mask = colorize(fu, 'Viridis') if bool(cache.fused[i]) \
            else np.full((cache.size, cache.size, 3), 235, np.uint8)
        rows.append([to_hwc(cache.images[i]), to_hwc(cache.recons[i]), mask, colorize(maps[i]), to_hwc(cache.masks[i].float() * 2 - 1)])
        st = int(cache.steps[i])
        names.append(f"t={st} {'fused' if bool(cache.fused[i]) else 'fallback'}" if st >= 0 else 'never')
    img = labelled(mosaic(rows), ['input', 'recon.', 'SAFF m*', 'map', 'truth'], names, pad_left=96)
    save(img, out/'ads.png')


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--out', default=str(ROOT/'nbs'/'images'))
    ap.add_argument('--only', nargs='*', default=['schedule', 'synthesis', 'ads'])
    a = ap.parse_args(argv)
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    for name in a.only: globals()[f'{name}_png'](out)
    return 0


if __name__ == '__main__':
    sys.exit(main())
