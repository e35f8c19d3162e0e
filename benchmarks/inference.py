"""GLAD inference throughput, peak memory and passes per image.

Cases (each in its own subprocess so peak-memory figures do not mix):
  demo-cpu   the CPU demo model (`demo_glad`: pixel UNet ~0.6 M params + filter bank) at 64 px, fp32,
             ADS + SAFF (τ > 0, every sample watched down to t_min) and plain DDIM (τ = 0)
  sd14-cuda  SD-1.4-sized random-weight UNet (~860 M) + VAE at 512 px with a random DINO ViT-B/8
             (blocks 3/6/9/12, 512 px -> 64x64 grid), bf16, batch 8, the paper's MVTec default grid
             (T0 750, K 25, t_min 350, CFG 9); skipped without CUDA

Each measured run = reconstruction (`GLAD.reconstruct`) + scoring distances (`GLAD.layer_distances`)
for n images; the pass counts come from the reconstruction's own counters (`ReconResult.counts`).
Random weights make ADS fire at arbitrary steps, so the sd14 case is run with τ = 1e9 (no sample
triggers: every sample is watched down to t_min, the worst case for ADS cost) and with τ = 0.

  python benchmarks/inference.py                 # all cases that can run here
  python benchmarks/inference.py --case demo-cpu --n 32
"""
from __future__ import annotations
import argparse, json, resource, subprocess, sys, time, importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

def run_case(case:str, n:int, batch:int, tau:float)->dict:
    import torch
    from glad_nb.pipeline import demo_glad, GLAD
    if case == 'demo-cpu':
        glad, _ = demo_glad('brick', device='cpu'); glad.cfg = glad.cfg.replace(tau=tau); size, dev = 64, 'cpu'
    else:
        spec = importlib.util.spec_from_file_location('bench_train', ROOT/'benchmarks'/'train.py')
        bt = importlib.util.module_from_spec(spec); spec.loader.exec_module(bt)
        from glad_nb.core import GLADConfig
        from glad_nb.features import DinoExtractor, _vit
        dev = 'cuda'
        bb = bt._sd14_backbone(dev).to(torch.bfloat16).eval()
        ext = DinoExtractor(_vit(dict(img_size=224, patch_size=8, embed_dim=768, depth=12, num_heads=12)), (3, 6, 9, 12), 512).to(dev, torch.bfloat16)
        glad = GLAD(bb, ext, GLADConfig(tau=tau), device=dev); size = 512
    x = torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(0)) * 2 - 1
    glad.reconstruct(x[:batch])     # warm-up
    if dev == 'cuda': torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
    counts, t0 = {}, time.perf_counter()
    for i in range(0, n, batch):
        xb = x[i:i+batch]  # the last batch may be short
        r = glad.reconstruct(xb)
        glad.layer_distances(xb, r.recon.float())
        for k, v in r.counts.items(): counts[k] = counts.get(k, 0.0) + float(torch.as_tensor(v).float().sum())
    if dev == 'cuda': torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    out = dict(case=case, tau=tau, n=n, batch=batch, seconds=round(dt, 2), images_per_s=round(n / dt, 3),
               passes_per_image={k: round(v / n, 2) for k, v in counts.items()}, scoring_feature_passes=2,
               peak_rss_mib=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1))
    if dev == 'cuda': out['peak_gpu_mib'] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return out

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--case', choices=['demo-cpu', 'sd14-cuda'], default=None)
    p.add_argument('--n', type=int, default=None); p.add_argument('--batch', type=int, default=None)
    p.add_argument('--tau', type=float, default=None); p.add_argument('--json', default=None)
    p.add_argument('--child', action='store_true', help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        print(json.dumps(run_case(a.case, a.n, a.batch, a.tau))); return
    import torch
    plan = [('demo-cpu', a.n or 32, a.batch or 16, t) for t in (0.05, 0.0)]
    if torch.cuda.is_available(): plan += [('sd14-cuda', a.n or 16, a.batch or 8, t) for t in (1e9, 0.0)]
    else: print('sd14-cuda: skipped (no CUDA device)')
    if a.case: plan = [c for c in plan if c[0] == a.case]
    rows = []
    for case, n, b, tau in plan:
        r = subprocess.run([sys.executable, __file__, '--child', '--case', case, '--n', str(n), '--batch', str(b), '--tau', str(tau)],
                           capture_output=True, text=True, cwd=ROOT)
        if r.returncode: print(f'{case} τ={tau}: FAILED\n{r.stderr[-2000:]}'); continue
        rows.append(json.loads(r.stdout.strip().splitlines()[-1])); print(json.dumps(rows[-1]), flush=True)
    if len(rows) >= 2 and rows[0]['case'] == rows[1]['case'] == 'demo-cpu':
        print(f"demo-cpu: ADS+SAFF costs {rows[1]['images_per_s'] / rows[0]['images_per_s']:.2f}x the time of plain DDIM (τ = 0)")
    if a.json: Path(a.json).write_text(json.dumps(rows, indent=2))

if __name__ == '__main__': main()
