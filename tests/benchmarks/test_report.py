"""The README's benchmark table is made from `make bench` output by benchmarks/report.py."""

from __future__ import annotations

import json

import pytest

from benchmarks.report import BEGIN, END, main, read_run, rewrite, summarise, table


def _run(*lines: dict, noise: str = "pip: Requirement already satisfied\n# progress\n") -> str:
    return noise + "\n".join(json.dumps(line) for line in lines) + "\n{not json\n"


RUNS = [
    _run(
        {"bench": "pop", "pop_lead_p99_ms": 13.2, "calls": 200, "rate_per_s": 10}, {"bench": "kb", "ok": True}
    ),
    _run({"bench": "pop", "pop_lead_p99_ms": 11.0, "calls": 200, "rate_per_s": 10}),
    _run({"bench": "pop", "pop_lead_p99_ms": 40.5, "calls": 200, "rate_per_s": 10, "extra": None}),
]


def test_each_figure_is_the_median_of_the_runs_with_its_spread_and_count():
    summary = summarise([read_run(r) for r in RUNS])
    assert summary["pop"]["pop_lead_p99_ms"] == (13.2, 11.0, 40.5, 3)
    assert summary["pop"]["calls"] == (200, 200, 200, 3)  # sample sizes are kept as figures
    assert "extra" not in summary["pop"] and "kb" not in summary  # null and booleans are not figures
    text = table(summary, 3, "load average 0.3")
    assert "| pop | `pop_lead_p99_ms` | 13.2 (11–40.5) | 3 |" in text
    assert "| pop | `calls` | 200 | 3 |" in text
    assert "3 run(s)" in text and "load average 0.3" in text


def test_the_readme_block_is_replaced_and_nothing_else(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\nbefore\n{BEGIN}\nold figures\n{END}\nafter\n", encoding="utf-8")
    files = []
    for i, run in enumerate(RUNS):
        f = tmp_path / f"run-{i}.jsonl"
        f.write_text(run, encoding="utf-8")
        files.append(str(f))
    assert main([*files, "--readme", str(readme)]) == 0
    text = readme.read_text(encoding="utf-8")
    assert text.startswith("# Title\n\nbefore\n" + BEGIN) and text.endswith(END + "\nafter\n")
    assert "old figures" not in text and "`pop_lead_p99_ms` | 13.2" in text
    assert main([*files, "--readme", str(readme)]) == 0 and readme.read_text(encoding="utf-8") == text


def test_no_block_or_no_figures_is_an_error(tmp_path):
    with pytest.raises(ValueError):
        rewrite("no markers here", "x")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("nothing\n", encoding="utf-8")
    assert main([str(empty), "--readme", str(tmp_path / "README.md")]) == 1
