"""Every benchmark still runs: each script at tiny sizes, as `make bench` runs it, must exit 0
and print its JSON line with the figures the README reports. Sizes are cut to seconds; the
figures are not checked (speed is measured by `make bench`, never asserted in a test)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.e2e

# Per script: the tiny sizes, and figure names its JSON line must carry.
SMOKE: dict[str, tuple[dict[str, str], tuple[str, ...]]] = {
    "bench_admin.py": (
        {
            "BENCH_RULES": "200",
            "BENCH_CATEGORIES": "60",
            "BENCH_ADMIN_OUTLETS": "20",
            "BENCH_ADMIN_TRIALS": "2",
        },
        ("routing_change_visible_ms", "coverage_report_ms", "config_roundtrip_ok"),
    ),
    "bench_agi.py": (
        {"BENCH_RESIDENTS": "2000", "BENCH_AGI_CALLS": "200", "BENCH_AGI_PROCESS_CALLS": "2"},
        ("agi_routes_per_s", "agi_p99_ms", "agi_vs_process_ratio"),
    ),
    "bench_capacity.py": (
        {
            "BENCH_CAPACITY_STEP_CALLS": "3",
            "BENCH_CAPACITY_STEP_S": "2",
            "BENCH_CAPACITY_WINDOW_S": "3",
            "BENCH_CAPACITY_SETTLE_S": "10",
            "BENCH_CAPACITY_MAX_CALLS": "6",
            "BENCH_CAPACITY_DRAIN_S": "2",
        },
        (
            "max_concurrent_recorded_calls",
            "max_concurrent_recorded_calls_steps",
            "capacity_limit_part",
            "full_path_cpu_pct_at_limit",
            "max_concurrent_recorded_calls_static",
            "max_concurrent_recorded_calls_static_steps",
            "capacity_limit_part_static",
            "static_path_cpu_pct_at_limit",
            "rtp_ports_ceiling_calls",
        ),
    ),
    "bench_console.py": (
        {
            "BENCH_CONSOLE_CALLS": "8",
            "BENCH_CONSOLE_PAGES": "2",
            "BENCH_CONSOLE_ANSWERING": "1",
            "BENCH_CONSOLE_SEATS": "6",
            "BENCH_CONSOLE_WAITING": "2",
            "BENCH_CONSOLE_TOGGLES": "3",
            "BENCH_CONSOLE_SOCKETS": "2",
            "BENCH_CONSOLE_CPU_WINDOW_S": "2",
        },
        (
            "pop_paint_p50_ms",
            "pop_paint_p99_ms",
            "pop_paint_max_ms",
            "pop_paint_n",
            "pop_paint_first_frame_max_ms",
            "pop_paint_without_profile_n",
            "wallboard_update_p99_ms",
            "wallboard_cpu_pct",
        ),
    ),
    "bench_dispatch.py": (
        {
            "BENCH_RESIDENTS": "2000",
            "BENCH_ORDERS": "500",
            "BENCH_RULES": "100",
            "BENCH_DISPATCHES": "20",
            "BENCH_DISPATCH_LATENCY_ORDERS": "5",
            "BENCH_DISPATCH_ADDED_ORDERS": "10",
            "BENCH_ROUTING_LOOKUPS": "1000",
        },
        (
            "dispatch_per_s",
            "dispatch_p99_ms",
            "dispatch_added_p50_ms",
            "dispatch_added_p99_ms",
            "dispatch_added_max_ms",
            "dispatch_added_n",
        ),
    ),
    "bench_faults.py": (
        {
            "BENCH_FAULTS_RATE": "1",
            "BENCH_FAULTS_HOLDS_MS": "3000",
            "BENCH_FAULTS_SEATS": "8",
            "BENCH_FAULTS_CONSOLES": "2",
            "BENCH_FAULTS_OUTAGE_S": "4",
            "BENCH_FAULTS_ORDER_EVERY_S": "1",
            "BENCH_FAULTS_MESSAGES_DRAIN_S": "90",
            "BENCH_FAULTS_WARMUP_S": "4",
            "BENCH_FAULTS_SETTLE_S": "5",
            "BENCH_FAULTS_CUT_S": "2",
            # The restarts are back in under 2 s: sipp's calls end about when the faults do
            "BENCH_FAULTS_BUDGET_S": "2",
            "BENCH_FAULTS_DRAIN_S": "20",
            # Three faults keep it short; the others are end-to-end tests of their own
            # (tests/e2e/test_faults.py, test_scale_out.py, test_call_path.py).
            # The SMS outage first: its messages' retries (backing off) run during the other two.
            "BENCH_FAULTS_LIST": "sms_outage,redis_restart,postgres_restart",
        },
        (
            "fault_calls",
            "fault_records_lost",
            "fault_records_duplicated",
            "fault_console_recover_p99_s",
            "fault_console_recover_n",
            "fault_messages_lost",
            "fault_messages_duplicated",
            "fault_http_5xx_not_503",
            "fault_unrouted_pops_with_profile",
            "fault_unrouted_calls",
            "faults",
        ),
    ),
    "bench_full_path.py": (
        {
            "BENCH_FULL_RATES": "2",
            "BENCH_FULL_STEP_S": "1",
            "BENCH_FULL_STEPS_PER_RATE": "1",
            "BENCH_FULL_SEATS": "10",
            "BENCH_FULL_HOLD_MS": "500",
            "BENCH_FULL_IDLE_S": "1",
            # One call with the product's prompts (about 22 s), on the FastAGI path only
            "BENCH_FULL_PRODUCTION_RATE": "1",
            "BENCH_FULL_PRODUCTION_PATHS": "full",
            "BENCH_RESIDENTS": "500",
        },
        (
            "full_path_max_cps",
            "full_path_max_cps_n",
            "static_path_max_cps",
            "python_overhead_ratio",
            "python_overhead_ratio_n",
            "full_path_app_cpu_ms_per_call",
            "full_path_app_cpu_ms_per_call_n",
            "static_path_app_cpu_ms_per_call",
            "production_prompts_full_path_held",
            "production_prompts_static_path_held",
            "production_prompts_full_path_n",
        ),
    ),
    "bench_kb.py": (
        {"BENCH_KB_ARTICLES": "500"},
        ("kb_recall_at_5", "kb_mrr", "kb_search_p95_ms", "kb_search_p95_ms_postgres", "kb_suggest_p95_ms"),
    ),
    "bench_pop.py": (
        {
            "BENCH_POP_CALLS": "10",
            "BENCH_POP_RATE": "5",
            "BENCH_POP_SEATS": "4",
            "BENCH_POP_HOLD_MS": "1500",
            "BENCH_POP_IDLE_S": "1",
            "BENCH_POP_IDLE_WINDOWS_MIN": "2",
            "BENCH_RESIDENTS": "500",
        },
        (
            "pop_ready_p50_ms",
            "pop_ready_p99_ms",
            "pop_ready_max_ms",
            "pop_ready_n",
            "pop_ready_unknown_n",
            "app_cpu_ms_per_call",
            "app_cpu_beyond_idle_ms_per_call",
            "pop_without_profile_n",
        ),
    ),
    "bench_reports.py": (
        {
            "BENCH_CALLS": "2000",
            "BENCH_ORDERS": "500",
            "BENCH_INGEST_LINES": "2000",
            "BENCH_REPEAT": "1",
            "BENCH_FOLLOW_S": "2",
        },
        ("queue_log_lines_per_s", "excel_month_s", "follow_rss_growth_mb"),
    ),
    "bench_resident.py": (
        {
            "BENCH_RESIDENT_ORDERS": "500",
            "BENCH_RESIDENT_LOOKUPS": "30",
            "BENCH_RESIDENT_CALLS": "2",
            "BENCH_RESIDENT_MISSED": "2",
            "BENCH_RESIDENT_SIM_RUNS": "1",
        },
        (
            "answer_to_first_ring_p50_s",
            "missed_callback_p95_s",
            "missed_callback_ratio_15min",
            "resident_page_p95_ms",
        ),
    ),
    "bench_security.py": (
        # Without schemathesis' coverage phase (most of its requests): every route still
        # fuzzed as every role; tests/web_console/test_api_fuzz.py runs all phases.
        {"BENCH_FUZZ_EXAMPLES": "1", "BENCH_FUZZ_PHASES": "examples,fuzzing"},
        ("fuzz_requests", "fuzz_server_errors", "hostile_inputs", "hostile_failures", "dialout_refused_ok"),
    ),
    "bench_soak.py": (
        {
            "BENCH_SOAK_S": "24",
            "BENCH_SOAK_RATE": "1",
            "BENCH_SOAK_HOLDS_S": "3,6",
            "BENCH_SOAK_SEATS": "8",
            "BENCH_SOAK_PROBE_RATE": "0.5",
            "BENCH_SOAK_PROBE_HOLD_S": "1",
            "BENCH_SOAK_WINDOW_S": "8",
            "BENCH_SOAK_WARMUP_S": "4",
            "BENCH_SOAK_SAMPLE_S": "2",
            "BENCH_SOAK_SERIES_S": "8",
            "BENCH_SOAK_DRAIN_S": "30",
        },
        (
            "soak_rss_growth_mb",
            "soak_rss_growth_mb_engine",
            "soak_rss_growth_mb_web",
            "soak_rss_growth_n",
            "soak_fd_growth",
            "soak_task_growth",
            "soak_pop_p99_drift_ms",
            "soak_pop_ready_first_n",
            "soak_pop_ready_last_n",
            "soak_calls_placed",
            "soak_probe_calls_placed",
            "soak_records_lost",
            "soak_recordings_missing",
        ),
    ),
    "bench_webrtc.py": (
        {"BENCH_WEBRTC_CALLS": "2", "BENCH_WEBRTC_REGISTRATIONS": "2"},
        ("webrtc_register_p95_s", "webrtc_answer_to_audio_p95_ms", "webrtc_two_way_ratio"),
    ),
}

# Figures that must reach a minimum, where the tiny sizes leave out part of a run: that part
# still ran (e.g. bench_full_path's production prompts, on the full path only).
RAN: dict[str, dict[str, float]] = {
    # the production-prompt step ran and held (a benchmark whose app never came up prints its
    # figures too, all empty)
    "bench_full_path.py": {"production_prompts_full_path_n": 1, "production_prompts_full_path_held": 1},
    "bench_pop.py": {"pop_ready_n": 5, "app_cpu_calls_n": 10},
}


def test_every_benchmark_has_a_smoke_run() -> None:
    assert sorted(SMOKE) == sorted(p.name for p in (ROOT / "benchmarks").glob("bench_*.py"))


@pytest.mark.parametrize("script", sorted(SMOKE))
def test_the_benchmark_runs_and_prints_its_figures(script: str, tmp_path: Path) -> None:
    sizes, figures = SMOKE[script]
    env = {
        **os.environ,
        # The shared data set (benchmarks/dataset.py) at a tiny size unless a script sets its own
        "BENCH_RESIDENTS": "500",
        **sizes,
        "CI": "true",  # a missing part (PostgreSQL, Chromium, Asterisk) fails, as in `make bench`
        # Beside the e2e stack (and another checkout's suite, shifted by CC_TEST_PORT_OFFSET)
        "BENCH_PORT_OFFSET": str(3000 + int(os.environ.get("CC_TEST_PORT_OFFSET", "0"))),
        "BENCH_CACHE_DIR": str(tmp_path / "cache"),
    }
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, f"{script} exited {done.returncode}:\n{done.stderr[-4000:]}"
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert lines, f"{script} printed nothing:\n{done.stderr[-2000:]}"
    result = json.loads(lines[-1])
    assert result.get("bench"), result
    missing = [f for f in figures if f not in result]
    assert not missing, f"{script}: no {missing} in {result}"
    short = {f: result[f] for f, least in RAN.get(script, {}).items() if not (result[f] or 0) >= least}
    assert not short, f"{script}: {short} below {RAN[script]}"
