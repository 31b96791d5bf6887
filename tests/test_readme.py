"""The README's examples run as written."""

import re
import warnings
from pathlib import Path

import pytest
from sklearn.exceptions import ConvergenceWarning

README = Path(__file__).resolve().parent.parent / "README.md"
CODE_BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
RUNNABLE_BLOCKS = CODE_BLOCKS


def test_readme_has_runnable_examples():
    assert len(RUNNABLE_BLOCKS) >= 4


@pytest.mark.slow
@pytest.mark.parametrize("code", RUNNABLE_BLOCKS, ids=lambda code: code.splitlines()[0][:40])
def test_readme_example_runs(code, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        exec(compile(code, str(README), "exec"), {"__name__": "__readme__"})
    assert capsys.readouterr().out.strip(), "each README example prints its result"
