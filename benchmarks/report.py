"""Size of report.html per category with 512 px gallery panels: the report before issue 13 (plotly go.Image z-arrays,
read from git) against the current one (PNG data URIs shrunk to `side`), on synthetic results (no model).

Usage: .venv/bin/python benchmarks/report.py [--size 512] [--n 24] [--side 192] [--before REV]

Two kinds of images: 'smooth' (low-frequency random colour fields with a little noise, about as compressible as photos)
and 'noise' (uniform random pixels: the worst case for PNG). Each report holds one category, six gallery rows, and a
memory-bank result beside it for the current report (one more map column).
"""
import argparse, importlib.util, subprocess, tempfile, time
from pathlib import Path
from types import SimpleNamespace as NS
import numpy as np, pandas as pd, torch, torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent

def fake_result(n:int, S:int, kind:str, seed:int=0, recons:bool=True):
    "An EvalResult-like record of n images at S px: half anomalous with a square defect."
    g = torch.Generator().manual_seed(seed)
    def images():
        if kind == 'noise': return torch.randint(0, 256, (n, 3, S, S), dtype=torch.uint8, generator=g)
        low = F.interpolate(torch.rand(n, 3, 8, 8, generator=g), size=(S, S), mode='bicubic', align_corners=False)
        return ((low + 0.03 * torch.randn(n, 3, S, S, generator=g)).clamp(0, 1) * 255).round().to(torch.uint8)
    labels = np.array([1] * (n // 2) + [0] * (n - n // 2))
    masks = torch.zeros(n, S, S, dtype=torch.uint8); masks[:n // 2, S // 4:S // 2, S // 4:S // 2] = 1
    maps = F.interpolate(torch.rand(n, 1, 16, 16, generator=g), size=(S, S), mode='bilinear', align_corners=False)[:, 0] + masks
    per = pd.DataFrame(dict(path=[f'img{i:03d}.png' for i in range(n)], defect=['bad' if l else 'good' for l in labels], label=labels,
                            score=maps.flatten(1).amax(1).numpy(), **(dict(step=[40] * n) if recons else {})))
    cache = NS(images=images(), recons=images() if recons else None, masks=masks)
    return NS(per_image=per, maps=maps, cache=cache, metrics=dict(image_auroc=0.9, pixel_auroc=0.9, aupro=0.8), protocol=dict(preset='synthetic', image_size=S, map_size=S))

def old_write_report(rev:str):
    "write_report of glad_nb/report.py at git revision `rev` (relative imports made absolute)."
    src = subprocess.run(['git', 'show', f'{rev}:glad_nb/report.py'], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    src = src.replace('from .', 'from glad_nb.')
    f = Path(tempfile.mkdtemp())/'report_before.py'; f.write_text(src)
    spec = importlib.util.spec_from_file_location('report_before', f); m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
    return m.write_report

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--size', type=int, default=512); p.add_argument('--n', type=int, default=24)
    p.add_argument('--side', type=int, default=192); p.add_argument('--before', default='9a3653f')
    a = p.parse_args()
    from glad_nb.report import write_report
    before = old_write_report(a.before)
    out = Path(tempfile.mkdtemp())
    print(f"{a.n} test images at {a.size} px, 6 gallery rows; after: panels shrunk to {a.side} px")
    import plotly.offline
    js = len(plotly.offline.get_plotlyjs().encode()) / 2 ** 20
    print(f"sizes per category: the file minus plotly.js ({js:.2f} MB, embedded once per report whatever the number of categories)")
    print(f"{'images':<8} {'before (MB)':>12} {'after (MB)':>11} {'after + bank (MB)':>18} {'seconds before/after':>21}")
    for kind in ('smooth', 'noise'):
        r, bank = fake_result(a.n, a.size, kind), fake_result(a.n, a.size, kind, seed=1, recons=False)
        t0 = time.time(); before(dict(cat=r), out/'before.html'); t1 = time.time()
        write_report(dict(cat=r), out/'after.html', side=a.side); t2 = time.time()
        write_report(dict(cat=r), out/'bank.html', baselines=dict(cat=bank), side=a.side)
        mb = lambda f: (out/f).stat().st_size / 2 ** 20 - js
        print(f"{kind:<8} {mb('before.html'):>12.2f} {mb('after.html'):>11.2f} {mb('bank.html'):>18.2f} {t1 - t0:>12.1f} / {t2 - t1:.1f}")

if __name__ == '__main__': main()
