"""Tiny stand-ins for the real inputs, written the way the real ones are laid out: a Stable Diffusion 1.4 folder
(diffusers layout, random weights), a DINO checkpoint in the original DINO format, and a dataset in the
MVTec / converted-VisA layout. Shared by the CLI tests."""
import json
from pathlib import Path
import numpy as np
import torch
from PIL import Image

SD14_SCHEDULER = {'_class_name': 'PNDMScheduler', '_diffusers_version': '0.7.0.dev0', 'beta_end': 0.012,
                  'beta_schedule': 'scaled_linear', 'beta_start': 0.00085, 'num_train_timesteps': 1000,
                  'set_alpha_to_one': False, 'skip_prk_steps': True, 'steps_offset': 1, 'trained_betas': None, 'clip_sample': False}

def write_sd_folder(root, seed=0)->Path:
    "unet/, vae/, text_encoder/, tokenizer/ (vocab.json + merges.txt), scheduler/ as SD 1.4 ships them."
    from glad_nb.backbone import _tiny_unet, _tiny_vae, tiny_text_encoder
    root = Path(root)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed); unet, vae = _tiny_unet(), _tiny_vae()
    te, tok = tiny_text_encoder(seed=seed)
    unet.save_pretrained(root/'unet'); vae.save_pretrained(root/'vae'); te.save_pretrained(root/'text_encoder')
    tok.save_pretrained(root/'tokenizer'); (root/'scheduler').mkdir(exist_ok=True)
    (root/'scheduler'/'scheduler_config.json').write_text(json.dumps(SD14_SCHEDULER))
    (root/'tokenizer'/'tokenizer.json').unlink(missing_ok=True)
    (root/'tokenizer'/'vocab.json').write_text(json.dumps(tok.get_vocab())); (root/'tokenizer'/'merges.txt').write_text('#version: 0.2\n')
    return root

def write_dino_checkpoint(path, depth=12, dim=64, seed=0)->Path:
    "A random ViT saved as the original DINO release is: a plain state dict (cls_token, pos_embed, patch_embed, blocks, norm) in a .pth."
    from glad_nb.features import DinoExtractor
    vit = DinoExtractor.tiny(dim=dim, depth=depth, heads=1, seed=seed).vit
    sd = {k:v.clone() for k, v in vit.state_dict().items() if not k.startswith('head')}
    path = Path(path); path.parent.mkdir(parents=True, exist_ok=True); torch.save(sd, path)
    return path

def _img(rng, S, defect=False):
    y, x = np.mgrid[0:S, 0:S] / S
    a = np.stack([0.5 + 0.2 * np.sin(6 * x + c) * np.cos(5 * y) for c in range(3)], -1) + rng.normal(0, 0.02, (S, S, 3))
    m = np.zeros((S, S), np.uint8)
    if defect:
        r, c = rng.integers(S // 4, 3 * S // 4, 2); m[r - S // 8:r + S // 8, c - S // 8:c + S // 8] = 255
        a[m > 0] = rng.random(3)
    return (np.clip(a, 0, 1) * 255).astype(np.uint8), m

def write_layout_dataset(root, category='pcb1', n_train=6, n_good=2, n_bad=2, S=32, defect_name='bad', mask_suffix='', seed=0)->Path:
    "<root>/<category>/{train/good, test/good, test/<defect>, ground_truth/<defect>} (MVTec; converted VisA with mask_suffix='')."
    rng, c = np.random.default_rng(seed), Path(root)/category
    for split, n, bad in (('train', n_train, False), ('test', n_good, False), ('test', n_bad, True)):
        d = c/split/(defect_name if bad else 'good'); d.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            a, m = _img(rng, S, bad)
            Image.fromarray(a).save(d/f'{split}{i:03d}.png')
            if bad:
                g = c/'ground_truth'/defect_name; g.mkdir(parents=True, exist_ok=True)
                Image.fromarray(m).save(g/f'{split}{i:03d}{mask_suffix}.png')
    return Path(root)
