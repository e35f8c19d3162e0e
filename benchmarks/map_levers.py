"""Does a change to the anomaly map close GLAD's gap to the memory bank, or lift the bank as much? Re-scored from saved caches.

    python benchmarks/map_levers.py runs/demo                       # a `glad-nb demo` run folder
    python benchmarks/map_levers.py runs/unseen runs/unseen2        # or `glad-nb test` runs: every result folder below them, pooled

Each GLAD result folder that has the memory bank beside it (`<result>/baseline/`, written by `glad-nb test` and
`glad-nb demo`) is scored again from its two caches, GLAD's winner alone (`fuse=()`, its own v and σ) and the bank
(`baseline.baseline_cfg`, the same layers, σ and top-k), once per lever:

  as run          the settings the run chose (the first row also gives GLAD's tie average, as the run reported it)
  layers L        only the layers L: the run's layers without the deepest, and without the shallowest
  reverse         GLAD adds the reconstruction -> input direction (the bank has no reconstruction: unchanged)
  position z      every map z-scored per pixel position by the test set's other normal images (leave one out)

"position z" reads which test images are normal, so it is an oracle for a study, not a recipe: it shows what a
per-position normalisation from held-out normal images could give at best, to GLAD and to the bank alike. Nothing
here chooses a setting; the table says which levers move GLAD − bank and which move both. Reads only what
`glad-nb` wrote (`results.read_result`).
"""
import argparse, sys
from pathlib import Path

LEVERS = ('as run', 'layers -deepest', 'layers -shallowest', 'reverse', 'position z')


def position_z(maps, normal, floor:float=0.1):   # -> (N,S,S) maps z-scored per position by the other normal maps
    "z-score each map per pixel position by the mean and std of the normal maps other than itself (std plus `floor`·their pooled std)."
    import torch
    maps, idx = maps.double(), torch.as_tensor(normal, dtype=torch.bool).nonzero()[:, 0].tolist()
    if len(idx) < 3: raise ValueError(f"position z needs at least 3 normal test images, got {len(idx)}")
    out = torch.empty_like(maps)
    for i in range(len(maps)):   # a normal map is left out of its own reference
        ref = maps[[j for j in idx if j != i]]
        out[i] = (maps[i] - ref.mean(0)) / (ref.std(0) + floor * ref.std())
    return out.float()


def _score(cache, cfg, lever):   # -> (image AUROC, pixel AUROC, AUPRO) of one cache under one lever
    from glad_nb.metrics import evaluate_category
    from glad_nb.results import score_cache
    from glad_nb.score import image_score
    from glad_nb.select import CRITERION
    maps, scores = score_cache(cache, cfg)
    if lever == 'position z':
        maps = position_z(maps, cache.labels == 0); scores = image_score(maps, cfg.score_topk)
    m = evaluate_category(scores.numpy(), cache.labels.numpy(), maps, cache.masks)
    return [m[k] for k in CRITERION]


def lever_cfg(cfg, lever:str, bank:bool):   # -> the config a lever scores with, or None where it does not apply
    L = tuple(cfg.layers)
    if lever in ('as run', 'position z'): return cfg
    if lever == 'reverse': return cfg if bank else cfg.replace(reverse=True)
    if len(L) < 2: return None
    return cfg.replace(layers=L[:-1] if lever == 'layers -deepest' else L[1:])


def compare(runs:list):   # -> pandas DataFrame: one row per (result, lever), then the means per lever
    import pandas as pd
    from glad_nb.baseline import baseline_cfg
    from glad_nb.core import GLADConfig
    from glad_nb.results import read_result, score_cache
    from glad_nb.metrics import evaluate_category
    from glad_nb.select import CRITERION
    rows = []
    for run in runs:
        for f in sorted(p.parent for p in Path(run).rglob('cache.safetensors')):
            if not (f/'protocol.json').exists() or not (f/'baseline'/'cache.safetensors').exists(): continue
            res = read_result(f, maps=False)
            if res.protocol.get('method') == 'memory_bank': continue
            bank = read_result(f/'baseline', maps=False)
            cfg = GLADConfig.from_dict(res.protocol['config'])
            maps, s = score_cache(res.cache, cfg)   # the tie average, as the run reported it
            m = evaluate_category(s.numpy(), res.cache.labels.numpy(), maps, res.cache.masks)
            tie = {f'tie average {k}': m[k] for k in CRITERION}
            for lever in LEVERS:
                g, b = lever_cfg(cfg.replace(fuse=()), lever, False), lever_cfg(baseline_cfg(cfg), lever, True)
                if g is None: continue
                row = dict(result=f'{Path(run).name}/{f.relative_to(run)}', lever=lever, **(tie if lever == 'as run' else {}))
                for name, vals in (('GLAD', _score(res.cache, g, lever)), ('bank', _score(bank.cache, b, lever))):
                    row.update({f'{name} {k}': v for k, v in zip(CRITERION, vals)})
                row.update({f'GLAD - bank {k}': row[f'GLAD {k}'] - row[f'bank {k}'] for k in CRITERION})
                rows.append(row)
    if not rows: raise FileNotFoundError(f"{', '.join(map(str, runs))}: no GLAD result folder with the memory bank beside it (cache.safetensors, protocol.json, baseline/)")
    t = pd.DataFrame(rows)
    mean = t.groupby('lever', sort=False).mean(numeric_only=True).reset_index().assign(result='mean')
    return pd.concat([t, mean], ignore_index=True).set_index(['result', 'lever'])


def main(argv=None)->int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('runs', type=Path, nargs='+', help="run folders written by glad-nb demo or glad-nb test (pooled)")
    a = p.parse_args(argv)
    for r in a.runs:
        if not r.is_dir(): p.error(f"{r}: not a folder (expected a run folder written by glad-nb demo or glad-nb test)")
    try: t = compare(a.runs)
    except (FileNotFoundError, ValueError) as e: p.error(str(e))
    import pandas as pd
    cols = [c for c in t.columns if not c.startswith('tie')]
    with pd.option_context('display.width', 250, 'display.max_columns', 20):
        print(t[cols].round(4).to_string())
        print(t.loc['mean', [c for c in t.columns if c.startswith('tie')]].dropna().round(4).to_string())
    return 0


if __name__ == '__main__':
    sys.exit(main())
