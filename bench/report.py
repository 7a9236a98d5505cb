"""The targets checked against a run's results, and the Markdown tables printed at the end."""

from __future__ import annotations

BOARD_HTML_LIMIT = 300_000  # bytes: "HTML under 300 KB"
PAGES = (
    "list_warm",
    "list_cold",
    "board_warm",
    "board_cold",
    "issue_warm",
    "issue_cold",
    "search_warm",
    "search_cold",
)
TABLE_ROWS = (
    "healthz",
    "list_warm",
    "list_warm_identity",
    "list_cold",
    "board",
    "board_cold",
    "issue",
    "issue_cold",
    "search",
    "search_cold",
)


def targets(results: dict) -> list[dict]:
    """One row per target: what was measured, the bound, met or not (at the last, largest step)."""
    steps = results["steps"]
    if not steps:
        return []
    first, last = steps[0], steps[-1]
    # Request times: sequential, measured by the client over loopback (everything the server
    # does for the request: the access log's own timer misses the session and tenant lookups).
    wrk, server = last["wrk"], last["client_ms"]
    rows = []

    share = wrk["list_warm"]["rps"] / wrk["healthz"]["rps"]
    rows.append(
        _row(
            "Warm list throughput ≥ 0.5 of /healthz",
            f"{wrk['list_warm']['rps']:.0f} / {wrk['healthz']['rps']:.0f} req/s = {share:.2f}",
            share >= 0.5,
        )
    )
    for page, bound, what in (
        ("issue_warm", 4, "Issue page, cache hit, request time ≤ 4 ms"),
        ("issue_cold", 10, "Issue page after an edit (miss), request time ≤ 10 ms"),
        ("search_warm", 8, "Search (30 hits shown), request time ≤ 8 ms"),
        ("search_cold", 8, "… after an edit (miss) ≤ 8 ms"),
    ):
        if page in server:
            median = server[page]["median"]
            rows.append(_row(what, f"{median:.1f} ms (p95 {server[page]['p95']:.1f} ms)", median <= bound))
    jobs = results.get("jobs")
    if jobs:
        rows.append(
            _row(
                "Trivial jobs per second per worker process ≥ 150",
                f"{jobs['jobs_per_second']} jobs/s ({jobs['jobs']:,} jobs, load {jobs['load']:.2f})",
                (jobs["jobs_per_second"] or 0) >= 150,
            )
        )
    hello = results.get("hello_world")
    if hello:
        floor = wrk["healthz"]["rps"] / hello["rps"]
        rows.append(
            _row(
                "/healthz throughput ≥ 0.30 of a bare WSGI hello world (same waitress settings)",
                f"{wrk['healthz']['rps']:.0f} / {hello['rps']:.0f} req/s = {floor:.2f}",
                floor >= 0.30,
            )
        )
        issue = wrk["issue"]["rps"] / wrk["healthz"]["rps"]
        rows.append(
            _row(
                "Issue page throughput ≥ 0.4 of /healthz",
                f"{wrk['issue']['rps']:.0f} / {wrk['healthz']['rps']:.0f} req/s = {issue:.2f}",
                issue >= 0.4,
            )
        )
    p99 = wrk["list_warm"]["latency_ms"]["p99"]
    rows.append(_row("Warm list p99 < 100 ms at 16 connections", f"{p99:.1f} ms", p99 < 100))
    ratio = server["list_cold"]["median"] / server["list_warm"]["median"]
    rows.append(
        _row(
            "List: a cache hit ≥ 5x cheaper than a miss (request time)",
            f"miss {server['list_cold']['median']:.1f} ms / hit {server['list_warm']['median']:.1f} ms "
            f"= {ratio:.1f}x",
            ratio >= 5,
        )
    )
    if len(steps) > 1:
        for page in (page for page in PAGES if page in last["client_ms"] and page in first["client_ms"]):
            growth = last["client_ms"][page]["median"] / first["client_ms"][page]["median"]
            rows.append(
                _row(
                    f"{_page_name(page)}: time at {last['organizations']:,} orgs ≤ 1.2x "
                    f"the time at {first['organizations']:,}",
                    f"{last['client_ms'][page]['median']:.1f} / {first['client_ms'][page]['median']:.1f} ms "
                    f"= {growth:.2f}x",
                    growth <= 1.2,
                )
            )
    p95 = wrk["board"]["latency_ms"]["p95"]
    rows.append(
        _row("Board (5,000 issues) first page p95 < 150 ms at 16 connections", f"{p95:.1f} ms", p95 < 150)
    )
    cold = server["board_cold"]["p95"]
    rows.append(
        _row(
            "… and on a cache miss (request time p95, sequential)",
            f"{cold:.1f} ms (median {server['board_cold']['median']:.1f} ms)",
            cold < 150,
        )
    )
    size = last["sizes"]["board"]["identity"]
    rows.append(
        _row("Board HTML < 300 KB", f"{size / 1000:.1f} KB ({size:,} bytes)", size < BOARD_HTML_LIMIT)
    )
    for page in ("list", "board", "issue"):
        saving = last["sizes"][page]["br_saving"]
        gzip = last["sizes"][page]["gzip_saving"]
        rows.append(
            _row(
                f"{ {'list': 'Issue list', 'board': 'Board', 'issue': 'Issue page'}[page] } HTML shrinks "
                "≥ 70% compressed",
                f"brotli -{saving:.0%}, gzip -{gzip:.0%}",
                min(saving, gzip) >= 0.70,
            )
        )
    return rows


def _row(target: str, measured: str, met: bool) -> dict:
    return {"target": target, "measured": measured, "met": bool(met)}


def _page_name(page: str) -> str:
    return {
        "list_warm": "Issue list, warm",
        "list_cold": "Issue list, cold",
        "list": "Issue list",
        "board": "Board, warm",
        "board_warm": "Board, warm",
        "board_cold": "Board, cold",
        "issue": "Issue page, warm",
        "issue_warm": "Issue page, warm",
        "issue_cold": "Issue page, after an edit",
        "search": "Search, warm",
        "search_warm": "Search, warm",
        "search_cold": "Search, after an edit",
        "healthz": "/healthz (ceiling)",
        "list_warm_identity": "Issue list, warm, uncompressed",
    }[page]


def markdown(results: dict) -> str:
    lines = []
    for step in results["steps"]:
        rows = step["rows"]
        lines.append(
            f"### {step['organizations']:,} organizations "
            f"({rows['issues']:,} issues, {rows['comments']:,} comments; built in {step['build_seconds']} s)"
        )
        lines.append("")
        lines.append(
            "| page | req/s | ÷ hello world | ÷ /healthz | p50 ms | p90 ms | p95 ms | p99 ms "
            "| request ms | Flask timer ms | HTML bytes | br | gzip | others' CPU | load |"
        )
        lines.append("| --- |" + " ---: |" * 14)
        hello = results.get("hello_world")
        if hello:
            lat = hello["latency_ms"]
            cells = ["bare WSGI hello world", f"{hello['rps']:.0f}", "1.00", "—"]
            cells += [f"{lat[p]:.1f}" for p in ("p50", "p90", "p95", "p99")] + ["—"] * 5
            cells += [f"{hello['others_cpu']:.0%}", f"{hello['load']:.2f}"]
            lines.append("| " + " | ".join(cells) + " |")
        healthz_rps = step["wrk"].get("healthz", {}).get("rps")
        for name in TABLE_ROWS:
            wrk = step["wrk"].get(name)
            sequential_name = f"{name}_warm" if f"{name}_warm" in step["client_ms"] else name
            request = step["client_ms"].get(sequential_name)
            server = step["server_ms"].get(sequential_name)
            size = step["sizes"].get(name.split("_")[0]) if name != "list_warm_identity" else None
            cells = [_page_name(name)]
            if wrk:
                lat = wrk["latency_ms"]
                cells.append(f"{wrk['rps']:.0f}")
                cells.append(f"{wrk['rps'] / hello['rps']:.2f}" if hello else "—")
                cells.append(f"{wrk['rps'] / healthz_rps:.2f}" if healthz_rps else "—")
                cells += [f"{lat[p]:.1f}" for p in ("p50", "p90", "p95", "p99")]
            else:
                cells += ["—"] * 7
            cells.append(f"{request['median']:.1f}" if request else "—")
            cells.append(f"{server['median']:.1f}" if server else "—")
            if size and not name.endswith("_cold"):
                cells += [f"{size['identity']:,}", f"-{size['br_saving']:.0%}", f"-{size['gzip_saving']:.0%}"]
            else:
                cells += ["—"] * 3
            others = step.get("others_cpu", {}).get(name if wrk else "sequential")
            cells.append(f"{others:.0%}" if others is not None else "—")
            average = step.get("load", {}).get(name) if wrk else None
            cells.append(f"{average:.2f}" if average is not None else "—")
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    lines.append(
        "req/s and percentiles: wrk at the run's connections. request ms: median of sequential requests "
        "timed by the client over loopback; Flask timer ms: the access log's duration_ms of the same "
        "requests. others' CPU: share of the machine used by processes outside the benchmark; load: "
        "the 1-minute load average as the wrk run began. ÷ hello world: req/s as a share of a bare "
        "WSGI app served by the same waitress settings in the same run."
    )
    lines.append("")
    jobs = results.get("jobs")
    if jobs:
        lines.append(
            f"Jobs: {jobs['jobs_per_second']} trivial jobs/s with one worker process "
            f"({jobs['jobs']:,} jobs; load {jobs['load']:.2f})."
        )
        lines.append("")
    lines.append("### Targets")
    lines.append("")
    lines.append("| target | measured | met |")
    lines.append("| --- | --- | --- |")
    for row in results["targets"]:
        lines.append(f"| {row['target']} | {row['measured']} | {'yes' if row['met'] else '**no**'} |")
    return "\n".join(lines)
