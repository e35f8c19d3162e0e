"""Would more ATP training help? The winner's test figures at each saved checkpoint, and after more steps, at the settings a run chose.

    python benchmarks/more_training.py runs/unseen --dataset folder --root data/unseen --category china --more 600
    python benchmarks/more_training.py runs/demo --dataset demo --category grass --more 600
    python benchmarks/more_training.py runs/demo --dataset demo --category grass --recipe

Reads one category of a run that `glad-nb train --preset auto` or `glad-nb demo` wrote: the model
(`<run>/<category>/model`), the training the selection kept (`protocol.json`'s selection, `train/t_max-<t>/`)
and its checkpoints. The test set is scored with the model's chosen settings and its winner alone (`fuse=()`):
once at every saved checkpoint, once as saved, and, with `--more N`, after N more steps of the same ATP training
on the same images (the held-out ones left out; a fresh optimizer and the training seed + 1, so the new steps draw
new noise and anomalies). The further training goes to a temporary folder, or `--keep DIR`; the run is not changed.
The memory bank's figures beside the run's test (`baseline/metrics.csv`) are printed for reference.

The settings stay those chosen at the run's own step count: this measures which way more training moves GLAD, it is
not a recipe (that would select again). Labels are read to report, never to choose.

`--recipe` instead applies the recipe's longer training (`AUTO_LONGER`, `glad_nb.select.select_longer`) to a run made
before the recipe had it: the kept training resumed from its newest checkpoint on to AUTO_LONGER x its steps (in a
temporary folder or `--keep`), the settings chosen again on the run's held-out images, and the test scored as
`glad-nb test` scores it (the tie average and the noise draws) and with the winner alone, beside the run's own figures,
and the memory bank computed again with the settings chosen (its σ may differ from the run's, so the run's bank is not it).
"""
import argparse, json, sys, tempfile, time
from pathlib import Path


def kept_training(run:Path, category:str):   # -> (the category's folder, the kept training's folder, its TrainConfig, protocol's selection)
    "The training a run's selection kept: `train/`, `train/t_max-<t>/` or, after the recipe's longer training, `...-steps-<n>`."
    from glad_nb.core import TrainConfig
    cat = run/category
    if not (cat/'model').is_dir() or not (cat/'protocol.json').is_file():
        raise FileNotFoundError(f"{cat}: no trained model (model/ and protocol.json, written by glad-nb train or glad-nb demo)")
    sel = json.loads((cat/'protocol.json').read_text()).get('selection') or {}
    tr = sel.get('training') or {}
    name = '-'.join(f'{k}-{tr[k]}' for k in ('t_max', 'steps') if k in tr)
    tdir = next((d for d in (cat/'train'/name, cat/'train'/f"t_max-{tr.get('t_max')}") if name and d.is_dir()), cat/'train')
    if not (tdir/'train_config.json').is_file(): raise FileNotFoundError(f"{tdir}: no training folder (train_config.json) for the kept model")
    return cat, tdir, TrainConfig.from_dict(json.loads((tdir/'train_config.json').read_text())['config']), sel


def bank_row(run:Path, cat:Path):   # -> the memory bank's row beside the run's test, or None
    import pandas as pd
    from glad_nb.select import CRITERION
    bank = sorted(cat.rglob('baseline/metrics.csv'))
    if not bank: return None
    b = pd.read_csv(bank[0], index_col=0).iloc[0]
    return dict(stage=f'memory bank ({bank[0].parent.relative_to(run)})', **{k: b[k] for k in CRITERION})


def study(run:Path, dataset:str, root, category:str, more:int=0, keep=None, batch_size:int=8):   # -> pandas DataFrame, one row per stage
    import pandas as pd
    from torch.utils.data import Subset
    from glad_nb.checkpoints import list_checkpoints, use_checkpoint
    from glad_nb.core import state_hash
    from glad_nb.data import get_dataset
    from glad_nb.pipeline import GLAD
    from glad_nb.select import CRITERION
    cat, tdir, tcfg, _ = kept_training(run, category)
    glad = GLAD.load(cat/'model', device='cpu')
    test = get_dataset(dataset, root, category, 'test', image_size=glad.cfg.image_size)
    rows = []
    def score(g, stage, steps, seconds=None):
        m = g.evaluate(test, batch_size=batch_size, progress=False, fuse=()).metrics
        rows.append(dict(stage=stage, steps=steps, **{k: m[k] for k in CRITERION}, train_s=seconds, unet=state_hash(g.backbone.unet)[:12]))   # which weights were scored
    for s, _ in list_checkpoints(tdir):
        if s < tcfg.steps: score(use_checkpoint(GLAD.load(cat/'model', device='cpu'), tdir, s), f'checkpoint {s}', s)
    score(glad, 'the model', tcfg.steps)
    if more > 0:
        train = get_dataset(dataset, root, category, 'train', image_size=glad.cfg.image_size)
        held = set((getattr(glad.thresholds, 'holdout', None) or {}).get('indices', []))
        with tempfile.TemporaryDirectory() as d:
            t0 = time.time()
            glad.fit(Subset(train, [i for i in range(len(train)) if i not in held]), tcfg.replace(steps=more, seed=tcfg.seed + 1),
                     Path(keep) if keep else Path(d), progress=False)
            score(glad, f'{more} more steps', tcfg.steps + more, time.time() - t0)
    b = bank_row(run, cat)
    return pd.DataFrame(rows + ([b] if b else []))


def recipe(run:Path, dataset:str, root, category:str, keep=None, batch_size:int=8):   # -> (DataFrame, one row per stage; the new selection table)
    "The recipe's longer training and second selection (`select_longer`) applied to a run made without them; the run is not changed."
    import pandas as pd
    from torch.utils.data import Subset
    from glad_nb.core import AUTO_LONGER, DEMO_PRESET, DEMO_QUICK_GRID, state_hash
    from glad_nb.baseline import baseline_result
    from glad_nb.data import get_dataset
    from glad_nb.pipeline import GLAD
    from glad_nb.select import CRITERION, SETTINGS, select_longer
    cat, tdir, tcfg, sel = kept_training(run, category)
    if 'steps' in (sel.get('training') or {}): raise ValueError(f"{cat}: the run already trained the kept model longer ({sel['training']})")
    if not (cat/'selection.csv').is_file(): raise FileNotFoundError(f"{cat/'selection.csv'}: the run made no selection (glad-nb train --preset auto or glad-nb demo)")
    glad = GLAD.load(cat/'model', device='cpu')
    test = get_dataset(dataset, root, category, 'test', image_size=glad.cfg.image_size)
    train = get_dataset(dataset, root, category, 'train', image_size=glad.cfg.image_size)
    held = Subset(train, glad.thresholds.holdout['indices'])
    table = pd.read_csv(cat/'selection.csv'); table.attrs.update(training=list(sel['training']), seconds=sel.get('seconds', 0))
    cfg0 = glad.cfg.replace(**{k: DEMO_PRESET[k] for k in SETTINGS}, fuse=())   # the recipe's defaults; the run's draws
    st = json.loads((run/'run.json').read_text()).get('settings') or {} if (run/'run.json').is_file() else {}
    grid, fixed = DEMO_QUICK_GRID if st.get('quick') else None, tuple(st.get('sets') or ())   # as the run selected: the quick demo's grid, train's --set
    mf = next((f for f in (cat/'metrics.csv', cat/'eval-auto'/'metrics.csv') if f.is_file()), None)   # the demo's test; `glad-nb test`'s
    rows = [dict(stage=f'as run ({tcfg.steps} steps)', steps=tcfg.steps, **pd.read_csv(mf).iloc[0][list(CRITERION)].to_dict())] if mf else []
    with tempfile.TemporaryDirectory() as d:
        t0 = time.time()
        t, tc, fz = select_longer(glad, cfg0, train, held, table, tcfg, tcfg.steps * AUTO_LONGER, tdir, Path(keep) if keep else Path(d)/'longer', fixed, grid)
        took = time.time() - t0
    w = t[t.winner].iloc[0]
    glad.cfg = glad.cfg.replace(**{k: type(getattr(cfg0, k))(w[k]) for k in SETTINGS}, fuse=fz)
    for stage, kw in (('recipe: longer, selected again', {}), ('... its winner alone', dict(fuse=()))):
        r = glad.evaluate(test, batch_size=batch_size, progress=False, **kw).metrics
        rows.append(dict(stage=stage, steps=tc.steps, **{k: r[k] for k in CRITERION}, train_select_s=took, unet=state_hash(glad.backbone.unet)[:12],
                         **{k: w[k] for k in SETTINGS}, fused=len(fz)))
    r = baseline_result(glad, train, test, batch_size=batch_size).metrics   # as `glad-nb demo` and `glad-nb test` do: the bank with the chosen settings (σ, ...)
    rows.append(dict(stage="memory bank (the recipe's settings)", **{k: r[k] for k in CRITERION}))
    return pd.DataFrame(rows), t


def main(argv=None)->int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('run', type=Path, help="a run folder written by glad-nb train --preset auto or glad-nb demo")
    p.add_argument('--dataset', required=True, help="the dataset the run trained on (folder, demo, mvtec, ...)")
    p.add_argument('--root', default=None, help="its root (optional for demo)")
    p.add_argument('--category', required=True)
    p.add_argument('--more', type=int, default=0, help="train this many more steps, then score again (0: only the checkpoints)")
    p.add_argument('--recipe', action='store_true', help="apply the recipe's longer training and second selection to a run made without them")
    p.add_argument('--keep', type=Path, default=None, help="where the further training goes (default: a temporary folder)")
    p.add_argument('--threads', type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument('--json', type=Path, default=None, help="also write the table here")
    a = p.parse_args(argv)
    if not a.run.is_dir(): p.error(f"{a.run}: not a folder (expected a run folder written by glad-nb train or glad-nb demo)")
    if a.more < 0: p.error(f"--more {a.more}: expected 0 or more steps")
    if a.threads:
        import torch; torch.set_num_threads(a.threads)
    if a.recipe and a.more: p.error("--recipe trains on by the recipe's own count: drop --more")
    try: t = recipe(a.run, a.dataset, a.root, a.category, a.keep)[0] if a.recipe else study(a.run, a.dataset, a.root, a.category, a.more, a.keep)
    except (FileNotFoundError, ValueError) as e: p.error(str(e))
    if a.json: a.json.write_text(t.to_json(orient='records', indent=1, double_precision=15))
    print(t.round(4).to_string(index=False))
    return 0


if __name__ == '__main__':
    sys.exit(main())
