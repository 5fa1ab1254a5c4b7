"""report.html: one self-contained file (inline CSS and PNGs as data: URIs, no script, no network),
with the same PNGs written beside it for papers and slides."""
from __future__ import annotations

import base64
import html
import io
import time
from pathlib import Path

import networkx as nx
import yaml

from fedsim.report import compare, plots
from fedsim.report.rundata import ReportError, Run

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;color:#222;
padding:0 1rem;line-height:1.45}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}
.status{display:inline-block;padding:.15rem .6rem;border-radius:.8rem;font-weight:600;font-size:.9rem}
.completed{background:#d8f3dc;color:#1b4332}.failed{background:#ffd6d6;color:#7a1212}
.interrupted,.incomplete{background:#fff1c1;color:#6b4f00}
table{border-collapse:collapse;font-size:.88rem;margin:.6rem 0}td,th{border:1px solid #ddd;padding:.25rem .55rem;
text-align:right}th{background:#f4f6f8}td:first-child,th:first-child{text-align:left}
figure{margin:1rem 0}figure img{max-width:100%;border:1px solid #eee}figcaption{font-size:.85rem;color:#555}
pre{background:#f6f8fa;padding:.8rem;overflow:auto;font-size:.8rem}.muted{color:#666;font-size:.9rem}
"""


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def check_free(out: Path, force: bool) -> None:
    target = out / "report.html"
    if target.exists() and not force:
        raise ReportError(f"{target} exists; pass --force to overwrite it (and its PNGs)")


def _prepare(out: Path, force: bool) -> None:
    check_free(out, force)
    out.mkdir(parents=True, exist_ok=True)


class _Page:
    def __init__(self, out: Path, title: str) -> None:
        self.out, self.parts, self.title, self.pngs = out, [], title, []

    def add(self, text: str) -> None:
        self.parts.append(text)

    def figure(self, name: str, fig, caption: str) -> None:
        if fig is None:
            return
        data = _png(fig)
        (self.out / f"{name}.png").write_bytes(data)
        self.pngs.append(name + ".png")
        uri = "data:image/png;base64," + base64.b64encode(data).decode()
        self.add(f'<figure><img alt="{html.escape(caption)}" src="{uri}"><figcaption>{html.escape(caption)}'
                 f" — <code>{name}.png</code></figcaption></figure>")

    def write(self) -> Path:
        doc = (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(self.title)}</title>"
               f"<style>{CSS}</style></head><body>" + "\n".join(self.parts)
               + f"<p class='muted'>written by fedsim report on {time.strftime('%Y-%m-%d %H:%M:%S')}</p></body></html>")
        path = self.out / "report.html"
        path.write_text(doc, encoding="utf-8")
        return path


def _table(head: list[str], rows: list[list]) -> str:
    h = "".join(f"<th>{html.escape(str(c))}</th>" for c in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{h}</tr>{body}</table>"


def _status_line(run: Run) -> str:
    total = run.summary.get("rounds") or run.config.get("rounds", "?")
    text = {"completed": f"completed, {run.rounds_done} rounds",
            "failed": f"failed after {run.rounds_done} of {total} rounds: {run.summary.get('error', '')}",
            "interrupted": f"interrupted after {run.rounds_done} of {total} rounds",
            }.get(run.status, f"no summary.json (still running or killed): {run.rounds_done} of {total} rounds on disk")
    return f"<span class='status {html.escape(run.status)}'>{html.escape(run.status)}</span> {html.escape(text)}"


def _graph(run: Run) -> nx.Graph | None:
    path = run.dir / "topology.graphml"
    if not path.is_file():
        return None
    try:
        return nx.read_graphml(path)
    except Exception as exc:  # networkx raises several kinds for a broken file; name the file either way
        raise ReportError(f"{path}: cannot read: {exc}") from None


def _facts(run: Run) -> list[list]:
    cfg, s = run.config, run.summary
    sent = sum(m.wire_bytes for m in run.comm)
    sim = run.sim_time()
    facts = [["policy", (cfg.get("policy") or {}).get("name", s.get("policy", "?"))],
             ["nodes", len(run.nodes)],
             ["rounds", f"{run.rounds_done} of {s.get('rounds') or cfg.get('rounds', '?')}"],
             ["seed", cfg.get("seed", s.get("seed", "?"))],
             ["dataset / model", f"{(cfg.get('data') or {}).get('dataset', '?')} / {(cfg.get('model') or {}).get('name', '?')}"],
             ["runtime", f"{(cfg.get('runtime') or {}).get('kind', '?')}, transport {(cfg.get('runtime') or {}).get('transport', '?')}"],
             ["wire bytes", f"{sent:,} in {len(run.comm)} messages"]]
    if "wall_s" in s:
        facts.append(["wall time", f"{s['wall_s']:.1f} s (set-up {s.get('setup_s', 0):.1f} s)"])
    if sim:
        facts.append(["simulated time", f"{sim[max(sim)]:.2f} s over {len(sim)} rounds"])
    if "ledger_balanced" in s:
        facts.append(["ledger balanced", s["ledger_balanced"]])
    return facts


def _final_table(run: Run) -> str:
    metrics = [m for m in ("test_acc", "test_bacc", "fed_acc", "fed_bacc", "base_acc", "new_acc", "hm", "train_loss",
                           "dp_epsilon") if m in run.metric_names()]
    if not metrics:
        return ""
    last: dict[str, dict[str, float]] = {}
    for _, node, m, v in run.metrics:
        last.setdefault(node, {})[m] = v
    rows = [[n] + [f"{last[n][m]:.4f}" if m in last[n] else "—" for m in metrics] for n in sorted(last)]
    means = []
    for m in metrics:
        vals = [last[n][m] for n in last if m in last[n] and last[n][m] == last[n][m]]
        means.append(f"{sum(vals) / len(vals):.4f}" if vals else "—")
    return _table(["node"] + metrics, rows + [["mean"] + means])


def run_report(run: Run, out: Path, force: bool = False) -> tuple[Path, list[str]]:
    _prepare(out, force)
    page = _Page(out, f"fedsim report: {run.name}")
    page.add(f"<h1>{html.escape(run.name)}</h1><p class='muted'>{html.escape(str(run.dir))}</p>")
    page.add(f"<p>{_status_line(run)}</p>")
    page.add(_table(["run", ""], _facts(run)))
    page.add("<h2>Accuracy and loss</h2>")
    page.figure("accuracy", plots.accuracy(run), "accuracy per round: each node, their mean, and the federation")
    page.figure("loss", plots.loss(run), "local training loss per round")
    page.add("<h2>Final values per node</h2>" + (_final_table(run) or "<p class='muted'>no metrics yet</p>"))
    page.add("<h2>Communication</h2>")
    page.figure("bytes_per_round", plots.bytes_by_kind(run), "wire bytes sent per round by payload kind")
    page.figure("link_bytes", plots.link_heatmap(run, _graph(run)), "bytes carried by each link, on the topology")
    page.figure("accuracy_vs_bytes", plots.accuracy_vs_bytes(run), "accuracy against cumulative wire bytes")
    page.add("<h2>Simulated wall-clock</h2>")
    fig = plots.accuracy_vs_time(run)
    if fig is None:
        page.add("<p class='muted'>no timing.csv: this run has no simulated wall-clock</p>")
    page.figure("accuracy_vs_sim_time", fig, "accuracy against simulated time (critical path of each round)")
    page.add("<h2>Data</h2>")
    figl = plots.labels(run)
    if figl is None:
        page.add("<p class='muted'>no labels.csv in this run</p>")
    page.figure("labels", figl, "training labels per node")
    if run.config:
        page.add("<h2>Configuration</h2><details><summary>config.yaml</summary><pre>"
                 + html.escape(yaml.safe_dump(run.config, sort_keys=False)) + "</pre></details>")
    return page.write(), page.pngs


def sweep_report(root: Path, groups: list, metric: str, settings: list[str], target: float | None,
                 out: Path, force: bool = False) -> tuple[Path, list[str]]:
    _prepare(out, force)
    page = _Page(out, f"fedsim sweep report: {root.name}")
    page.add(f"<h1>Sweep {html.escape(root.name)}</h1><p class='muted'>{html.escape(str(root))}</p>")
    rows = compare.table(groups, metric, target)
    cols = compare.headers(metric, settings)
    page.add("<h2>Comparison</h2><p class='muted'>mean ± std over the completed runs of each setting; "
             + (f"target {html.escape(metric)} {target:g}" if target is not None else "no target") + "</p>")
    page.add(_table([t for _, t in cols], [[compare._fmt(r.get(k), k) for k, _ in cols] for r in rows]))
    page.add("<h2>Curves</h2>")
    page.figure("sweep_rounds", plots.sweep_curves(groups, metric, "round"), f"{metric} per round, each setting")
    page.figure("sweep_sim_time", plots.sweep_curves(groups, metric, "sim_time"), f"{metric} against simulated time")
    page.figure("sweep_bytes", plots.sweep_curves(groups, metric, "bytes"), f"{metric} against cumulative bytes")
    page.add("<h2>Runs</h2>")
    runs = [[g.label, r.dir.name, r.status, r.rounds_done, r.summary.get("error") or ""] for g in groups for r in g.runs]
    page.add(_table(["setting", "run", "status", "rounds", "error"], runs))
    page.add("<p class='muted'>a single run's report: <code>fedsim report " + html.escape(str(root)) +
             "/runs/KEY</code></p>")
    return page.write(), page.pngs
