"Packaging checks that do not read well as documentation: fresh-process imports and the wheel's contents."
import subprocess, sys, zipfile
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
MODULES = sorted(p.stem for p in (ROOT/'glad_nb').glob('*.py') if not p.stem.startswith('__'))

@pytest.mark.parametrize('mod', MODULES)
def test_module_imports_in_fresh_process(mod):
    r = subprocess.run([sys.executable, '-c', f'import glad_nb.{mod}'], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, f"import glad_nb.{mod} failed:\n{r.stderr[-2000:]}"

def test_wheel_holds_the_package_only(tmp_path):
    r = subprocess.run([sys.executable, '-m', 'pip', 'wheel', '.', '--no-deps', '--no-build-isolation', '-q', '-w', str(tmp_path)],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    whl, = tmp_path.glob('glad_nb-*.whl')
    names = zipfile.ZipFile(whl).namelist()
    tops = {n.split('/')[0] for n in names}
    assert tops <= {'glad_nb', next(t for t in tops if t.endswith('.dist-info'))}, tops
    assert 'glad_nb/core.py' in names
    assert not any(n.endswith(('.ipynb', '.png', '.safetensors', '.csv')) for n in names), names
    ep = next(n for n in names if n.endswith('entry_points.txt'))
    assert 'glad-nb = glad_nb.cli:main' in zipfile.ZipFile(whl).read(ep).decode()
