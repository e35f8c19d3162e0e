"""AUPRO on N anomaly maps of SxS with realistic (blob) masks: glad_nb's exact `aupro` against the authors'
200-threshold `pro_reference`, and against anomalib's and adeval's implementations where they import.

    python benchmarks/metrics.py                      # 100 maps of 512x512; pro_reference timed on 10, scaled
    python benchmarks/metrics.py --ref-maps 100       # time pro_reference on all maps (many minutes)
    python benchmarks/metrics.py --other-python /tmp/benchvenv/bin/python   # a venv with anomalib / adeval

anomalib and adeval are not dependencies: they run in the interpreter given by --other-python (default:
$GLAD_BENCH_PYTHON, else /tmp/benchvenv/bin/python when it exists) and are skipped when they do not import.
Every measurement runs in a fresh subprocess that loads the maps from .npy files, so 'peak MB' is the growth
of the process's peak resident memory during the call (inputs excluded); for the numpy-only glad_nb functions
the tracemalloc peak is printed too. Times are wall-clock seconds (best of --repeat for the fast methods).
"""
import argparse, json, os, resource, subprocess, sys, tempfile, time, tracemalloc
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------ data
def blob_masks(n:int, size:int, g:np.random.Generator, anomalous:float=0.6)->np.ndarray:
    "Masks with 1-4 irregular elliptical blobs (radii 4-60 px) on a fraction of the images."
    from scipy import ndimage
    yy, xx = np.mgrid[:size, :size].astype(np.float32)
    masks = np.zeros((n, size, size), bool)
    for i in range(n):
        if g.random() > anomalous: continue
        wobble = ndimage.gaussian_filter(g.standard_normal((size, size)).astype(np.float32), size / 40)
        wobble /= wobble.std()
        for _ in range(g.integers(1, 5)):
            cy, cx = g.uniform(0.1, 0.9, 2) * size
            a, b = g.uniform(4, 60, 2) * size / 512
            th = g.uniform(0, np.pi)
            u = ((yy - cy) * np.cos(th) + (xx - cx) * np.sin(th)) / a
            v = (-(yy - cy) * np.sin(th) + (xx - cx) * np.cos(th)) / b
            masks[i] |= (1 - np.sqrt(u * u + v * v) + 0.25 * wobble) > 0
    return masks


def anomaly_maps(masks:np.ndarray, g:np.random.Generator)->np.ndarray:
    "Smooth float32 maps: correlated noise, a response of random strength over each defect, spurious bumps."
    from scipy import ndimage
    n, size = masks.shape[0], masks.shape[1]
    maps = np.empty(masks.shape, np.float32)
    for i in range(n):
        noise = ndimage.gaussian_filter(g.standard_normal((size, size)).astype(np.float32), size / 128)
        resp = ndimage.gaussian_filter(masks[i].astype(np.float32), size / 100) * g.uniform(0.5, 3.0)
        bumps = np.zeros((size, size), np.float32)
        bumps[tuple(g.integers(0, size, (2, 3)))] = 1
        bumps = ndimage.gaussian_filter(bumps, size / 50) * (size / 50) ** 2 * g.uniform(0, 4)
        maps[i] = ndimage.gaussian_filter(noise / noise.std() * 0.5 + resp + bumps, size / 256)
    return maps


# ------------------------------------------------------------------ workers (one fresh process each)
def _rss_mb()->float:
    with open('/proc/self/statm') as f: return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**20


def _maxrss_mb()->float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(name:str, data:str, k:int, repeat:int)->dict:
    "Run one method on the first k maps; return value, seconds, peak memory."
    sys.path.insert(0, str(ROOT))
    maps, masks = np.load(f'{data}/maps.npy')[:k], np.load(f'{data}/masks.npy')[:k]
    traced = name in ('exact', 'exact_all', 'pro_reference', 'pro_reference_cached')
    if name.startswith(('exact', 'pro_reference')):
        from glad_nb import metrics as M
        fns = dict(exact=lambda: M.aupro(maps, masks),
                   exact_all=lambda: (lambda r: (r.auroc(), r.ap(), r.f1(), r.aupro()))(M.PixelRanks(maps, masks))[-1],
                   pro_reference=lambda: M.pro_reference(maps, masks),
                   pro_reference_cached=lambda: M.pro_reference(maps, masks, cache_regions=True))
        fn = fns[name]
    elif name == 'anomalib':
        import torch
        from anomalib.metrics.aupro import _AUPRO
        tm, tk = torch.from_numpy(maps), torch.from_numpy(masks.astype(np.uint8))
        def fn():
            m = _AUPRO(fpr_limit=0.3)
            m.update(tm, tk)
            return float(m.compute())
    elif name == 'adeval':
        if not hasattr(np, 'trapz'): np.trapz = np.trapezoid   # adeval 1.1 calls np.trapz, removed in numpy 2.4
        from adeval import auroc_aupr_aupro
        u8 = masks.astype(np.uint8)
        fn = lambda: auroc_aupr_aupro(maps, u8)[2]
    else: raise ValueError(name)
    base_rss = _rss_mb()
    times = []
    for _ in range(repeat):
        t = time.perf_counter(); value = fn(); times.append(time.perf_counter() - t)
    out = dict(method=name, maps=k, value=float(value), seconds=min(times), peak_mb=max(_maxrss_mb() - base_rss, 0.0))
    if traced:
        tracemalloc.start(); fn(); out['traced_mb'] = tracemalloc.get_traced_memory()[1] / 2**20; tracemalloc.stop()
    return out


def run_worker(python:str, name:str, data:str, k:int, repeat:int)->dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([python, __file__, '--worker', name, '--data', data, '--k', str(k), '--repeat', str(repeat)],
                       capture_output=True, text=True, env=env)
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ['?'])[-1]
        return dict(method=name, maps=k, skipped=last[:160])
    return json.loads(r.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------ main
def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--n', type=int, default=100, help='number of maps')
    ap.add_argument('--size', type=int, default=512, help='map side in pixels')
    ap.add_argument('--ref-maps', type=int, default=10, help='maps to time pro_reference on (scaled to --n)')
    ap.add_argument('--repeat', type=int, default=3, help='repeats for the fast methods (best is kept)')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--other-python', default=os.environ.get('GLAD_BENCH_PYTHON', '/tmp/benchvenv/bin/python'),
                    help='interpreter with anomalib/adeval installed (skipped when missing)')
    ap.add_argument('--worker'), ap.add_argument('--data'), ap.add_argument('--k', type=int)
    a = ap.parse_args()
    if a.worker:
        print(json.dumps(worker(a.worker, a.data, a.k, a.repeat))); return

    g = np.random.default_rng(a.seed)
    t = time.perf_counter()
    masks = blob_masks(a.n, a.size, g)
    maps = anomaly_maps(masks, g)
    n_regions = sum(__import__('scipy.ndimage', fromlist=['label']).label(m, np.ones((3, 3)))[1] for m in masks)
    print(f'data: {a.n} maps of {a.size}x{a.size} ({maps.size / 1e6:.1f} M pixels, {maps.nbytes / 2**20:.0f} MB float32), '
          f'{int((masks.reshape(a.n, -1).any(1)).sum())} anomalous images, {n_regions} regions, '
          f'{100 * masks.mean():.2f}% anomalous pixels; made in {time.perf_counter() - t:.1f} s')
    print(f'cpu cores: {os.cpu_count()}, python {sys.version.split()[0]}, numpy {np.__version__}')
    other = a.other_python if Path(a.other_python).exists() else None
    k_ref = min(a.ref_maps, a.n)
    with tempfile.TemporaryDirectory() as d:
        np.save(f'{d}/maps.npy', maps); np.save(f'{d}/masks.npy', masks)
        rows = [run_worker(sys.executable, 'exact', d, a.n, a.repeat),
                run_worker(sys.executable, 'exact_all', d, a.n, a.repeat)]
        if k_ref < a.n: rows.append(run_worker(sys.executable, 'exact', d, k_ref, a.repeat))
        rows += [run_worker(sys.executable, 'pro_reference', d, k_ref, 1),
                 run_worker(sys.executable, 'pro_reference_cached', d, k_ref, 1)]
        for name in ('anomalib', 'adeval'):
            rows.append(run_worker(other, name, d, a.n, a.repeat) if other else
                        dict(method=name, maps=a.n, skipped=f'no interpreter at {a.other_python}'))

    exact = {r['maps']: r['value'] for r in rows if r['method'] == 'exact' and 'value' in r}
    t_exact = next(r['seconds'] for r in rows if r['method'] == 'exact' and r['maps'] == a.n)
    print(f"\n{'method':22} {'maps':>5} {'seconds':>9} {'s@' + str(a.n):>9} {'x exact':>8} {'peak MB':>8} "
          f"{'traced MB':>9} {'AUPRO':>9} {'- exact':>10}")
    for r in rows:
        if 'skipped' in r:
            print(f"{r['method']:22} {r['maps']:>5}  skipped: {r['skipped']}"); continue
        scaled = r['seconds'] * a.n / r['maps']
        tr = f"{r['traced_mb']:9.0f}" if 'traced_mb' in r else f"{'-':>9}"
        print(f"{r['method']:22} {r['maps']:>5} {r['seconds']:9.2f} {scaled:9.1f} {scaled / t_exact:8.1f} "
              f"{r['peak_mb']:8.0f} {tr} {r['value']:9.5f} {r['value'] - exact[r['maps']]:+10.2e}")
    print(f"\n's@{a.n}': seconds scaled linearly to {a.n} maps (pro_reference's cost is linear in the number of maps);"
          f" 'x exact': that time over exact AUPRO's on {a.n} maps. 'exact_all' builds PixelRanks once and reads"
          f" pixel AUROC, AP, F1-max and AUPRO. '- exact': difference from glad_nb's exact AUPRO on the same maps.")


if __name__ == '__main__':
    main()
