"Training integration checks that do not read well as documentation: a 2-process run through `accelerate launch`, bad inputs."
import io, os, shutil, subprocess, sys, textwrap
from pathlib import Path
import pytest, torch
from glad_nb.core import TrainConfig
from glad_nb.backbone import PixelBackbone
from glad_nb.train import train_backbone
from glad_nb.checkpoints import (list_checkpoints, load_training_state, load_checkpoint, prune_checkpoints,
                                 STATE_JSON, STATE_TENSORS, LEGACY_STATE, CKPT_JSON, FROZEN)

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = textwrap.dedent("""
    import sys, torch
    from accelerate import Accelerator
    from glad_nb.core import TrainConfig
    from glad_nb.backbone import PixelBackbone
    from glad_nb.train import train_backbone
    acc = Accelerator(cpu=True)
    data = [torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(i)) * 2 - 1 for i in range(8)]
    cfg = TrainConfig(image_size=16, batch_size=2, steps=4, ckpt_every=2, lr=1e-3, synth_prob=0.5, grad_accum=2)
    bb = PixelBackbone.tiny()
    r = train_backbone(bb, data, cfg, sys.argv[1], accelerator=acc, progress=False, log_every=1,
                       max_steps=int(sys.argv[2]) if len(sys.argv) > 2 else None)
    s = sum(p.double().sum().item() for p in bb.unet.parameters())
    with open(f"{sys.argv[1]}.rank{acc.process_index}", "w") as f: f.write(f"{acc.num_processes} {r.step} {s!r}")
""")

def _launch(script, out, *args):
    env = {**os.environ, 'CUDA_VISIBLE_DEVICES': '', 'PYTHONPATH': f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           'OMP_NUM_THREADS': '1'}
    cmd = [sys.executable, '-m', 'accelerate.commands.launch', '--multi_gpu', '--num_processes', '2', '--num_machines', '1',
           '--mixed_precision', 'no', '--dynamo_backend', 'no', str(script), str(out), *map(str, args)]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    rows = [(str(k), *Path(f"{out}.rank{k}").read_text().split()) for k in (0, 1)]   # (rank, world, step, weight sum)
    for k in (0, 1): Path(f"{out}.rank{k}").unlink()
    return rows

def test_two_process_cpu_run_through_accelerate_launch(tmp_path):
    "2 CPU processes (gloo DDP): same weights on both ranks, checkpoints loadable, one loss row per step."
    script = tmp_path/'run.py'; script.write_text(SCRIPT)
    rows = _launch(script, tmp_path/'full')
    assert {x[1] for x in rows} == {'2'} and {x[2] for x in rows} == {'4'}
    assert rows[0][3] == rows[1][3], rows                     # DDP kept the replicas identical
    assert [s for s, _ in list_checkpoints(tmp_path/'full')] == [2, 4]
    bb = load_checkpoint(tmp_path/'full'/'checkpoints'/'step_000004')
    assert repr(sum(p.double().sum().item() for p in bb.unet.parameters())) == rows[0][3]
    log = (tmp_path/'full'/'loss.csv').read_text().splitlines()
    assert len(log) == 5 and log[0].startswith('step,loss')

@pytest.mark.slow
def test_two_process_resume_is_exact(tmp_path):
    "A 2-process run interrupted at step 3 (last checkpoint 2) and resumed ends with the uninterrupted run's weights."
    script = tmp_path/'run.py'; script.write_text(SCRIPT)
    rows = _launch(script, tmp_path/'full')
    _launch(script, tmp_path/'part', 3)
    rows2 = _launch(script, tmp_path/'part')
    assert rows2[0][3] == rows[0][3], (rows, rows2)

def test_bad_inputs(tmp_path):
    cfg = TrainConfig(image_size=16, batch_size=2, steps=1, ckpt_every=1)
    with pytest.raises(ValueError, match='dataset is empty'):
        train_backbone(PixelBackbone.tiny(), [], cfg, tmp_path/'a', progress=False)
    with pytest.raises(ValueError, match=r'\[-1, 1\]'):
        train_backbone(PixelBackbone.tiny(), [torch.full((3, 16, 16), 200.0)] * 2, cfg, tmp_path/'b', progress=False)
    with pytest.raises(TypeError, match="dict with 'image'"):
        train_backbone(PixelBackbone.tiny(), [{'pixels': torch.zeros(3, 16, 16)}] * 2, cfg, tmp_path/'c', progress=False)

def test_dict_items_and_resize(tmp_path):
    "Dataset dicts (as glad_nb.data returns) at another size are resized to cfg.image_size."
    data = [dict(image=torch.rand(3, 24, 24) * 2 - 1, label=0) for _ in range(4)]
    cfg = TrainConfig(image_size=16, batch_size=2, steps=2, ckpt_every=2, lr=1e-3)
    r = train_backbone(PixelBackbone.tiny(), data, cfg, tmp_path, progress=False, log_every=1)
    assert r.step == 2 and {p.name for p in r.checkpoint.iterdir()} >= {STATE_JSON, STATE_TENSORS}
    assert not (r.checkpoint/LEGACY_STATE).exists()

# ---------------------------------------------------------------- the training state is data, never code

class Planted:
    "A pickle that creates `marker` when it is loaded (what an attacker would plant)."
    def __init__(self, marker): self.marker = marker
    def __reduce__(self): return (io.open, (str(self.marker), 'w'))

DATA = [torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(i)) * 2 - 1 for i in range(4)]
CFG = TrainConfig(image_size=16, batch_size=2, steps=2, ckpt_every=1, lr=1e-3)

@pytest.fixture(scope='module')
def base_run(tmp_path_factory):
    "A finished 2-step run with checkpoints at steps 1 and 2."
    out = tmp_path_factory.mktemp('base')/'run'
    train_backbone(PixelBackbone.tiny(), DATA, CFG, out, progress=False, log_every=1)
    return out

def _fake_newest(base_run, tmp_path):
    "A copy of the run with a step_000003 that looks like a checkpoint (weights, marker) but no training state yet."
    out = tmp_path/'run'; shutil.copytree(base_run, out)
    fake = out/'checkpoints'/'step_000003'; shutil.copytree(out/'checkpoints'/'step_000002', fake)
    for n in (STATE_JSON, STATE_TENSORS): (fake/n).unlink()
    return out, fake

@pytest.mark.parametrize('name', [STATE_JSON, STATE_TENSORS, LEGACY_STATE])
def test_planted_pickle_is_never_run(base_run, tmp_path, name):
    "A malicious pickle as the newest checkpoint's state file: refused with a clear error, and its code never runs."
    out, fake = _fake_newest(base_run, tmp_path)
    if name != LEGACY_STATE: shutil.copy(out/'checkpoints'/'step_000002'/({STATE_JSON, STATE_TENSORS} - {name}).pop(), fake)
    marker = tmp_path/'pwned'
    torch.save(Planted(marker), fake/name)
    assert [s for s, _ in list_checkpoints(out)] == [1, 2, 3]          # it is the checkpoint a resume picks
    with pytest.raises(ValueError) as e:
        train_backbone(PixelBackbone.tiny(), DATA, CFG.replace(steps=4), out, progress=False)
    msg = str(e.value)
    assert msg.startswith(f"{fake/name}: training state not loaded") and 'cannot execute code' in msg
    assert f"Delete the checkpoint folder {fake}" in msg and 'new out_dir' in msg
    if name == LEGACY_STATE: assert 'loading a pickle can execute arbitrary code' in msg
    assert not marker.exists()                                         # nothing was executed ...
    shutil.copy(fake/name, tmp_path/'same.pt'); torch.load(tmp_path/'same.pt', weights_only=False)
    assert marker.exists()                                             # ... where unpickling would have

@pytest.mark.parametrize('name', [STATE_JSON, STATE_TENSORS])
def test_truncated_state_file(base_run, tmp_path, name):
    "A truncated state file is refused with the file named; the checkpoint before it holds no state (only the newest does), which is said too."
    out = tmp_path/'run'; shutil.copytree(base_run, out)
    last = out/'checkpoints'/'step_000002'
    b = (last/name).read_bytes(); (last/name).write_bytes(b[:len(b) // 2])
    with pytest.raises(ValueError, match=r'training state not loaded: it is corrupt, truncated') as e:
        train_backbone(PixelBackbone.tiny(), DATA, CFG.replace(steps=3), out, progress=False)
    assert str(e.value).startswith(f"{last/name}:")
    assert 'keeps one with the newest checkpoint only' in str(e.value)
    shutil.rmtree(last)
    with pytest.raises(ValueError, match=r"step_000001: it holds no training state .* Start the run fresh in a new out_dir"):
        train_backbone(PixelBackbone.tiny(), DATA, CFG.replace(steps=3), out, progress=False)
    assert load_checkpoint(out/'checkpoints'/'step_000001').unet is not None      # its weights stay usable

def test_state_file_of_another_kind(base_run, tmp_path):
    "Valid JSON of another format, a missing tensor file and a dangling tensor name are refused too."
    out = tmp_path/'run'; shutil.copytree(base_run, out)
    ck = out/'checkpoints'/'step_000002'
    (ck/STATE_JSON).write_text('{"step": 2}')
    with pytest.raises(ValueError, match=r"its format is None, not 'glad_nb.training_state/1'"): load_training_state(ck)
    shutil.copy(base_run/'checkpoints'/'step_000002'/STATE_JSON, ck)
    (ck/STATE_TENSORS).rename(tmp_path/'t')
    with pytest.raises(ValueError, match=r'training_state.safetensors: training state not loaded: the file is missing'): load_training_state(ck)
    shutil.copy(tmp_path/'t', ck/STATE_TENSORS)
    assert load_training_state(ck)['step'] == 2
    from safetensors.torch import save_file
    save_file({'x': torch.zeros(1)}, ck/STATE_TENSORS)
    with pytest.raises(ValueError, match=r"it names a tensor 'optimizer\.state\.0\.\w+' that is not in training_state.safetensors"):
        load_training_state(ck)
    shutil.copy(base_run/'checkpoints'/'step_000002'/STATE_TENSORS, ck)
    (ck/STATE_JSON).write_text('{"format": "glad_nb.training_state/1", "state": {"__items__": 5}}')
    with pytest.raises(ValueError, match=r"training_state.json: training state not loaded: it is corrupt \(TypeError"): load_training_state(ck)

# ---------------------------------------------------------------- checkpoints that fit on a disk

def _sizes(out):
    return {s: sum(f.stat().st_size for f in p.rglob('*') if f.is_file()) for s, p in list_checkpoints(out)}

def test_only_the_newest_checkpoint_holds_a_state(base_run):
    "Older checkpoints: the UNet only, a third of the newest (which adds AdamW's two moments); frozen parts once."
    ck = dict(list_checkpoints(base_run))
    assert sorted(p.name for p in ck[1].iterdir()) == [CKPT_JSON, 'unet']
    assert {STATE_JSON, STATE_TENSORS} <= {p.name for p in ck[2].iterdir()}
    sz = _sizes(base_run)
    assert 0.3 < sz[1] / sz[2] < 0.36, sz
    assert (base_run/FROZEN/'glad_backbone.json').exists() and not (base_run/FROZEN/'unet').exists()

def test_an_earlier_versions_run_resumes_and_is_pruned(tmp_path):
    "Checkpoints in the old layout (a whole backbone + state each) resume exactly; their states are pruned, their weights stay listed and loadable."
    cfg = CFG.replace(steps=3)
    whole = PixelBackbone.tiny(); train_backbone(whole, DATA, cfg, tmp_path/'whole', progress=False)
    out = tmp_path/'old'; train_backbone(PixelBackbone.tiny(), DATA, cfg, out, progress=False, max_steps=2)
    ck1, ck2 = (p for _, p in list_checkpoints(out))
    shutil.copy(ck2/STATE_JSON, ck1); shutil.copy(ck2/STATE_TENSORS, ck1)          # as the old layout had: a state in each ...
    for ck in (ck1, ck2):                                                           # ... beside a whole backbone, no marker
        load_checkpoint(ck).write_to(ck); (ck/CKPT_JSON).unlink()
    shutil.rmtree(out/FROZEN)
    bb = PixelBackbone.tiny(); r = train_backbone(bb, DATA, cfg, out, progress=False, log_every=1)
    assert [s for s, _ in r.losses] == [3]
    assert all(torch.equal(a, b) for a, b in zip(bb.unet.state_dict().values(), whole.unet.state_dict().values()))
    cks = list_checkpoints(out)
    assert [s for s, _ in cks] == [1, 2, 3] and [(p/STATE_JSON).exists() for _, p in cks] == [False, False, True]
    assert all((p/CKPT_JSON).exists() for _, p in cks) and (out/FROZEN).is_dir()
    assert type(load_checkpoint(ck1)) is PixelBackbone

def test_retention_deletes_only_glad_nb_checkpoints(tmp_path):
    "keep_checkpoints=1: the newest and the last; a look-alike folder without glad_nb's marker or state format stays."
    out = tmp_path/'run'
    train_backbone(PixelBackbone.tiny(), DATA, CFG.replace(steps=2, keep_checkpoints=1), out, progress=False, max_steps=1)
    (out/'checkpoints'/'step_000000').mkdir(); (out/'checkpoints'/'step_000000'/STATE_JSON).write_text('{"format": "mine"}')
    train_backbone(PixelBackbone.tiny(), DATA, CFG.replace(steps=2, keep_checkpoints=1), out, progress=False)
    assert [s for s, _ in list_checkpoints(out)] == [0, 2]
    assert sorted(p.name for p in (out/'checkpoints').iterdir()) == ['step_000000', 'step_000002']
    assert prune_checkpoints(out, keep=1) == []

def test_checkpoint_benchmark_runs(tmp_path, capsys):
    "benchmarks/checkpoints.py: the SD-1.4 figures from parameter counts, and the tiny measurement agrees with them."
    import importlib.util
    spec = importlib.util.spec_from_file_location('bench_ckpt', ROOT/'benchmarks'/'checkpoints.py')
    m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
    res = m.main(['--dry-run'])
    assert res['sd14']['unet'] == 859_520_964
    b = res['sd14_bytes']
    assert b['older'] == 4 * 859_520_964 and b['latest'] == 3 * b['older'] and b['before_total'] == 8 * b['before_ckpt']
    assert 'SD 1.4' in capsys.readouterr().out
    t = m.measure_tiny(tmp_path)
    assert 0.3 < t['older'] / t['latest'] < 0.36 and t['before_ckpt'] > t['latest'] + t['frozen'] * 0.9
    assert abs(t['older'] - 4 * t['unet_params']) < 0.05 * t['older']    # + the safetensors header and config.json

def test_pruning_never_follows_a_link_out_of_the_run(tmp_path):
    "A checkpoint folder that is a symlink to somewhere else is never deleted, even with glad_nb's marker inside."
    import json
    user = tmp_path/'user_data'; user.mkdir(); (user/'keep.png').write_bytes(b'x')
    (user/CKPT_JSON).write_text(json.dumps(dict(format='glad_nb.checkpoint/1', step=1)))
    root = tmp_path/'run'/'checkpoints'; root.mkdir(parents=True)
    (root/'step_000001').symlink_to(user, target_is_directory=True)
    for s in (2, 3):
        d = root/f'step_{s:06d}'; d.mkdir(); (d/CKPT_JSON).write_text(json.dumps(dict(format='glad_nb.checkpoint/1', step=s)))
        (d/STATE_JSON).write_text('{}'); (d/STATE_TENSORS).write_bytes(b'')
    prune_checkpoints(tmp_path/'run', keep=1)
    assert (user/'keep.png').exists() and (user/CKPT_JSON).exists() and (root/'step_000001').is_symlink()
    assert not (root/'step_000002').exists() and (root/'step_000003').exists()
