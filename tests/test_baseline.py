"""The memory-bank baseline end to end, beside a paper-preset GLAD with a DINO checkpoint: what it drops, how it is written,
read back, re-scored, reported and explored; batch-size independence; bad inputs."""
import numpy as np, pytest, torch
from tiny import write_dino_checkpoint, write_layout_dataset

@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    "A GLAD with the paper preset of VisA pcb1 (reverse direction, pixel term) at 32 px, a tiny DINO, a converted-VisA set."
    from glad_nb.core import preset
    from glad_nb.data import MVTecDataset
    from glad_nb.pipeline import GLAD
    from glad_nb.features import load_dino
    from glad_nb.backbone import PixelBackbone
    d = tmp_path_factory.mktemp('bank')
    root = write_layout_dataset(d/'visa', 'pcb1', n_train=6, n_good=3, n_bad=3)
    cfg = preset('visa', 'pcb1').replace(image_size=32, feature_size=32, score_topk=20)
    assert cfg.reverse and cfg.pixel_weight > 0 and cfg.tuned_on_test
    ext = load_dino(write_dino_checkpoint(d/'dino.pth', depth=12, dim=64), layers=cfg.layers, input_size=32)
    glad = GLAD(PixelBackbone(32, channels=(8, 16), attention=False, seed=0), ext, cfg, device='cpu')
    tr, te = (MVTecDataset(root, 'pcb1', s, image_size=32) for s in ('train', 'test'))
    return glad, tr, te, d

def test_the_baseline_stands_beside_a_paper_preset_and_drops_what_needs_a_reconstruction(setup):
    from glad_nb.baseline import baseline_result
    glad, tr, te, _ = setup
    r = baseline_result(glad, tr, te, batch_size=4)
    p = r.protocol
    assert p['method'] == 'memory_bank' and p['tuned_on_test'] is False and p['beside'] == dict(preset='paper', tuned_on_test=True)
    assert p['config']['reverse'] is False and p['config']['pixel_weight'] == 0.0
    assert p['not_applicable']['reverse'] is True and p['not_applicable']['pixel_weight'] == glad.cfg.pixel_weight
    assert (p['sigma'], p['score_topk'], p['map_size'], p['layers']) == (glad.cfg.sigma, 20, 32, list(glad.cfg.layers))
    assert p['bank']['bank_size'] == {str(l): 6 * 16 for l in glad.cfg.layers}       # 6 images x (32/8)² patches, every layer
    assert set(r.per_image.columns) == {'path', 'defect', 'label', 'score'} and len(r.per_image) == len(te)
    assert all(0 <= r.metrics[k] <= 1 for k in ('image_auroc', 'pixel_auroc', 'aupro'))

def test_batch_size_does_not_change_distances(setup):
    from glad_nb.baseline import MemoryBank, bank_cache
    glad, tr, te, _ = setup
    a = bank_cache(MemoryBank(glad.extractor, device='cpu').fit(tr, batch_size=1), te, 32, batch_size=1)
    b = bank_cache(MemoryBank(glad.extractor, device='cpu', chunk=7).fit(tr, batch_size=5), te, 32, batch_size=4)
    for x, y in zip(a.fwd, b.fwd): torch.testing.assert_close(x, y, atol=1e-5, rtol=0)

def test_a_greedy_coreset_is_recorded_and_reproducible(setup):
    from glad_nb.baseline import baseline_result
    glad, tr, te, _ = setup
    r1, r2 = (baseline_result(glad, tr, te, coreset='greedy', coreset_size=10, seed=3) for _ in range(2))
    assert r1.protocol['bank']['bank_size'] == {str(l): 10 for l in glad.cfg.layers}
    assert r1.protocol['bank']['coreset'] == 'greedy' and r1.protocol['bank']['seed'] == 3
    assert np.array_equal(r1.per_image.score.values, r2.per_image.score.values)

def test_written_result_reads_back_rescores_reports_and_explores(setup):
    from glad_nb.baseline import baseline_result
    from glad_nb.results import write_result, read_result, score_cache
    from glad_nb.score import Rescorer
    from glad_nb.report import write_report
    from glad_nb.core import GLADConfig
    glad, tr, te, d = setup
    r = baseline_result(glad, tr, te)
    folder = write_result(r, d/'run'/'pcb1'/'baseline')
    from safetensors import safe_open
    with safe_open(str(folder/'cache.safetensors'), 'pt') as f: keys = set(f.keys())
    assert 'images' in keys and 'fwd.0' in keys and not keys & {'recons', 'rev.0', 'steps', 'ads_scores', 'fusion'}
    back = read_result(folder)
    assert back.cache.recons is None and back.cache.rev is None and back.cache.steps is None and back.method == 'memory_bank'
    torch.testing.assert_close(back.maps, r.maps)
    cfg = GLADConfig.from_dict(back.protocol['config'])
    for over in ({}, dict(sigma=1.0, score_topk=0)):
        m, s = score_cache(back.cache, cfg.replace(**over))
        torch.testing.assert_close(Rescorer(back.cache)(cfg.replace(**over))[1], s, atol=1e-4 * float(s.abs().max()), rtol=0)
    html = write_report({'pcb1': back}, d/'report.html', title='bank only').read_text()   # a report of the bank alone
    assert html.count('Plotly.newPlot(') == 2 and 'reconstruction' not in html.split('most anomalous')[1]

def test_the_dashboard_shows_the_bank_beside_glad(setup):
    from glad_nb.baseline import baseline_result
    from glad_nb.results import write_result
    from glad_nb.results import load_run
    from glad_nb.dashboard import run_explorer
    glad, tr, te, d = setup
    res = glad.evaluate(te, batch_size=3, progress=False)
    bank = baseline_result(glad, tr, te)
    write_result(res, d/'run2'/'pcb1'); write_result(bank, d/'run2'/'pcb1'/'baseline')
    runs = load_run(d/'run2')
    assert list(runs) == ['pcb1'] and runs['pcb1'].baseline['image_auroc'] == pytest.approx(bank.metrics['image_auroc'])
    rx = run_explorer(d/'run2', threads=1)
    assert rx.table.loc['image_auroc', 'memory bank'] == pytest.approx(bank.metrics['image_auroc'])
    rx.sigma.value = 1.0                                    # the bank's column is its own protocol's: it does not move
    assert rx.table.loc['image_auroc', 'memory bank'] == pytest.approx(bank.metrics['image_auroc'])

def test_bad_inputs(setup):
    from glad_nb.baseline import MemoryBank, baseline_result
    glad, tr, te, _ = setup
    with pytest.raises(ValueError, match='needs normal images'): MemoryBank(glad.extractor, device='cpu').fit(torch.zeros(0, 3, 32, 32))
    with pytest.raises(ValueError, match='expected >= 1'): MemoryBank(glad.extractor, 'greedy', coreset_size=0)
    with pytest.raises(ValueError, match='0 < ratio <= 1'): MemoryBank(glad.extractor, 'random', ratio=1.5)
    with pytest.raises(ValueError, match="expected one of"): baseline_result(glad, tr, te, coreset='kcenter')
