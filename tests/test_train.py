"Training integration checks that do not read well as documentation: a 2-process run through `accelerate launch`, bad inputs."
import os, subprocess, sys, textwrap
from pathlib import Path
import pytest, torch
from glad_nb.core import TrainConfig
from glad_nb.backbone import Backbone, PixelBackbone
from glad_nb.train import train_backbone, list_checkpoints

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
    bb = Backbone.load(tmp_path/'full'/'checkpoints'/'step_000004')
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
    assert r.step == 2 and (r.checkpoint/'training_state.pt').exists()
