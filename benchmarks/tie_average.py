"""GLAD's tie average against the single pick it is built around, re-scored from a run's saved caches.

    python benchmarks/tie_average.py runs/demo              # a `glad-nb demo` run folder
    python benchmarks/tie_average.py runs/unseen            # or a `glad-nb test` run: every result folder below it

`--preset auto` averages the near-tied candidates of the winner's model (`GLADConfig.fuse`, nbs/11f_select.ipynb).
Each result's saved cache (`cache.safetensors`) holds the winner's reconstruction and those of members with another
start step (`ScoreCache.alts`), so it can be scored again without reconstructing anything: once as the run reported
it (the tie average) and once with the winner alone (`fuse=()`, its own v and σ). `n_fused` counts the members,
`n_passes` the reconstructions of the test set they use. One row per result folder, then the means over all
result folders (a folder without one counts with the same figures in both columns). Reads only what `glad-nb`
wrote (`results.read_result`); labels are read here to report, never to choose.
"""
import argparse, sys
from pathlib import Path


def compare(run:Path):   # -> pandas DataFrame, one row per result folder
    import pandas as pd
    from glad_nb.core import GLADConfig
    from glad_nb.metrics import evaluate_category
    from glad_nb.results import read_result, score_cache
    from glad_nb.select import CRITERION
    rows = []
    for f in sorted(p.parent for p in run.rglob('cache.safetensors')):
        if not (f/'protocol.json').exists(): continue
        res = read_result(f, maps=False)
        if res.protocol.get('method') == 'memory_bank': continue
        cfg = GLADConfig.from_dict(res.protocol['config'])
        row = dict(result=str(f.relative_to(run)), n_fused=len(cfg.fuse), n_passes=1 + len(res.cache.alts), v=cfg.pixel_weight, sigma=cfg.sigma)
        for name, c in (('average', cfg), ('pick', cfg.replace(fuse=()))):
            maps, scores = score_cache(res.cache, c)
            m = evaluate_category(scores.numpy(), res.cache.labels.numpy(), maps, res.cache.masks)
            row.update({f'{name} {k}': m[k] for k in CRITERION})
        rows.append(row)
    if not rows: raise FileNotFoundError(f"{run}: no GLAD result folder (cache.safetensors + protocol.json) below it")
    t = pd.DataFrame(rows).set_index('result').astype(float)
    t.loc['mean'] = t.mean(numeric_only=True)
    return t


def main(argv=None)->int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('run', type=Path, help="a run folder written by glad-nb demo or glad-nb test")
    a = p.parse_args(argv)
    if not a.run.is_dir(): p.error(f"{a.run}: not a folder (expected a run folder written by glad-nb demo or glad-nb test)")
    try: t = compare(a.run)
    except FileNotFoundError as e: p.error(str(e))
    import pandas as pd
    with pd.option_context('display.width', 200, 'display.max_columns', 20): print(t.round(4).to_string())
    return 0


if __name__ == '__main__':
    sys.exit(main())
