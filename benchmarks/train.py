"""ATP training throughput and peak memory.

Cases (each runs in its own subprocess so that peak-memory figures do not mix):
  pixel-cpu  the demo's pixel backbone (`PixelBackbone(**DEMO_MODEL)`, ~0.64 M params) at 64 px on the CPU, batch 16
             (the demo's), ATP synthesis on (synth_prob 0.5), torch AdamW; fp32 and bf16 autocast (accelerate's
             mixed_precision='bf16' on the CPU), side by side: bf16 pays where the CPU has bf16 matrix units
             (AMX, AVX512-BF16) and is slower where it does not
  sd14-cuda  an SD-1.4-sized UNet2DConditionModel (~860 M params, random weights) + SD-sized VAE at
             512 px (64x64x4 latents), batch 8, bf16 autocast, gradient checkpointing on and off,
             AdamW (bitsandbytes 8-bit when installed); skipped without CUDA

--dry-run runs the same code on tiny random components on the CPU in seconds (sd14-cuda: `LatentBackbone.tiny`
at 32 px, batch 2, 2 timed steps, gradient checkpointing on), to check the script where there is no GPU.

Everything goes through `glad_nb.train.train_backbone` (synthesis, VAE encode, ATP loss, backward,
clipping, optimizer step); steps/s is measured from loss.csv between the end of the warm-up and the
last step, so checkpoint writing is excluded. Nothing is downloaded.

  python benchmarks/train.py                    # all cases that can run here
  python benchmarks/train.py --case pixel-cpu --steps 20 --json out.json
  python benchmarks/train.py --case sd14-cuda --dry-run
"""
from __future__ import annotations
import argparse, json, os, resource, subprocess, sys, tempfile
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
from sd14 import SD14_UNET, SD14_VAE

ROOT = Path(__file__).resolve().parent.parent

def _rss_mib()->float:
    "Current resident set size in MiB (Linux)."
    with open('/proc/self/statm') as f: return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**20

def _cpu_bf16()->str:
    "The CPU's bf16 matrix features from /proc/cpuinfo (Linux; '?' elsewhere), e.g. 'amx_bf16 avx512_bf16', or 'none'."
    try: flags = next(l for l in Path('/proc/cpuinfo').read_text().splitlines() if l.startswith('flags')).split()
    except (OSError, StopIteration): return '?'
    return ' '.join(f for f in ('amx_bf16', 'avx512_bf16') if f in flags) or 'none'

def _images(n, size, device='cpu'):
    "Smooth random images in [-1, 1] (not pure noise, so Otsu/synthesis behave as on photos)."
    import torch, torch.nn.functional as F
    g = torch.Generator().manual_seed(0)
    x = F.interpolate(torch.rand(n, 3, size // 16, size // 16, generator=g), size=size, mode='bicubic', align_corners=False)
    return list((x.clamp(0, 1) * 2 - 1).to(device))

def _sd14_backbone(device):
    import torch
    from diffusers import UNet2DConditionModel, AutoencoderKL
    from glad_nb.backbone import LatentBackbone
    with torch.device(device):
        unet, vae = UNet2DConditionModel(**SD14_UNET), AutoencoderKL(**SD14_VAE)
        emb = torch.randn(2, 77, 768)
    return LatentBackbone(unet, vae, emb[:1], emb[1:])

def run_case(case:str, batch:int, steps:int, warmup:int, gc:bool=True, threads:int|None=None, dry:bool=False, precision:str='no')->dict:
    "Run one measurement in this process and return its figures."
    import torch, pandas as pd
    if threads: torch.set_num_threads(threads)
    from accelerate import Accelerator
    from glad_nb.core import TrainConfig, DEMO_MODEL
    from glad_nb.backbone import PixelBackbone
    from glad_nb.train import train_backbone
    total = warmup + steps
    if case == 'pixel-cpu':
        bb, size, mp, dev = PixelBackbone(**DEMO_MODEL, seed=0), DEMO_MODEL['image_size'], precision, 'cpu'
        acc = Accelerator(cpu=True, mixed_precision=mp)
    elif case == 'sd14-cuda' and dry:
        from glad_nb.backbone import LatentBackbone
        bb, size, mp, dev = LatentBackbone.tiny(), 32, 'no', 'cpu'
        acc = Accelerator(cpu=True, mixed_precision=mp)
    elif case == 'sd14-cuda':
        if not torch.cuda.is_available(): return dict(case=case, skipped='no CUDA')
        bb, size, mp, dev = _sd14_backbone('cuda'), 512, 'bf16', 'cuda'
        acc = Accelerator(mixed_precision=mp)
        torch.backends.cuda.matmul.allow_tf32 = True; torch.backends.cudnn.allow_tf32 = True
    else: raise ValueError(f"unknown case {case!r}")
    data = _images(max(16, 2 * batch), size)
    cfg = TrainConfig(image_size=size, batch_size=batch, steps=total, ckpt_every=10**6, lr=5e-6, synth_prob=0.5,
                      mixed_precision=mp, gradient_checkpointing=gc, use_8bit_adam=True)
    nparams = sum(p.numel() for p in bb.unet.parameters())
    rss0 = _rss_mib()
    if dev == 'cuda': torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
    with tempfile.TemporaryDirectory() as d:
        r = train_backbone(bb, data, cfg, d, accelerator=acc, progress=False, log_every=1, max_steps=total)
        log = pd.read_csv(Path(d)/'loss.csv')
    el = log.set_index('step').elapsed_s
    sps = steps / (el[total] - el[warmup])
    dt = el.diff().loc[warmup + 1:total]          # per-step seconds; the median resists other load on a shared machine
    out = dict(case=case + (' (dry run: tiny)' if dry else ''), device=str(acc.device), batch=batch, image_size=size, mixed_precision=mp, gradient_checkpointing=gc and case != 'pixel-cpu',
               unet_params_M=round(nparams / 1e6, 2), optimizer=r.optimizer, steps_timed=steps, warmup=warmup,
               steps_per_s=round(sps, 3), images_per_s=round(sps * batch, 2), median_step_s=round(float(dt.median()), 4),
               p90_step_s=round(float(dt.quantile(0.9)), 4), final_loss=float(log.loss.iloc[-1]),
               torch_threads=torch.get_num_threads(), loadavg_1min=round(os.getloadavg()[0], 2), cpu_count=os.cpu_count(), cpu_bf16=_cpu_bf16())
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out.update(peak_rss_MiB=round(peak_rss), rss_before_training_MiB=round(rss0))
    if dev == 'cuda':
        out.update(peak_cuda_GiB=round(torch.cuda.max_memory_allocated() / 2**30, 2), gpu=torch.cuda.get_device_name())
    return out

PLAN = {'pixel-cpu': [dict(batch=16), dict(batch=16, precision='bf16')],
        'sd14-cuda': [dict(batch=8, gc=True), dict(batch=8, gc=False)]}

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--case', default='all', choices=['all', *PLAN])
    ap.add_argument('--steps', type=int, default=None, help='timed steps (default 20)')
    ap.add_argument('--warmup', type=int, default=3)
    ap.add_argument('--threads', type=int, default=None, help='torch CPU threads (default: torch\'s choice); 1 is steadier on a shared machine')
    ap.add_argument('--json', default=None, help='also write the results here')
    ap.add_argument('--dry-run', action='store_true', help='tiny components on the CPU, 2 timed steps (checks the script without a GPU)')
    ap.add_argument('--_one', default=None, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a._one:   # child process: one measurement
        print('RESULT ' + json.dumps(run_case(**json.loads(a._one))), flush=True); return
    results = []
    for case in (PLAN if a.case == 'all' else [a.case]):
        for kw in PLAN[case][:1] if a.dry_run else PLAN[case]:
            if a.dry_run: kw = dict(kw, batch=2)
            spec = dict(case=case, steps=a.steps or (2 if a.dry_run else 20), warmup=1 if a.dry_run else a.warmup, threads=a.threads, dry=a.dry_run, **kw)
            env = {**os.environ, 'PYTHONPATH': f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
            p = subprocess.run([sys.executable, __file__, '--_one', json.dumps(spec)], capture_output=True, text=True, env=env)
            line = [l for l in p.stdout.splitlines() if l.startswith('RESULT ')]
            res = json.loads(line[-1][7:]) if p.returncode == 0 and line else dict(case=case, error=p.stderr[-1500:], **kw)
            results.append(res); print(json.dumps(res), flush=True)
            if res.get('skipped'): break
    if a.json: Path(a.json).write_text(json.dumps(results, indent=2))
    print('\n| case | device | batch | px | precision | grad ckpt | UNet M params | optimizer | steps/s (mean) | median s/step | images/s (median) | peak memory | load avg |')
    print('|---|---|---|---|---|---|---|---|---|---|---|---|---|')
    for r in results:
        if 'steps_per_s' not in r: print(f"| {r['case']} | {r.get('skipped') or 'error'} |||||||||"); continue
        mem = f"{r['peak_cuda_GiB']} GiB CUDA" if 'peak_cuda_GiB' in r else f"{r['peak_rss_MiB']} MiB RSS ({r['rss_before_training_MiB']} before)"
        print(f"| {r['case']} | {r['device']} ({r['torch_threads']} threads; CPU bf16: {r.get('cpu_bf16', '?')}) | {r['batch']} | {r['image_size']} | {r['mixed_precision']} | "
              f"{r['gradient_checkpointing']} | {r['unet_params_M']} | {r['optimizer']} | {r['steps_per_s']} | {r['median_step_s']} | "
              f"{round(r['batch'] / r['median_step_s'], 2)} | {mem} | {r['loadavg_1min']} on {r['cpu_count']} CPUs |")

if __name__ == '__main__': main()
