"""The benchmark harness's pure parts on canned output, so that bench/run does not rot:
dnsperf and wrk parsing, percentiles, py-spy summaries, verdicts and RESULTS.md. No
timing is asserted here; the figures themselves live in bench/RESULTS.md."""

from __future__ import annotations

import pytest
from bench import dnsperf, profile, wrk
from bench.results import Goal, Report, Row, Section, Target
from bench.stats import Spread, percentile

DNSPERF = """\
DNS Performance Testing Tool
Version 2.10.0

[Status] Sending queries (to 10.80.2.2:53)
> NOERROR m000.lab.internal A 0.000130
> NOERROR m001.lab.internal A 0.000070
> NOERROR m002.lab.internal A 0.002000
[Status] Testing complete (time limit)

Statistics:

  Queries sent:         196833
  Queries completed:    196826 (100.00%)
  Queries lost:         7 (0.00%)

  Response codes:       NOERROR 196820 (100.00%), NXDOMAIN 6 (0.00%)
  Average packet size:  request 30, response 46
  Run time (s):         2.002314
  Queries per second:   98302.763702

  Average Latency (s):  0.000888 (min 0.000012, max 0.049095)
  Latency StdDev (s):   0.002086
"""

WRK = """\
Running 5s test @ http://10.80.2.2/small.html
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.10ms    1.20ms  40.00ms   90.00%
    Req/Sec    15.00k     1.00k   17.00k    70.00%
  Latency Distribution
     50%  850.00us
     75%    1.40ms
     90%    2.80ms
     99%    1.20s
  150000 requests in 5.00s, 1.50GB read
  Socket errors: connect 0, read 3, write 0, timeout 2
  Non-2xx or 3xx responses: 12
Requests/sec:  30000.00
Transfer/sec:    307.20MB
"""

PY_SPY_RAW = """\
<module> (onebox/gateway/main.py:10);run (asyncio/runners.py:118);datagram_received \
(/usr/lib/python3/dist-packages/onebox/dns/server.py:120) 30
<module> (onebox/gateway/main.py:10);run (asyncio/runners.py:118);sendto (uvloop/x.py:1) 10
"""


def test_dnsperf_summary_reads_rate_losses_and_codes() -> None:
    summary = dnsperf.parse_summary(DNSPERF)
    assert summary.qps == pytest.approx(98302.763702)
    assert (summary.completed, summary.lost) == (196826, 7)
    assert summary.average_ms == pytest.approx(0.888)
    assert summary.codes == {"NOERROR": 196820, "NXDOMAIN": 6}
    assert not summary.all_answered


def test_dnsperf_verbose_lines_give_percentiles_in_milliseconds() -> None:
    found = dnsperf.with_percentiles(
        dnsperf.parse_summary(DNSPERF), dnsperf.latencies_ms(DNSPERF.splitlines())
    )
    assert found.p50_ms == pytest.approx(0.130)
    assert found.p99_ms == pytest.approx(0.130 + (2.0 - 0.130) * 0.98)


def test_dnsperf_output_without_statistics_is_an_error() -> None:
    with pytest.raises(ValueError, match="lacks"):
        dnsperf.parse_summary("[Status] Sending queries\n")


def test_wrk_summary_converts_units_and_counts_errors_apart() -> None:
    summary = wrk.parse(WRK)
    assert summary.rps == 30000.0
    assert summary.requests == 150000
    assert summary.p50_ms == pytest.approx(0.85)
    assert summary.p99_ms == pytest.approx(1200.0)
    assert summary.bytes_read == int(1.5 * 1024**3)
    assert (summary.bad_answers, summary.socket_errors) == (12, 5)
    assert summary.mib_per_s == pytest.approx(1.5 * 1024 / 5)


def test_wrk_command_carries_the_host_header() -> None:
    args = wrk.command("http://10.0.0.2/", 5, host="web.lab.internal")
    assert args[-1] == "http://10.0.0.2/" and "Host: web.lab.internal" in args


def test_percentile_interpolates_and_spread_keeps_the_ends() -> None:
    values = [float(v) for v in range(1, 11)]
    assert percentile(values, 50) == pytest.approx(5.5)
    spread = Spread.of(values)
    assert (spread.low, spread.high, spread.count) == (1.0, 10.0, 10)
    assert spread.p10 == pytest.approx(1.9)


def test_py_spy_frames_are_summed_by_leaf_with_short_paths() -> None:
    top = profile.top_frames(PY_SPY_RAW)
    assert top[0] == " 75.0%  datagram_received (onebox/dns/server.py:120)"
    assert top[1].endswith("sendto (uvloop/x.py:1)")


def test_verdicts_say_by_how_much_a_target_is_missed() -> None:
    fast = Row(
        "dns",
        "qps",
        "qps",
        Spread.single(95.0),
        "dnsmasq",
        Spread.single(100.0),
        Target(Goal.RATIO_AT_LEAST, 0.9),
    )
    slow = Row(
        "dns",
        "qps",
        "qps",
        Spread.single(45.0),
        "dnsmasq",
        Spread.single(100.0),
        Target(Goal.RATIO_AT_LEAST, 0.9),
    )
    start = Row(
        "start",
        "start",
        "s",
        Spread.single(1.5),
        "docker run",
        Spread.single(1.0),
        Target(Goal.RATIO_AT_MOST, 1.15),
    )
    memory = Row(
        "scale", "memory", "MB", Spread.single(180.0), target=Target(Goal.VALUE_AT_MOST, 150, "MB")
    )
    assert fast.verdict() == "met"
    assert slow.verdict() == "missed by 50% (0.45× for 0.90×)"
    assert start.verdict() == "missed by 30% (1.50× for 1.15×)"
    assert memory.verdict() == "missed by 30.0 MB (20% over)"


def test_results_page_lists_targets_machine_and_commands() -> None:
    section = Section("dns", "DNS")
    section.add(
        Row(
            "dns",
            "queries per second",
            "qps",
            Spread.of([90.0, 100.0, 110.0]),
            "dnsmasq",
            Spread.of([100.0, 100.0, 100.0]),
            Target(Goal.RATIO_AT_LEAST, 0.9),
        )
    )
    section.notes.append("dnsperf from the host")
    section.profile = [" 75.0%  datagram_received (onebox/dns/server.py:120)"]
    skipped = Section("forward", "Forward proxy", skipped="the run failed: boom")
    text = Report(
        "2026-12-04 16:00 UTC",
        20.5,
        {"CPU": "2 cores"},
        [section, skipped],
        ["bench/run"],
        ["load average 1.0"],
    ).markdown()
    assert "| queries per second | 100 qps [p10 92.0, p90 108, n=3] | dnsmasq" in text
    assert "| 1.00× | ≥ 0.9× | met |" in text
    assert "Not measured: the run failed: boom" in text
    assert "- CPU: 2 cores" in text and "```\nbench/run\n```" in text
