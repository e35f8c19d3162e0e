"""Bytes per training checkpoint: measured on a tiny latent backbone, computed at Stable Diffusion 1.4 scale.

Before (glad_nb until the checkpoint-size change): every checkpoint held a whole backbone (UNet, VAE,
scheduler, prompt embeddings) and the training state with AdamW's two float32 moments per weight.
After (`glad_nb.train`): every checkpoint holds the trained UNet (`unet/`); the newest one alone
also holds the training state (optimizer, schedule, RNG; with EMA the raw weights too); the frozen
parts are written once per run (`out_dir/frozen/`).

The tiny case trains `LatentBackbone.tiny()` for 3 steps with a checkpoint at every step and
measures the files; the SD-1.4 case counts the parameters of the SD-1.4 UNet and VAE (built on the
meta device, nothing allocated) and multiplies: float32 = 4 bytes per weight, AdamW = 2 more
float32 tensors per weight, 8 checkpoints per category (4000 steps, one every 500: docs/method.md §3).

  python benchmarks/checkpoints.py             # measure the tiny case (CPU, seconds) and compute SD 1.4
  python benchmarks/checkpoints.py --dry-run   # SD 1.4 figures only, nothing trained
  python benchmarks/checkpoints.py --json out.json
"""
from __future__ import annotations
import argparse, json, shutil, sys, tempfile
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
from sd14 import SD14_UNET, SD14_VAE

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
GB = 1e9

def folder_bytes(p)->int:
    "Bytes of all files under `p` (0 if it does not exist)."
    p = Path(p)
    return sum(f.stat().st_size for f in p.rglob('*') if f.is_file()) if p.exists() else 0

def sd14_counts()->dict:
    "Parameter counts of the SD-1.4 UNet and VAE (built on the meta device) and of the two prompt embeddings."
    import torch
    from diffusers import UNet2DConditionModel, AutoencoderKL
    with torch.device('meta'):
        unet, vae = UNet2DConditionModel(**SD14_UNET), AutoencoderKL(**SD14_VAE)
    n = lambda m: sum(p.numel() for p in m.parameters())
    return dict(unet=n(unet), frozen=n(vae) + 2 * 77 * 768)

def layout_bytes(unet:int, frozen:int, n_ckpt:int=8, ema:bool=False)->dict:
    "Bytes of one category's checkpoints from parameter counts (float32, AdamW), before and after."
    U, Fz = 4 * unet, 4 * frozen
    state = 2 * U + (U if ema else 0)          # AdamW's moments (+ the raw weights beside the EMA)
    before = U + Fz + 2 * U                    # a whole backbone + AdamW in every checkpoint (no EMA before)
    return dict(before_ckpt=before, before_total=n_ckpt * before, older=U, latest=U + state, frozen=Fz,
                after_total=Fz + (n_ckpt - 1) * U + U + state)

def measure_tiny(folder, steps:int=3, ema_decay:float=0.0)->dict:
    "Train the tiny latent backbone `steps` steps with a checkpoint at each; bytes of an older and the newest checkpoint, the frozen parts, and the old layout."
    import torch
    from glad_nb.core import TrainConfig
    from glad_nb.backbone import LatentBackbone
    from glad_nb.train import train_backbone
    from glad_nb.checkpoints import list_checkpoints, STATE_JSON, STATE_TENSORS
    folder = Path(folder)
    g = torch.Generator().manual_seed(0)
    data = [torch.rand(3, 32, 32, generator=g) * 2 - 1 for _ in range(4)]
    cfg = TrainConfig(image_size=32, batch_size=2, steps=steps, ckpt_every=1, lr=1e-4, synth_prob=0.0, use_8bit_adam=False,
                      gradient_checkpointing=False, ema_decay=ema_decay)
    bb = LatentBackbone.tiny()
    train_backbone(bb, data, cfg, folder/'run', progress=False, log_every=steps)
    cks = list_checkpoints(folder/'run')
    old = folder/'old-layout'; old.mkdir()    # what the newest checkpoint was before: a whole backbone + the state
    bb.write_to(old)
    for n in (STATE_JSON, STATE_TENSORS): shutil.copy(cks[-1][1]/n, old/n)
    return dict(unet_params=sum(p.numel() for p in bb.unet.parameters()), n_ckpt=len(cks), older=folder_bytes(cks[0][1]),
                latest=folder_bytes(cks[-1][1]), frozen=folder_bytes(folder/'run'/'frozen'), before_ckpt=folder_bytes(old))

def _row(name, older, latest, frozen, before, after, unit, scale):
    f = lambda b: f"{b / scale:10.3f}"
    return f"{name:<34}{f(older)}{f(latest)}{f(frozen)}{f(before)}{f(after)}  {unit}   after/before = {after / before:.2f}"

def main(argv=None)->dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--dry-run', action='store_true', help='SD-1.4 figures only (no tiny training run)')
    ap.add_argument('--json', default=None, help='also write the figures to this JSON file')
    a = ap.parse_args(argv)
    res = dict(sd14=sd14_counts())
    c = res['sd14']
    res['sd14_bytes'] = layout_bytes(c['unet'], c['frozen'])
    res['sd14_bytes_ema'] = layout_bytes(c['unet'], c['frozen'], ema=True)
    if not a.dry_run:
        with tempfile.TemporaryDirectory() as d:
            res['tiny'] = measure_tiny(Path(d)/'plain')
            res['tiny_ema'] = measure_tiny(Path(d)/'ema', ema_decay=0.999)
    head = f"{'':<34}{'older':>10}{'newest':>10}{'frozen':>10}{'before':>10}{'after':>10}"
    print(f"SD 1.4: UNet {c['unet'] / 1e6:.2f} M parameters, frozen parts (VAE + prompt embeddings) {c['frozen'] / 1e6:.2f} M; "
          "float32, AdamW, 8 checkpoints per category")
    print(head + "   (older/newest: one checkpoint; frozen: once per run; before/after: a category's 8 checkpoints)")
    for name, b in (('SD 1.4', res['sd14_bytes']), ('SD 1.4, EMA on', res['sd14_bytes_ema'])):
        print(_row(name, b['older'], b['latest'], b['frozen'], b['before_total'], b['after_total'], 'GB', GB))
    b = res['sd14_bytes']
    print(f"{'MVTec-AD, 15 categories':<34}{'':>30}{15 * b['before_total'] / GB:10.1f}{15 * b['after_total'] / GB:10.1f}  GB")
    for key in ('tiny', 'tiny_ema'):
        if key in res:
            t = res[key]; n = t['n_ckpt']
            before = n * res['tiny']['before_ckpt']    # before there was no EMA: the plain run's old layout
            after = t['frozen'] + (n - 1) * t['older'] + t['latest']
            print(_row(f"tiny latent{', EMA on' if key == 'tiny_ema' else ''} (measured, {n})", t['older'], t['latest'], t['frozen'],
                       before, after, 'KB', 1e3) + f"   older/newest = {t['older'] / t['latest']:.3f}")
    if a.json: Path(a.json).write_text(json.dumps(res, indent=2))
    return res

if __name__ == '__main__': main()
