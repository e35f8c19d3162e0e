"""Does the label-free selection track the test? Every candidate's validation criterion beside its test figures.

For one demo category and seed, train the demo recipe with the given training overrides (e.g. `t_max`), run the
label-free selection on its held-out normal images (`glad_nb.select.select_settings`, the same call as
`GLAD.fit_select`), then score every candidate on the real test set too (`score_candidates(by_kind=False)`, pooled
as the test metrics are reported) and the memory bank on the same features. One CSV per (category, seed, tag):
the selection table plus `test_*` and `bank_*` columns. Models are kept, so a rerun only re-scores.

    python benchmarks/select_study.py --category grass --seed 1 --tag T1000 --set t_max=1000 --out runs/select-study
    python benchmarks/select_study.py --category grass --seed 1 --tag T150 --set t_max=150 --out runs/select-study
    python benchmarks/select_study.py --summary runs/select-study --tags T150,T1000 --seed 1

`--auto` replays what `--preset auto` does with the study's saved models of the given tags: the selection on each
(one noise draw, as `GLAD.fit_select`), the winner over all of them (`pick_training`, with its tie rule), then the
winner tested with `--draws` noise draws per image (the CPU recipe's auto uses `AUTO_DRAWS`), the bank beside it:

    python benchmarks/select_study.py --auto --category grass --seed 1 --tags T150,T1000 --t-max 150,1000 --draws 4 --out runs/select-study

`--auto --fuse` also tests, beside that pick, the average of every candidate within a band of the best validation
criterion (0.005, the tie, and 0.01), each candidate's maps z-scored by its maps on the held-out normal images, and
reports the average's own validation criterion (appended to out/fuse-<seed>-d<draws>.csv):

    python benchmarks/select_study.py --auto --fuse --category gravel --seed 1 --tags T150,T1000 --t-max 150,1000 --draws 4 --out runs/select-study

`--summary` pools the CSVs of the given tags per category (one model per tag, the same held-out images), picks the
best validation criterion over all of them (as `pick_training` does, without its tie rule) and prints the test
figures of that pick beside the bank's and the best candidate's in hindsight. Demo data comes from
`$GLAD_NB_DEMO` (or data/demo); never use the seed the demo reports (0) to choose anything.
"""
from __future__ import annotations
import argparse, glob, json, sys, time
from pathlib import Path


def study(category:str, seed:int, tag:str, overrides:dict, out:Path)->Path:
    "Train (or load), select, score every candidate on the test set and the bank; write out/<category>-<seed>-<tag>.csv."
    import torch
    from torch.utils.data import Subset
    from glad_nb.core import seed_everything
    from glad_nb.demo import make_demo_dataset
    from glad_nb.data import DemoDataset
    from glad_nb.pipeline import GLAD, MODEL_JSON, demo_glad, calibrate_tau
    from glad_nb.baseline import baseline_result
    from glad_nb import select as S
    torch.set_num_threads(1); seed_everything(seed)
    root = make_demo_dataset(seed=seed)
    tr, te = DemoDataset(root, category, 'train', image_size=64), DemoDataset(root, category, 'test', image_size=64)
    mdir, t0 = out/'models'/f'{category}-{seed}-{tag}', time.time()
    glad, tc = demo_glad(category, seed=seed, auto=True); tc = tc.replace(**overrides)
    if (mdir/MODEL_JSON).exists(): glad = GLAD.load(mdir)
    else:
        glad.fit_calibrated(tr, tc, out/'train'/f'{category}-{seed}-{tag}', tau=False, progress=False)
        glad.save(mdir)
    held = glad.thresholds.holdout['indices']
    _, df = S.select_settings(glad, Subset(tr, held), tau_fn=calibrate_tau, t_max=tc.t_max)
    test = S.score_candidates(glad, te, df[list(S.SETTINGS)].to_dict('records'), by_kind=False)
    df = df.join(test[list(S.CRITERION) + ['criterion']].add_prefix('test_'))
    bank = baseline_result(glad, Subset(tr, [i for i in range(len(tr)) if i not in set(held)]), te).metrics
    for k in S.CRITERION: df['bank_' + k] = bank[k]
    f = out/f'{category}-{seed}-{tag}.csv'; df.to_csv(f, index=False)
    print(f"{category} seed {seed} {tag}: {len(df)} candidates, {time.time() - t0:.0f} s -> {f}", flush=True)
    return f


def summary(folder:Path, tags:list, seed:int):   # -> pandas DataFrame
    "Per category: the pick over every tag's candidates (best criterion), its test figures, the bank's, the hindsight best."
    import pandas as pd
    rows = []
    for cat in ('brick', 'grass', 'gravel', 'coffee'):
        ds = [pd.read_csv(f).assign(tag=t) for t in tags for f in glob.glob(str(folder/f'{cat}-{seed}-{t}.csv'))]
        if not ds: continue
        d = pd.concat(ds, ignore_index=True); w = d.loc[d.criterion.idxmax()]; b = d.loc[d.test_criterion.idxmax()]
        rows.append(dict(category=cat, pick=f"{w.tag} T0 {w.T0:.0f} tau {w.tau:.3g} v {w.pixel_weight:g} sigma {w.sigma:g}",
                         image_auroc=w.test_image_auroc, pixel_auroc=w.test_pixel_auroc, aupro=w.test_aupro,
                         bank_image_auroc=w.bank_image_auroc, bank_pixel_auroc=w.bank_pixel_auroc, bank_aupro=w.bank_aupro,
                         hindsight=f"{b.tag} T0 {b.T0:.0f}: {b.test_criterion:.3f}"))
    t = pd.DataFrame(rows).set_index('category')
    t.loc['mean'] = t.mean(numeric_only=True)
    return t


def replay(category:str, seed:int, tags:list, t_max:list, out:Path, select_draws:int=1)->tuple:
    "What --preset auto does on the study's saved models of `tags`: (train set, test set, models, `pick_training` table, seconds)."
    import torch
    from torch.utils.data import Subset
    from glad_nb.demo import make_demo_dataset
    from glad_nb.data import DemoDataset
    from glad_nb.pipeline import GLAD, calibrate_tau
    from glad_nb import select as S
    torch.set_num_threads(1)
    root, t0 = make_demo_dataset(seed=seed), time.time()
    tr, te = DemoDataset(root, category, 'train', image_size=64), DemoDataset(root, category, 'test', image_size=64)
    tables, models = [], []
    for tag, tm in zip(tags, t_max, strict=True):   # each model's training noise levels (the T0 candidates stop there)
        g = GLAD.load(out/'models'/f'{category}-{seed}-{tag}')
        _, df = S.select_settings(g, Subset(tr, g.thresholds.holdout['indices']), tau_fn=calibrate_tau, t_max=tm, draws=select_draws)
        tables.append(({'t_max': tm}, df)); models.append(g)
    return tr, te, models, S.pick_training(tables, S.default_settings(models[0].cfg)), time.time() - t0


def auto(category:str, seed:int, tags:list, t_max:list, draws:int, out:Path, select_draws:int=1)->dict:
    "The auto pick over the study's saved models of `tags`, tested with `draws` draws; one row (also appended to out/auto-<seed>-d<draws>-s<select draws>.csv)."
    import pandas as pd
    from glad_nb import select as S
    tr, te, models, table, sel_s = replay(category, seed, tags, t_max, out, select_draws)
    w = table[table.winner].iloc[0]
    g = models[int(w.model)]; g.cfg = g.cfg.replace(draws=draws, **{k: type(getattr(g.cfg, k))(w[k]) for k in S.SETTINGS})
    t1 = time.time(); m = g.evaluate(te, batch_size=16, progress=False).metrics
    bank = pd.read_csv(out/f'{category}-{seed}-{tags[0]}.csv').iloc[0]
    row = dict(category=category, seed=seed, draws=draws, select_draws=select_draws, t_max=int(w.t_max), T0=int(w.T0), tau=float(w.tau), v=float(w.pixel_weight),
               sigma=float(w.sigma), **{k: m[k] for k in S.CRITERION}, **{'bank_' + k: float(bank['bank_' + k]) for k in S.CRITERION},
               select_s=sel_s, test_s=time.time() - t1)
    f = out/f'auto-{seed}-d{draws}-s{select_draws}.csv'
    pd.DataFrame([row]).to_csv(f, mode='a', header=not f.exists(), index=False)
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}), flush=True)
    return row


def _by_kind(scores, labels, maps, masks, defects)->float:
    "The selection's criterion on a validation set: the mean over anomaly kinds of `select.kind_criterion`."
    import numpy as np
    from glad_nb import select as S
    return float(np.mean(list(S.kind_criterion(scores, labels.numpy(), maps, masks, defects).values())))


def fuse(category:str, seed:int, tags:list, t_max:list, draws:int, out:Path, bands:tuple=(0.005, 0.01))->list:
    "Replay --auto, then test the average of the candidates within each band of the best validation criterion, each z-scored on its held-out normal maps."
    import torch, pandas as pd
    from torch.utils.data import Subset
    from glad_nb.score import Rescorer, image_score
    from glad_nb.metrics import evaluate_category
    from glad_nb import select as S
    t0 = time.time()
    tr, te, models, table, _ = replay(category, seed, tags, t_max, out)
    held = Subset(tr, models[0].thresholds.holdout['indices'])
    val = S.ValidationSet(held, S.SELECT_KINDS, 1, models[0].cfg.seed)   # the selection's own validation set
    near = table[table.criterion >= table.criterion.max() - max(bands)]
    z = {}   # candidate row -> (validation z-maps, test z-maps), each z-scored by its held-out normal maps
    for key, grp in near.groupby(['model', 'T0', 't_min', 'tau']):
        g = models[int(key[0])]; rc = g.cfg.replace(T0=int(key[1]), t_min=int(key[2]), tau=float(key[3]))
        Rv, Rn, Rt = (Rescorer(g.build_cache(d, progress=False, cfg=rc.replace(draws=n))) for d, n in ((val, 1), (held, draws), (te, draws)))
        vnorm = Rv.cache.labels == 0
        for i, c in grp.iterrows():
            sc = rc.replace(pixel_weight=float(c.pixel_weight), sigma=float(c.sigma))
            mv, mn, mt = Rv(sc)[0], Rn(sc)[0], Rt(sc)[0]
            if min(mv[vnorm].std(), mn.std()) <= 0: raise ValueError(
                f"{category} seed {seed}, candidate {', '.join(f'{k} {c[k]:g}' for k in S.SETTINGS)}: constant maps on the held-out normal images, nothing to z-score by")
            z[i] = ((mv - mv[vnorm].mean()) / mv[vnorm].std(), (mt - mn.mean()) / mn.std())
    ytest, yval = Rt.cache.labels, Rv.cache.labels
    bank = pd.read_csv(out/f'{category}-{seed}-{tags[0]}.csv').iloc[0]
    topk, rows, f = models[0].cfg.score_topk, [], out/f'fuse-{seed}-d{draws}.csv'
    def measure(idx, name):
        mv = torch.stack([z[i][0] for i in idx]).mean(0); mt = torch.stack([z[i][1] for i in idx]).mean(0)
        m = evaluate_category(image_score(mt, topk).numpy(), ytest.numpy(), mt, Rt.cache.masks)
        crit = _by_kind(image_score(mv, topk).numpy(), yval, mv, Rv.cache.masks, Rv.cache.defects)
        return dict(category=category, seed=seed, rule=name, n=len(idx), reconstructions=len({tuple(table.loc[i, ['model', 'T0', 't_min', 'tau']]) for i in idx}),
                    members=';'.join(f"t{table.t_max[i]:.0f}/T0 {table.T0[i]:.0f}/tau {table.tau[i]:.3g}/v {table.pixel_weight[i]:g}/s {table.sigma[i]:g}" for i in idx),
                    val_criterion=crit, **{k: m[k] for k in S.CRITERION}, **{'bank_' + k: float(bank['bank_' + k]) for k in S.CRITERION})
    rows.append(measure([table.index[table.winner][0]], 'pick'))
    for b in bands: rows.append(measure(list(table.index[table.criterion >= table.criterion.max() - b]), f'fuse {b:g}'))
    for r in rows: r['seconds'] = time.time() - t0
    pd.DataFrame(rows).to_csv(f, mode='a', header=not f.exists(), index=False)
    for r in rows: print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in r.items() if k != 'members'}), flush=True)
    return rows


def main(argv=None)->int:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--category'); p.add_argument('--seed', type=int, default=1); p.add_argument('--tag', default='default')
    p.add_argument('--set', nargs='*', default=[], help='TrainConfig overrides, key=value (JSON values)')
    p.add_argument('--out', default='runs/select-study'); p.add_argument('--summary'); p.add_argument('--tags', default='default')
    p.add_argument('--auto', action='store_true', help="replay --preset auto on the saved models of --tags")
    p.add_argument('--fuse', action='store_true', help="with --auto: also test the average of the near-tied candidates")
    p.add_argument('--draws', type=int, default=1, help="with --auto: noise draws per image when testing the pick")
    p.add_argument('--select-draws', type=int, default=1, help="with --auto: noise draws per image while selecting (auto: 1)")
    p.add_argument('--t-max', default='', help="with --auto: each tag's training t_max, in the order of --tags")
    a = p.parse_args(argv)
    if a.summary:
        import pandas as pd
        with pd.option_context('display.width', 200): print(summary(Path(a.summary), a.tags.split(','), a.seed).round(3).to_string())
        return 0
    if not a.category: p.error('--category is needed (or --summary FOLDER)')
    over = {}
    for kv in a.set:
        k, _, v = kv.partition('=')
        try: over[k] = json.loads(v)
        except json.JSONDecodeError: p.error(f"--set {kv}: expected key=<JSON value>")
    if a.auto and (len(a.t_max.split(',')) != len(a.tags.split(',')) or not all(t.isdigit() for t in a.t_max.split(','))):
        p.error(f"--t-max {a.t_max!r}: expected one integer per tag of --tags {a.tags!r}, e.g. --t-max 150,1000")
    if a.fuse and (not a.auto or a.select_draws != 1):
        p.error("--fuse: expected with --auto and without --select-draws (the fused replay selects with one draw, as --preset auto)")
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    if a.auto:
        args = (a.category, a.seed, a.tags.split(','), [int(t) for t in a.t_max.split(',')], a.draws, out)
        fuse(*args) if a.fuse else auto(*args, a.select_draws)
        return 0
    study(a.category, a.seed, a.tag, over, out)
    return 0


if __name__ == '__main__': sys.exit(main())
