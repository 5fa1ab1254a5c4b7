"""Live progress: plain lines off a terminal, a bar and spinners on one; ranges and missing values readable."""
from __future__ import annotations

import io
import time

from rich.console import Console

from fedsim.runtime.driver import run_experiment
from fedsim.runtime.progress import Progress


def test_plain_output_one_line_per_round_with_dash_for_missing(small_config, capsys):
    run_experiment(small_config(rounds=3, eval={"every": 2, "federation_every": 2}), progress=True)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("run directory: ")
    rounds = [line for line in lines if line.startswith("round ")]
    assert len(rounds) == 3
    assert "acc —  fed acc —" in rounds[0]  # not evaluated in round 1
    assert "acc mean " in rounds[1] and "[min " in rounds[1] and " max " in rounds[1] and "fed acc 0." in rounds[1]
    assert all("ETA" in line and "sim " in line for line in rounds)
    assert "nan" not in "\n".join(lines)
    assert any(line.startswith("starting workers") and "done in" in line for line in lines)


def test_terminal_bar_spinner_and_markup_free_text():
    buf = io.StringIO()
    show = Progress(2, console=Console(file=buf, force_terminal=True, width=160, color_system=None))
    assert show.live
    with show.phase("policy feder: setting up the nodes") as update:
        update("node0: GAN pre-training: epoch 3/120")
        time.sleep(0.2)
    show.start_rounds()
    show.round(0, {"a": {"test_acc": 0.5}, "b": {"test_acc": 0.7}}, 1000, 1000, 0.1, None, has_fed=False)
    show.round(1, {"a": {"test_acc": 0.6}, "b": {"test_acc": 0.8}}, 1000, 2000, 0.1, {"a": 0.7}, sim_s=1.25)
    show.close()
    out = buf.getvalue()
    assert "GAN pre-training: epoch 3/120" in out and "setting up the nodes: done in" in out
    assert "[min 0.500 max 0.700]" in out and "[min 0.600 max 0.800]" in out  # not eaten as markup
    assert "rounds" in out and "2/2" in out and "ETA" in out
    first = next(line for line in out.splitlines() if "[min 0.500" in line)
    second = next(line for line in out.splitlines() if "[min 0.600" in line)
    assert "fed acc" not in first and "fed acc 0.700" in second and "sim 1.25 s" in second
