"""Run explorer: re-scoring latency after a slider change, for one category of N images with SxS maps
(synthetic `ScoreCache`, DINO-like 32x32 grids on 4 layers; no model, no browser).

    python benchmarks/dashboard.py                 # 100 images, 256x256 maps (the issue's target: < 100 ms)
    python benchmarks/dashboard.py --n 100 --size 512 --grid 64
    python benchmarks/dashboard.py --threads 2       # force two torch threads in the explorer

For each control of the run explorer the script moves it to values not seen before (so every move is a
cache miss of the stage it changes) and times, headless:
  update   -- setting the control's value to the callback's return: `RunExplorer.update()` end to end,
              i.e. scoring (`Rescorer`: maps (N,S,S) and image scores), the seven metrics (pixel metrics on
              the preview stride), metric table, ROC/PRO curves and the shown image's panels: everything
              the slider callback does before the widgets' messages leave the kernel; split in three.
It also times `results.score_cache` (the reference implementation) for the same settings, and the
exact (stride 1) pixel metrics that the 'exact pixel metrics' box switches on. Wall-clock milliseconds,
median and max over the moves (the max is usually the first move of a control: a stage computed once);
torch threads and the load average are printed: on a shared machine with more runnable processes than
cores, one torch thread is several times faster than two (OpenMP threads wait for each other), which is
why the explorer's default (threads='auto') re-scores with no more threads than the cores the load
average leaves free (decided at every update; the count at start is printed).
"""
import argparse, os, platform, statistics, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def synthetic_cache(n:int=100,          # images
                    size:int=256,       # map size S
                    grid=32,            # distance grid side h = w: one int, or one per layer
                    layers:tuple=(3, 6, 9, 12),
                    K:int=10,           # ADS grid steps (reference grid from T0 = 750)
                    anomalous:float=0.5,# share of anomalous images
                    seed:int=0):
    "A plausible `ScoreCache` without any model (the benchmark's stand-in for a run of any size)."
    import torch, torch.nn.functional as F
    from glad_nb.core import torch_generator
    from glad_nb.schedule import reference_grid
    from glad_nb.results import ScoreCache
    g = torch_generator(seed)
    rnd = lambda *s: torch.rand(*s, generator=g)
    n_bad = min(max(1, round(n * anomalous)), n - 1) if n > 1 else 1
    labels = torch.zeros(n, dtype=torch.long); labels[:n_bad] = 1
    base = F.interpolate(rnd(n, 3, 8, 8), size=(size, size), mode='bicubic', align_corners=False)
    images = (base * 0.6 + 0.2 + 0.15 * rnd(n, 3, size, size)).clamp(0, 1)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing='ij')
    masks = torch.zeros(n, size, size)
    for i in range(n_bad):
        cy, cx, ry, rx = 0.2 + 0.6 * rnd(1), 0.2 + 0.6 * rnd(1), 0.04 + 0.1 * rnd(1), 0.04 + 0.1 * rnd(1)
        masks[i] = (((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1).float()
    recons = torch.where(masks[:, None] > 0, base * 0.6 + 0.27, images)
    grids = [grid] * len(layers) if isinstance(grid, int) else list(grid)
    if len(grids) != len(layers): raise ValueError(f"grid={grid!r}: expected an int or one size per layer ({len(layers)})")
    fwd, rev = [], []
    for l, h in enumerate(grids):
        bump = F.adaptive_avg_pool2d(masks[:, None], h)[:, 0]
        d = 0.05 + 0.05 * rnd(n, h, h) + (0.2 + 0.1 * l) * bump
        fwd.append(d); rev.append(0.8 * d + 0.02 * rnd(n, h, h))
    ts = reference_grid(750, K)
    s = 0.05 + torch.arange(K)[None] * (0.02 + 0.04 * labels[:, None]) + 0.02 * rnd(n, K)
    fired = (s > 0.35) | (ts[None] < 350)
    first = torch.where(fired.any(1), fired.float().argmax(1), torch.full((n,), K - 1))
    ads = torch.where(torch.arange(K)[None] <= first[:, None], s, torch.full_like(s, float('nan')))
    hz = max(1, size // 8)
    fusion = torch.sigmoid(F.adaptive_avg_pool2d(masks[:, None], hz)[:, 0] * 2 + 0.1 * rnd(n, hz, hz))
    fell = s[torch.arange(n), first] <= 0.35
    fusion[fell] = 0.                                            # t_min fallback: the input's estimate, no fusion
    u8 = lambda t: (t.clamp(0, 1) * 255 + 0.5).to(torch.uint8)
    return ScoreCache(images=u8(images), recons=u8(recons), masks=masks.to(torch.uint8), labels=labels, layers=tuple(layers),
                      fwd=fwd, rev=rev, steps=ts[first], ads_scores=ads.float(), fusion=fusion.float(), fused=~fell,
                      paths=[f'synthetic/{i:03d}.png' for i in range(n)], defects=['blob' if l else 'good' for l in labels.tolist()],
                      grid=ts.tolist())


def ms(f):
    t = time.perf_counter(); r = f(); return (time.perf_counter() - t) * 1000, r


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--n', type=int, default=100, help='images in the category')
    ap.add_argument('--size', type=int, default=256, help='map size S')
    ap.add_argument('--grid', type=int, default=32, help='distance grid h = w (DINO ViT-B/8 at 256: 32)')
    ap.add_argument('--moves', type=int, default=5, help='slider moves per control')
    ap.add_argument('--threads', type=int, default=0,
                    help="torch threads while the explorer re-scores (0: its default 'auto', the cores the load average leaves free)")
    args = ap.parse_args(argv)

    import torch
    from glad_nb.core import GLADConfig
    from glad_nb.results import score_cache
    from glad_nb.dashboard import run_explorer, _free_cores
    from glad_nb.metrics import evaluate_category

    print(f"glad_nb dashboard benchmark: {args.n} images, maps {args.size}x{args.size}, grids {args.grid}x{args.grid} x 4 layers")
    print(f"python {platform.python_version()}, torch {torch.__version__}, {torch.get_num_threads()} torch threads, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    t, cache = ms(lambda: synthetic_cache(args.n, args.size, args.grid))
    cfg = GLADConfig(dataset='mvtec', category='bottle', feature_size=args.size, sigma=6.0, score_topk=250)
    threads = args.threads or 'auto'
    t_open, rx = ms(lambda: run_explorer(cache, cfg, threads=threads))
    used = args.threads or min(torch.get_num_threads(), _free_cores())
    print(f"explorer re-scores with {used} torch thread(s) (threads={threads!r}); score_cache below uses {torch.get_num_threads()}")
    print(f"synthetic cache {t:.0f} ms; run_explorer opened (first scoring, reference metrics, figures) in {t_open:.0f} ms; "
          f"pixel-metric preview stride {rx.stride} ({args.n * (-(-args.size // rx.stride)) ** 2 / 1e6:.2f} M of {args.n * args.size ** 2 / 1e6:.1f} M pixels)")

    moves = {
        'sigma': ('sigma', [5.5, 5.0, 4.5, 7.0, 7.5, 8.0, 3.0, 2.5][:args.moves]),
        'top-k': ('topk', [100, 200, 300, 400, 500, 600, 700, 800][:args.moves]),
        'layers': ('layers', [(3, 6, 9), (6, 9, 12), (12,), (9, 12), (3, 12), (3,), (6,), (9,)][:args.moves]),
        'reverse': ('reverse', [True, False, True, False, True][:args.moves]),
        'pixel v': ('v', [1.0, 2.0, 3.0, 4.0, 5.0, 6.0][:args.moves]),
        'foreground': ('foreground', ['dark', 'bright', 'none', 'dark', 'bright'][:args.moves]),
    }
    rows = []
    print(f"\n{'control':<11} {'update median':>14} {'max':>7}   {'of which: scoring':>17} {'metrics':>8} {'figures':>8}   {'score_cache':>11}")
    for name, (attr, values) in moves.items():
        rx.load_category()                                  # back to the run config, with a fresh Rescorer
        upd, parts, ref = [], [], []
        for v in values:
            t0 = time.perf_counter(); getattr(rx, attr).value = v; upd.append((time.perf_counter() - t0) * 1000)
            parts.append(rx.timings)
            ref.append(ms(lambda: score_cache(cache, rx.scoring_cfg()))[0])
        rows.append((name, upd))
        med = lambda k: statistics.median(p[k] for p in parts)
        print(f"{name:<11} {statistics.median(upd):>11.0f} ms {max(upd):>4.0f} ms   {med('rescore'):>14.0f} ms {med('metrics'):>5.0f} ms "
              f"{med('figures'):>5.0f} ms   {statistics.median(ref):>8.0f} ms")

    maps, scores = rx.rescorer(rx.scoring_cfg())
    t_exact, _ = ms(lambda: evaluate_category(scores, cache.labels, maps, cache.masks, stride=1, curves=True))
    t_prev, _ = ms(lambda: evaluate_category(scores, cache.labels, maps, cache.masks, stride=rx.stride, curves=True))
    print(f"\nmetrics alone: preview (stride {rx.stride}) {t_prev:.0f} ms, exact (stride 1) {t_exact:.0f} ms")
    notes = {'foreground': "the first 'dark'/'bright' computes the object mask once (Otsu, dilation, blur); later moves reuse it",
             'pixel v': "the first v > 0 at a given sigma blurs the pixel difference once; later moves reuse it"}
    for k, v in notes.items(): print(f"note [{k}]: {v}")
    worst = max(statistics.median(u) for _, u in rows)
    print(f"\nslowest control (median update): {worst:.0f} ms -> target < 100 ms: {'met' if worst < 100 else 'NOT met'}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
