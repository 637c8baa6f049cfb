"""The ``consistency`` command line.

    consistency check --once [--json] [--divergence sampled|full|none]
    consistency serve [--host H] [--port P] [--tls-cert F --tls-key F [--tls-client-ca F]]
    consistency repair --region R [--feature-view V] [--dry-run] [--json]

Exit codes (for cron and CI), decided by the error's class, never its message:
    0  every bound holds and everything was measured (repair: every key equal afterwards)
    1  at least one bound is violated by a measured value (repair: keys left unrepaired)
    2  usage or configuration error (``UsageError``, ``SettingsError``, ``ConfigError``)
    3  something could not be measured (a region, Kafka or S3 unreachable, no heartbeat
       emitter running, no manifest: ``SourceUnavailable``, ``NoManifest``,
       ``TransientError``) and no measured value violates a bound
    4  the checker failed unexpectedly (a bug: the traceback is logged)
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

from consistency.config import load_settings, topology_path
from consistency.core.bounds import Measure
from consistency.core.cost import EgressReport
from consistency.core.report import Report
from consistency.core.units import duration, size, usd
from consistency.core.versions import ArtifactSkew, VersionsReport
from consistency.errors import ConsistencyError, NoManifest, SourceUnavailable, UsageError
from replicator.commands.server_tls import add_server_tls_arguments, server_tls
from replicator.config import load_topology
from replicator.errors import ConfigError, ReplicatorError, TransientError
from replicator.logs import configure as configure_logging

log = logging.getLogger(__name__)

EXIT_OK, EXIT_VIOLATED, EXIT_USAGE, EXIT_UNMEASURED, EXIT_INTERNAL = 0, 1, 2, 3, 4
EXIT_CODES = (
    "exit codes: 0 ok, 1 bound violated (repair: keys left unrepaired), 2 usage/config "
    "error, 3 could not measure, 4 internal error"
)

_EXIT_BY_CLASS: tuple[tuple[tuple[type[Exception], ...], int], ...] = (
    ((UsageError, ConfigError), EXIT_USAGE),
    ((SourceUnavailable, NoManifest, TransientError), EXIT_UNMEASURED),
    ((ConsistencyError, ReplicatorError), EXIT_USAGE),
)


def exit_code_of(exc: Exception) -> int:
    """The exit code an error ends the command with (by class)."""
    for classes, code in _EXIT_BY_CLASS:
        if isinstance(exc, classes):
            return code
    return EXIT_INTERNAL


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="consistency",
        description="Staleness and divergence of every region against bounds, with alerts.",
        epilog=EXIT_CODES,
    )
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="checker settings (default: $CONSISTENCY_CONFIG, else infra/consistency.yaml)",
    )
    parser.add_argument(
        "--topology",
        metavar="PATH",
        help="replicator topology (default: settings' topology, $REPLICATOR_CONFIG, "
        "infra/topology.yaml)",
    )
    parser.add_argument("--log-format", choices=["text", "json"], default="text")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_check(commands)
    _add_serve(commands)
    _add_repair(commands)
    return parser


def _add_check(commands: Any) -> None:
    check = commands.add_parser(
        "check",
        help="measure once, print the report, exit non-zero when a bound is violated",
        description="One round of every measure; bounds evaluated without hysteresis.",
        epilog=EXIT_CODES,
    )
    check.add_argument(
        "--once",
        action="store_true",
        required=True,
        help="run one round and exit (continuous checking is `consistency serve`)",
    )
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    check.add_argument(
        "--divergence",
        choices=["sampled", "full", "none"],
        default="sampled",
        help="divergence mode (default: sampled)",
    )
    check.set_defaults(handler=_check)


def _add_serve(commands: Any) -> None:
    serve = commands.add_parser(
        "serve",
        help="scheduled checks, alerts, /metrics, /healthz, JSON API and status page",
    )
    serve.add_argument("--host", help="listen address (default: settings' server.host)")
    serve.add_argument("--port", type=int, help="listen port (default: settings' server.port)")
    add_server_tls_arguments(serve, "the settings' server.tls")
    serve.set_defaults(handler=_serve)


def _add_repair(commands: Any) -> None:
    repair = commands.add_parser(
        "repair",
        help="re-apply diverged keys of a region from the reference (last writer wins)",
        description=(
            "Runs a full check of the region, then re-applies its missing, conflicting and "
            "behind keys from the reference region through the replicator's last-writer-wins "
            "script: a key is never moved back in time. Extra keys are reported, not deleted."
        ),
    )
    repair.add_argument("--region", required=True)
    repair.add_argument("--feature-view", action="append", dest="views", metavar="VIEW")
    repair.add_argument("--dry-run", action="store_true", help="report what would be repaired")
    repair.add_argument("--json", action="store_true")
    repair.set_defaults(handler=_repair)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(json_lines=args.log_format == "json", verbose=args.verbose)
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        code = exit_code_of(exc)
        if code == EXIT_INTERNAL:
            log.exception("consistency %s failed unexpectedly", args.command)
        print(f"consistency: error: {exc}", file=sys.stderr)
        return code


def _load(args: argparse.Namespace) -> tuple[Any, Any]:
    settings = load_settings(args.config)
    topology = load_topology(topology_path(settings, args.topology))
    return settings, topology


# check ------------------------------------------------------------------------------------
def _check(args: argparse.Namespace) -> int:
    from consistency.wiring import build_checker, close_checker

    settings, topology = _load(args)
    checker = build_checker(topology, settings)
    try:
        staleness = checker.measure_staleness()
        findings = {}
        if args.divergence != "none":
            try:
                findings = checker.measure_divergence(args.divergence)
            except ConsistencyError as exc:
                staleness.errors.append(f"divergence not measured: {exc}")
        report = checker.report(staleness, findings)
    finally:
        close_checker(checker)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(format_report(report))
    return exit_code(report)


def exit_code(report: Report) -> int:
    measured = [v for v in report.violations if v.value is not None and not math.isinf(v.value)]
    if measured:
        return EXIT_VIOLATED
    if report.violations or not report.complete:
        return EXIT_UNMEASURED
    return EXIT_OK


def format_report(report: Report) -> str:
    hb = report.heartbeat
    lines = [
        f"project {report.project}, reference {report.reference_region}, "
        + (
            f"heartbeat #{hb.sequence} every {duration(hb.interval_seconds)}"
            if hb.emitter_up
            else "heartbeat emitter NOT RUNNING"
        )
    ]
    for name, region in report.regions.items():
        lines.append(
            f"\n{name}: {region.status.upper()}  staleness {duration(region.staleness_seconds)}  "
            f"lag {region.lag_offsets if region.lag_offsets is not None else 'n/a'} records "
            f"({duration(region.lag_seconds)})  catch-up {duration(region.catchup_seconds)}"
        )
        if region.versions is not None:
            lines.append(f"  {format_versions(region.versions)}")
        if region.egress is not None:
            lines.append(f"  {format_egress(region.egress)}")
        for view, vr in sorted(region.feature_views.items()):
            d = vr.divergence
            div = "divergence not checked"
            if d is not None:
                interval = (
                    f" [{d.ratio_low:.4f}, {d.ratio_high:.4f}]" if d.ratio_low is not None else ""
                )
                div = (
                    f"divergence {d.ratio:.4f}{interval} ({d.mode}, {d.keys_checked} keys: "
                    f"{d.missing} missing, {d.extra} extra, {d.conflicting} conflicting, "
                    f"{d.behind} behind, {d.in_flight} in flight)"
                )
            lines.append(
                f"  {view:<28} staleness {duration(vr.staleness_seconds):>9}  "
                f"freshness {duration(vr.freshness_seconds):>9}  {div}"
            )
        lines.extend(f"  ! {e}" for e in region.errors)
    lines.append("")
    costs = [r.egress for r in report.regions.values() if r.egress is not None]
    if costs:
        lines.append(
            f"egress, all regions: {usd(sum(e.monthly_cost_usd for e in costs))}/month "
            f"(compression saves {usd(sum(e.compression_saves_usd for e in costs))}, "
            f"per-region subscription {usd(sum(e.subscription_saves_usd for e in costs))})"
        )
    if report.violations:
        lines.append(f"{len(report.violations)} violation(s):")
        lines.extend(
            f"  {v.region} / {v.feature_view}: {v.measure.value} {_figure(v.measure, v.value)} "
            f"> {_figure(v.measure, v.bound)}"
            for v in report.violations
        )
    elif report.complete:
        lines.append("every bound holds")
    else:
        lines.append("no measured value violates a bound, but not everything was measured")
    lines.extend(f"! {e}" for e in report.errors)
    return "\n".join(lines)


def format_egress(egress: EgressReport) -> str:
    """``egress from us-east-1: 1.2 MiB in 2.0 h (4.8 MiB decompressed), 10.5 GiB/month at
    $0.02/GB = $0.2100/month; compression saves $0.6300, subscription $0.0000``."""
    line = (
        f"egress from {egress.source_region}: {size(egress.wire_bytes)} in "
        f"{duration(egress.observed_seconds)} ({size(egress.record_bytes)} decompressed), "
        f"{size(egress.monthly_wire_bytes)}/month at {usd(egress.usd_per_gb)}/GB = "
        f"{usd(egress.monthly_cost_usd)}/month; compression saves "
        f"{usd(egress.compression_saves_usd)}, subscription {usd(egress.subscription_saves_usd)}"
    )
    if egress.unpriced_views:
        line += f" (+ views no region fetches: {', '.join(egress.unpriced_views)})"
    return line


def format_versions(versions: VersionsReport) -> str:
    """``registry a7c8904e (reference a7c8904e)  models fraud-gbdt v7, ...``; a model on
    another version than the reference names it and the skew."""
    r = versions.registry
    line = f"registry {r.version or 'none'} (reference {r.reference_version or 'none'}"
    line += f", skew {duration(r.skew_seconds)})" if r.skew_seconds != 0 else ")"
    models = [f"{name} {_model(m)}" for name, m in sorted(versions.models.items())]
    return f"{line}  models {', '.join(models) or 'none'}"


def _model(skew: ArtifactSkew) -> str:
    if skew.skew_seconds == 0:
        return skew.version or "none"
    return (
        f"{skew.version or 'none'} (reference {skew.reference_version or 'none'}, "
        f"skew {duration(skew.skew_seconds)})"
    )


def _figure(measure: Measure, value: float | None) -> str:
    """A ratio as a number, every other measure as a duration."""
    if measure is not Measure.DIVERGENCE:
        return duration(value)
    if value is None or math.isinf(value):
        return "unmeasurable"
    return f"{value:.4g}"


# serve ------------------------------------------------------------------------------------
def _serve(args: argparse.Namespace) -> int:
    from consistency.service import ConsistencyService
    from consistency.web import StatusServer
    from consistency.wiring import build_checker, build_webhook, close_checker

    settings, topology = _load(args)
    tls = server_tls(args, settings.server.tls)
    checker = build_checker(topology, settings)
    sink = build_webhook(settings)
    service = ConsistencyService(checker, settings, sink=sink)
    if sink is not None:
        service.metrics.add_webhook(
            lambda: {"delivered": sink.delivered, "failed": sink.failed, "dropped": sink.dropped}
        )
    host = args.host or settings.server.host
    port = settings.server.port if args.port is None else args.port
    try:
        server = StatusServer(service, host, port, tls)
    except OSError as exc:
        raise UsageError(
            f"cannot listen on {host}:{port}: {exc.strerror} (pass --port or set "
            "CONSISTENCY_SERVER__PORT)"
        ) from None
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    server.start()
    service.start()
    print(f"consistency: serving {server.url}/ (metrics {server.url}/metrics)", flush=True)
    try:
        stop.wait()
    finally:
        service.stop()
        server.stop()
        close_checker(checker)
    return EXIT_OK


# repair -----------------------------------------------------------------------------------
def _repair(args: argparse.Namespace) -> int:
    from consistency.adapters.shared import RegionStore
    from consistency.repair import repair_region
    from consistency.wiring import build_checker, close_checker

    settings, topology = _load(args)
    region = topology.region(args.region)
    checker = build_checker(topology, settings)
    # Repair writes: the region's writer, never the checker's read-only user (which the
    # checker above reads with). An operator's action, run where the writer's secret is.
    store = RegionStore(region.redis, region.redis.writer)
    try:
        results = repair_region(checker, args.region, store, views=args.views, dry_run=args.dry_run)
    finally:
        store.close()
        close_checker(checker)
    if args.json:
        print(json.dumps([r.to_dict() for r in results], indent=2))
    else:
        verb = "would re-apply" if args.dry_run else "re-applied"
        for r in results:
            found = ", ".join(f"{n} {c}" for c, n in r.found.items() if n) or "no differences"
            print(f"{args.region} / {r.feature_view}: found {found}")
            if r.attempted:
                print(
                    f"  {verb} {r.attempted} key(s)"
                    + ("" if args.dry_run else f": {r.repaired} repaired, {r.not_repaired} not")
                )
            if r.unrepairable:
                print(f"  {r.unrepairable} key(s) have no timestamp at the reference: skipped")
            if r.extra_left:
                print(
                    f"  {r.extra_left} extra key(s) left in place (last-writer-wins cannot "
                    "delete): see docs/consistency.md#repair"
                )
    left = sum(r.not_repaired + r.unrepairable for r in results)
    return EXIT_OK if args.dry_run or left == 0 else EXIT_VIOLATED


if __name__ == "__main__":
    sys.exit(main())
