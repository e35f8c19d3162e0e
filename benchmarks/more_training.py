"""Would more ATP training help? The winner's test figures at each saved checkpoint, and after more steps, at the settings a run chose.

    python benchmarks/more_training.py runs/unseen --dataset folder --root data/unseen --category china --more 600
    python benchmarks/more_training.py runs/demo --dataset demo --category grass --more 600

Reads one category of a run that `glad-nb train --preset auto` or `glad-nb demo` wrote: the model
(`<run>/<category>/model`), the training the selection kept (`protocol.json`'s selection, `train/t_max-<t>/`)
and its checkpoints. The test set is scored with the model's chosen settings and its winner alone (`fuse=()`):
once at every saved checkpoint, once as saved, and, with `--more N`, after N more steps of the same ATP training
on the same images (the held-out ones left out; a fresh optimizer and the training seed + 1, so the new steps draw
new noise and anomalies). The further training goes to a temporary folder, or `--keep DIR`; the run is not changed.
The memory bank's figures beside the run's test (`baseline/metrics.csv`) are printed for reference.

The settings stay those chosen at the run's own step count: this measures which way more training moves GLAD, it is
not a recipe (that would select again). Labels are read to report, never to choose.
"""
import argparse, json, sys, tempfile, time
from pathlib import Path


def study(run:Path, dataset:str, root, category:str, more:int=0, keep=None, batch_size:int=8):   # -> pandas DataFrame, one row per stage
    import pandas as pd
    from torch.utils.data import Subset
    from glad_nb.checkpoints import list_checkpoints, use_checkpoint
    from glad_nb.core import TrainConfig, state_hash
    from glad_nb.data import get_dataset
    from glad_nb.pipeline import GLAD
    from glad_nb.select import CRITERION
    cat = run/category
    if not (cat/'model').is_dir() or not (cat/'protocol.json').is_file():
        raise FileNotFoundError(f"{cat}: no trained model (model/ and protocol.json, written by glad-nb train or glad-nb demo)")
    sel = json.loads((cat/'protocol.json').read_text()).get('selection') or {}
    tm = (sel.get('training') or {}).get('t_max')
    tdir = cat/'train'/f't_max-{tm}' if tm is not None and (cat/'train'/f't_max-{tm}').is_dir() else cat/'train'
    if not (tdir/'train_config.json').is_file(): raise FileNotFoundError(f"{tdir}: no training folder (train_config.json) for the kept model")
    tcfg = TrainConfig.from_dict(json.loads((tdir/'train_config.json').read_text())['config'])
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
    t = pd.DataFrame(rows)
    bank = sorted(cat.rglob('baseline/metrics.csv'))
    if bank:
        b = pd.read_csv(bank[0], index_col=0).iloc[0]
        t = pd.concat([t, pd.DataFrame([dict(stage=f'memory bank ({bank[0].parent.relative_to(run)})', **{k: b[k] for k in CRITERION})])], ignore_index=True)
    return t


def main(argv=None)->int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('run', type=Path, help="a run folder written by glad-nb train --preset auto or glad-nb demo")
    p.add_argument('--dataset', required=True, help="the dataset the run trained on (folder, demo, mvtec, ...)")
    p.add_argument('--root', default=None, help="its root (optional for demo)")
    p.add_argument('--category', required=True)
    p.add_argument('--more', type=int, default=0, help="train this many more steps, then score again (0: only the checkpoints)")
    p.add_argument('--keep', type=Path, default=None, help="where the further training goes (default: a temporary folder)")
    p.add_argument('--threads', type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument('--json', type=Path, default=None, help="also write the table here")
    a = p.parse_args(argv)
    if not a.run.is_dir(): p.error(f"{a.run}: not a folder (expected a run folder written by glad-nb train or glad-nb demo)")
    if a.more < 0: p.error(f"--more {a.more}: expected 0 or more steps")
    if a.threads:
        import torch; torch.set_num_threads(a.threads)
    try: t = study(a.run, a.dataset, a.root, a.category, a.more, a.keep)
    except (FileNotFoundError, ValueError) as e: p.error(str(e))
    if a.json: a.json.write_text(t.to_json(orient='records', indent=1))
    print(t.round(4).to_string(index=False))
    return 0


if __name__ == '__main__':
    sys.exit(main())
