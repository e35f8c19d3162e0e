import os, pytest, torch
from glad_nb.core import ONEDNN   # importing core applies GLAD_NB_ONEDNN=0 (make test-kernels) to every test

def pytest_report_header(config):
    return f"glad_nb kernels: oneDNN {'on' if ONEDNN else 'off'}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}"

def pytest_collection_modifyitems(config, items):
    run_slow = os.environ.get('RUN_SLOW') == '1'
    for item in items:
        if 'slow' in item.keywords and not run_slow:
            item.add_marker(pytest.mark.skip(reason='slow: set RUN_SLOW=1 to run'))
        if 'cuda' in item.keywords and not torch.cuda.is_available():
            item.add_marker(pytest.mark.skip(reason='needs a CUDA GPU'))

# -- tiny real-layout inputs shared by the CLI tests (tests/tiny.py writes them as the real ones are laid out)
import shutil

@pytest.fixture(scope='session')
def tiny_inputs(tmp_path_factory):
    "A tiny SD 1.4 folder, a DINO checkpoint in the original format, and a converted-VisA pcb1 dataset (paper preset: DINO epoch 7, pixel term, reverse map)."
    from tiny import write_sd_folder, write_dino_checkpoint, write_layout_dataset
    d = tmp_path_factory.mktemp('inputs')
    return dict(sd=write_sd_folder(d/'sd14'), dino=write_dino_checkpoint(d/'dino'/'dino_vit_tiny.pth'),
                root=write_layout_dataset(d/'visa', 'pcb1'), dir=d)

SMALL = ['--set', 'image_size=32', 'feature_size=32']

def ctrl_c_default():
    "`preexec_fn` of a child that must take Ctrl-C as in a terminal: a pytest-xdist worker ignores SIGINT, and its children would inherit that."
    import signal
    signal.signal(signal.SIGINT, signal.SIG_DFL)

@pytest.fixture(scope='session')
def trained_run(tiny_inputs, tmp_path_factory):
    "`glad-nb train` of the tiny latent model for 4 steps (checkpoints at 2 and 4); returns the run folder."
    from glad_nb.cli import main
    run = tmp_path_factory.mktemp('runs')/'visa'
    i = tiny_inputs
    rc = main(['train', '--dataset', 'visa', '--root', str(i['root']), '--category', 'pcb1', '--weights', str(i['sd']),
               '--dino', str(i['dino']), '--out', str(run), '--steps', '4', '--batch-size', '2', '--no-progress',
               '--set', 'image_size=32', 'feature_size=32', 'ckpt_every=2'])
    assert rc == 0
    return run

@pytest.fixture
def run_copy(trained_run, tmp_path):
    "A private copy of the trained run (tests that change it do not disturb the others)."
    dst = tmp_path/'run'; shutil.copytree(trained_run, dst); return dst
