"""The README's examples run as written."""

import re
import warnings
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
CODE_BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
RUNNABLE_BLOCKS = CODE_BLOCKS


def test_readme_has_runnable_examples():
    assert len(RUNNABLE_BLOCKS) >= 4


@pytest.mark.slow
@pytest.mark.parametrize("code", RUNNABLE_BLOCKS, ids=lambda code: code.splitlines()[0][:40])
def test_readme_example_runs(code, capsys):
    # As a user runs them: any warning (a ConvergenceWarning included) fails.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        exec(compile(code, str(README), "exec"), {"__name__": "__readme__"})
    output = capsys.readouterr().out
    assert output.strip(), "each README example prints its result"
    if "early_stopping=True" in code:
        # The early-stopping example stops early.
        epochs_run, epochs_planned = map(int, re.search(r"(\d+) of (\d+) epochs", output).groups())
        assert epochs_run < epochs_planned
