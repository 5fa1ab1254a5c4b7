"""`fedsim reproduce`: verdicts come from the numbers, and a (tiny) comparison writes its report."""
from __future__ import annotations

import math

import pytest

from fedsim.cli import main
from fedsim.reproduce import fedrewind, report
from fedsim.reproduce.runner import run_jobs


def test_verdicts_are_computed_from_the_numbers():
    yes = report.greater("a > b", [0.5, 0.6, 0.7], [0.4, 0.65, 0.5])
    assert yes.holds and "higher on 2/3 seeds" in yes.evidence
    no = report.greater("a > b", [0.5, 0.6, 0.7], [0.55, 0.65, 0.5])   # higher mean, but 1 win of 3
    assert no.holds is False and no.verdict == "**does not hold**"
    assert report.greater("a > b", [math.nan], [0.1]).holds is None
    assert report.within("a ~ b", [0.70, 0.72], [0.72, 0.73], 0.03).holds
    assert not report.within("a ~ b", [0.60, 0.62], [0.72, 0.73], 0.03).holds
    assert report.within("a ~ b", [0.80], [0.72], 0.03).holds       # above the reference is within
    assert report.closer_to("walk nearer chance", 0.5, [0.52, 0.47], [0.60, 0.41]).holds
    assert report.fmt([0.1, 0.2, 0.3]) == "0.200 ± 0.100 (0.100, 0.200, 0.300)"


def test_a_tiny_fedrewind_comparison_writes_tables_claims_and_plot(tmp_path):
    todo, settings = fedrewind.jobs([0, 1], quick=True, gpu=False)
    keep = ("FedRewind", "model exchange")
    todo = [j for j in todo if j.method in keep]
    for j in todo:  # the real pipeline at a test's budget
        j.config.update(rounds=2)
        j.config["topology"]["n"] = 4
        j.config["data"].update(samples_per_node=24, test_samples=10)
        j.config["train"]["epochs"] = 2
    said = []
    records = run_jobs(todo, tmp_path, 2, said.append)
    assert all(r.ok for r in records) and len(said) == 4
    rec = records[0]
    assert sorted(rec.per_round("fed_acc")) == [0, 1] and rec.bytes_per_round("tag:req:rewind") > 0
    md = fedrewind.analyse(records, settings, tmp_path, {})
    assert (tmp_path / "accuracy.png").stat().st_size > 1000 and (tmp_path / "runs.jsonl").is_file()
    claim = next(line for line in md.splitlines() if line.startswith("| FedRewind > model exchange (final FA)"))
    assert ("**holds**" in claim) != ("**does not hold**" in claim)
    assert "n/a (runs missing)" in md  # the methods left out of this test are reported as missing, not invented


@pytest.mark.parametrize("argv, key", [
    (["reproduce", "fedrewind", "--seeds", "-1"], "--seeds"),
    (["reproduce", "fedrewind", "--jobs", "0"], "--jobs"),
])
def test_bad_reproduce_arguments_exit_2(argv, key, capsys):
    assert main(argv) == 2
    assert key in capsys.readouterr().err
