"""`fedsim report` and `fedsim compare`: read run and sweep folders; never import torch or Ray."""
from __future__ import annotations

import argparse
from pathlib import Path

REPORT_EPILOG = """\
examples:
  fedsim report runs/quickstart/20250101-120000          # one run: text summary + report/report.html
  fedsim report runs/quickstart-sweep                    # a sweep: comparison table + curves with ±std bands
  fedsim report deploy-out/cardiology                    # per-node folders of a deployment: merged first

writes DIR/report/ (or --out): report.html (self-contained: inline images, no network) and its PNGs:
accuracy, loss, bytes_per_round, link_bytes, accuracy_vs_bytes, accuracy_vs_sim_time, labels
(a sweep: sweep_rounds, sweep_sim_time, sweep_bytes). Works on failed, interrupted and running runs.
"""

COMPARE_EPILOG = """\
examples:
  fedsim compare runs/quickstart-sweep                      # grouped by the sweep's grid keys
  fedsim compare runs/a/STAMP runs/b/STAMP --format csv     # grouped by the settings that differ
  fedsim compare runs/quickstart --by policy.name --metric test_acc --target 0.8

columns: final and best METRIC (mean ± std over seeds; population std), MB per round, rounds and
simulated seconds to reach the target (over the runs that reached it; `reached` counts them), and
simulated seconds per round. Failed/interrupted runs are left out of a group that has completed ones.
"""


def add_commands(sub) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    rep = sub.add_parser("report", help="summary, plots and report.html of a run or sweep folder",
                         description="Print a run's summary and write a self-contained HTML report with plots. "
                                     "DIR: a `fedsim run` folder, a `fedsim sweep` folder, or a folder holding the "
                                     "per-node folders of a deployment (merged into one run view first).",
                         epilog=REPORT_EPILOG, formatter_class=fmt)
    rep.add_argument("run_dir", metavar="DIR")
    rep.add_argument("-o", "--out", metavar="FOLDER", help="where report.html and the PNGs go (default: DIR/report)")
    rep.add_argument("--metric", help="sweep: the accuracy metric of the curves (default fed_acc, else test_acc)")
    rep.add_argument("--target", type=float, help="sweep: target accuracy for the time-to-target columns")
    rep.add_argument("--force", action="store_true", help="overwrite an existing report")
    rep.add_argument("--no-html", action="store_true", help="only print the text summary")
    rep.set_defaults(func=cmd_report)

    cmp = sub.add_parser("compare", help="compare runs: mean ± std over seeds, grouped by setting",
                         description="Compare a sweep folder, run folders, or a folder of run folders.",
                         epilog=COMPARE_EPILOG, formatter_class=fmt)
    cmp.add_argument("paths", nargs="+", metavar="DIR")
    cmp.add_argument("--metric", help="accuracy metric (default: fed_acc if present, else test_acc, ...)")
    cmp.add_argument("--by", action="append", metavar="KEY",
                     help="group by these config keys (repeatable or comma-separated; default: the settings that vary)")
    cmp.add_argument("--target", help="target value of METRIC: a number, or auto (90%% of the best group's final)",
                     default="auto")
    cmp.add_argument("--format", choices=("md", "csv", "json"), default="md")
    cmp.add_argument("-o", "--output", metavar="FILE",
                     help="also write the table here (a sweep folder: default SWEEP/compare.FORMAT)")
    cmp.add_argument("--force", action="store_true", help="overwrite an existing output file")
    cmp.set_defaults(func=cmd_compare)


def _target(text, groups, metric):
    from fedsim.report import compare
    from fedsim.report.rundata import ReportError

    if text is None or text == "auto":
        return compare.auto_target(groups, metric)
    try:
        return float(text)
    except ValueError:
        raise ReportError(f"--target {text!r}: a number or auto") from None


def _select(paths: list[Path], by: list[str] | None, metric: str | None):
    from fedsim.report import compare

    runs, grid = compare.discover(paths)
    keys = [k for item in by or [] for k in item.split(",") if k] or grid or compare.varied_keys(runs)
    compare.check_keys(runs, keys)
    metric = compare.headline_metric(runs, metric)
    return compare.group_runs(runs, keys), keys, metric


def cmd_compare(args) -> int:
    from fedsim.report import compare
    from fedsim.sweep.index import is_sweep_dir

    paths = [Path(p) for p in args.paths]
    groups, keys, metric = _select(paths, args.by, args.metric)
    target = _target(args.target, groups, metric)
    text = compare.render(compare.table(groups, metric, target), metric, keys, target, args.format)
    out = Path(args.output) if args.output else \
        (paths[0] / f"compare.{args.format}" if len(paths) == 1 and is_sweep_dir(paths[0]) else None)
    if out is not None:
        compare.write_output(text, out, args.force)
    print(text, end="" if text.endswith("\n") else "\n")
    if out is not None:
        print(f"written to {out}")
    return 0


def cmd_report(args) -> int:
    from fedsim.report.nodes import format_deployment, is_node_run, merge_nodes
    from fedsim.report.rundata import load_run
    from fedsim.report.summary import format_report
    from fedsim.sweep.index import is_sweep_dir

    from fedsim.report.html import check_free

    root = Path(args.run_dir)
    out = Path(args.out) if args.out else root / "report"
    if not args.no_html:
        check_free(out, args.force)  # before anything is printed or merged
    if is_sweep_dir(root):
        from fedsim.report import compare
        from fedsim.report.html import sweep_report

        groups, keys, metric = _select([root], None, args.metric)
        target = args.target if args.target is not None else compare.auto_target(groups, metric)
        print(compare.render(compare.table(groups, metric, target), metric, keys, target, "md"), end="")
        if not args.no_html:
            path, pngs = sweep_report(root, groups, metric, keys, target, out, args.force)
            print(f"report: {path} ({len(pngs)} figures)")
        return 0
    extra = ""
    if is_node_run(root):  # folders of deployed nodes: merge them into one run view first
        extra = format_deployment(merge_nodes(root))
    run = load_run(root)
    print(format_report(run) + extra)
    if not args.no_html:
        from fedsim.report.html import run_report

        path, pngs = run_report(run, out, args.force)
        print(f"report: {path} ({len(pngs)} figures)")
    return 0
