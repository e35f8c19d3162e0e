#!/usr/bin/env python
"""Generate README.md from nbs/index.ipynb (nbdev-readme needs Quarto, which this project does not require).

Markdown cells are copied; code cells become ```python blocks (directive lines dropped; `#| hide` cells skipped).
  python tools/readme.py --write   # regenerate README.md
  python tools/readme.py --check   # exit 1 when README.md differs from what index.ipynb gives
"""
import sys, json
from pathlib import Path

root = Path(__file__).resolve().parent.parent
header = "<!-- generated from nbs/index.ipynb by tools/readme.py: edit the notebook, then `make readme` -->\n\n"

def render(nb_path=root/'nbs'/'index.ipynb')->str:
    nb = json.loads(Path(nb_path).read_text())
    parts = []
    for c in nb['cells']:
        src = ''.join(c['source'])
        lines = src.split('\n')
        directives = [l for l in lines if l.startswith('#|')]
        if any(d.split()[1:2] in (['hide'], ['exporti'], ['default_exp']) for d in directives): continue
        body = '\n'.join(l for l in lines if not l.startswith('#|')).strip('\n')
        if not body.strip(): continue
        parts.append(body if c['cell_type'] == 'markdown' else f"```python\n{body}\n```")
    return header + '\n\n'.join(parts) + '\n'

if __name__ == '__main__':
    text, readme = render(), root/'README.md'
    if '--write' in sys.argv: readme.write_text(text); print(f"wrote {readme}")
    elif '--check' in sys.argv:
        if not readme.exists() or readme.read_text() != text:
            print("README.md differs from nbs/index.ipynb: run `make readme` (or python tools/readme.py --write)"); sys.exit(1)
    else: sys.stdout.write(text)
