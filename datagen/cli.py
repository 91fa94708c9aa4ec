"""`datagen`: thin command-line front end over the library functions."""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from manifests.cli import Command, int_at_least, run_cli
from manifests.io import ManifestError, atomic_write_bytes, join, read_manifest
from manifests.lock import LockError

from .audit import DEFAULT_BY, AuditError
from .build import BuildError, band_layout_of, build, dask_client, output_lock, prepare_output, run_index
from .config import SNR_TOLERANCE_DB, BuildConfig, ConfigError, config_from_table, demo_config, load_config
from .filetypes import STATE_DIR
from .mix import MixError
from .index_report import render_summary, summarize
from .plan import PlanError, noise_needs_loop, split_sources
from .recipes.describe import describe_recipe
from .text_table import aligned


def _load(config_path: str | None) -> tuple[BuildConfig, str]:
    if config_path is None:
        return demo_config(), "demo.toml (embedded default)"
    return load_config(config_path), config_path


def _add_cluster_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workers", type=int_at_least(0), default=None, help="local Dask worker processes (default: config dask.workers; 0 = one per core)")
    parser.add_argument("--scheduler", default=None, help="address of an existing Dask scheduler, e.g. tcp://10.0.0.5:8786 (default: start a local cluster)")
    parser.add_argument("--no-progress", action="store_true", help="do not draw progress bars")


def cmd_build(args: argparse.Namespace) -> int:
    config, where = _load(args.config)
    report = build(config, args.out, where=where, workers=args.workers, scheduler=args.scheduler, overwrite=args.overwrite, progress=not args.no_progress)
    counts = report["counts"]
    print(f"built {counts['examples']} examples ({counts['hours']:.2f} h) in {counts['shards']} shards "
          f"({counts['shards_resumed']} already done) into {args.out}")
    print(f"sources: {counts['sources_used']} used, {counts['sources_excluded']} excluded "
          f"({counts['excluded_nonstationary']} non-stationary), {counts['sources_failed']} failed; details in {join(args.out, 'build.json')}")
    print(f"max |measured - target SNR|: {report['max_snr_error_db']:.4f} dB; total {report['timings']['total_s']:.1f} s")
    if report["warnings"]:
        print(f"{len(report['warnings'])} warning(s), also in build.json and `datagen audit`" + (":" if args.no_progress else ""))
        for warning in report["warnings"] if args.no_progress else ():
            print(f"  {warning}")
    return 0


def cmd_index(args: argparse.Namespace) -> int:
    config, where = _load(args.config)
    workers = config.dask.workers if args.workers is None else args.workers
    with output_lock(args.out, "datagen index"):
        prepare_output(args.out, config, overwrite=args.overwrite)
        with dask_client(workers, config.dask.threads_per_worker, args.scheduler or config.dask.scheduler) as client:
            rows = run_index(config, args.out, client, where, progress=not args.no_progress)
    failed = [r for r in rows if r.get("error")]
    excluded = [r for r in rows if r.get("excluded_reason")]
    usable = [r for r in rows if not r.get("error") and not r.get("excluded_reason")]
    print(f"indexed {len(rows)} recordings into {join(args.out, 'sources.parquet')}: {len(usable)} usable, "
          f"{len(excluded)} excluded, {len(failed)} failed")
    print(render_summary(summarize(rows, split_sources(usable, config)), list(config.splits.fractions)), end="")
    for row in (failed + excluded)[: args.limit]:
        print(f"  {row['path']}: {row.get('error') or row.get('excluded_reason')}")
    if len(failed) + len(excluded) > args.limit:
        print(f"  ... and {len(failed) + len(excluded) - args.limit} more (all of them in {join(args.out, 'sources.parquet')})")
    return 0


def _brief(text: str, width: int = 28) -> str:
    """The first clause of a recipe fact, for the overview table (`datagen recipes NAME` has it all)."""
    first = text.split(" (", 1)[0].split(";", 1)[0].split(": ", 1)[0].strip()
    return first if len(first) <= width and first == text else first[: width - 1].rstrip(" ,") + "…"


def cmd_recipes(args: argparse.Namespace) -> int:
    from .recipes import RECIPES, get_recipe

    if args.name:
        sys.stdout.write(describe_recipe(get_recipe(args.name, "datagen recipes", "NAME")))
        return 0
    rows = [[r.name, ", ".join(r.types), *(_brief(text) for text in (r.native_rate, r.bandwidth, r.hours, r.licence))]
            for r in sorted(RECIPES.values(), key=lambda r: r.name)]
    print("\n".join(aligned(["recipe", "types", "native rate", "bandwidth", "hours", "licence"], rows)))
    print("\n`datagen recipes NAME` shows a recipe's layout, variants, citation and an example config.")
    return 0


def config_of_build(out: str) -> BuildConfig:
    """The resolved config a build folder was made with."""
    import fsspec

    path = join(out, STATE_DIR, "config.json")
    try:
        with fsspec.open(path, "rb") as handle:
            table = json.load(handle)["config"]
    except FileNotFoundError:
        raise ConfigError(f"{path}: missing; {out} is not a datagen build folder") from None
    return config_from_table(table, path)


def cmd_render(args: argparse.Namespace) -> int:
    from .plan import ExamplePlan
    from .render import render_example

    config = config_of_build(args.out)
    examples = read_manifest(join(args.out, "examples.parquet"), "examples").to_pylist()
    matches = [row for row in examples if row["example_id"] == args.example_id]
    if not matches:
        raise ManifestError(f"{join(args.out, 'examples.parquet')}: no example '{args.example_id}'")
    row = matches[0]
    sources = {r["source_id"]: r for r in read_manifest(join(args.out, "sources.parquet"), "sources").to_pylist()}
    clean, noise = sources[row["clean_source_id"]], sources[row["noise_source_id"]]
    fields = {f.name for f in dataclasses.fields(ExamplePlan)}
    plan = ExamplePlan(**{
        **{k: v for k, v in row.items() if k in fields},
        "clean_sample_rate": clean["sample_rate"], "clean_frames": clean["frames"],
        "noise_sample_rate": noise["sample_rate"], "noise_frames": noise["frames"],
        "noise_loop": noise_needs_loop(noise, config.audio.clip_duration_s),
    })
    overrides = {"snr_target_db": args.snr_db, "clean_loudness_target_lufs": args.clean_loudness_lufs,
                 "clean_start_s": args.clean_start_s, "noise_start_s": args.noise_start_s}
    overrides = {k: v for k, v in overrides.items() if v is not None}
    plan = dataclasses.replace(plan, **overrides)
    rendered = render_example(plan, config, band_layout_of(config))
    target = Path(args.output or Path(args.out) / "renders" / args.example_id)
    target.mkdir(parents=True, exist_ok=True)
    for name, data in rendered.members:
        (target / name).write_bytes(data)
    same = all(rendered.record[f"{m}_sha256"] == row[f"{m}_sha256"] for m in ("noisy", "clean", "noise"))
    print(f"wrote {len(rendered.members)} members to {target}; SNR target {rendered.record['snr_target_db']:.2f} dB, "
          f"measured {rendered.record['snr_measured_db']:.2f} dB")
    print("identical to the shard's members" if same else f"differs from the shard's members (changed: {', '.join(overrides) or 'nothing'})")
    return 0 if same or overrides else 1


def _emit(text: str, output: str | None) -> None:
    """Print a report, or write it to `output` (local path or fsspec URL)."""
    if output:
        atomic_write_bytes(output, text.encode("utf-8"))
        print(f"wrote {output}")
    else:
        sys.stdout.write(text)


def cmd_audit(args: argparse.Namespace) -> int:
    from . import audit as audit_mod

    result = audit_mod.audit(args.out, by=args.by, snr_tolerance_db=args.snr_tolerance_db, limit=args.limit)
    if args.format == "html":
        path, pngs = audit_mod.write_html(result, args.output)
        print(f"wrote {path} and {len(pngs)} PNG plots next to it (also embedded in the page)")
    else:
        render = {"table": audit_mod.render_text, "markdown": audit_mod.render_markdown}.get(args.format)
        _emit(render(result, args.limit) if render else audit_mod.render_json(result), args.output)
    if result.failed and (args.format == "html" or args.output):
        for leak in result.leaks:
            print(f"leak: {leak.key} {leak.value} in splits {', '.join(f'{s} ({n})' for s, n in sorted(leak.splits.items()))}", file=sys.stderr)
        for problem in result.missing:
            print(f"missing: {problem}", file=sys.stderr)
    print(f"audit: {audit_mod.status_line(result)}", file=sys.stderr)
    return 1 if result.failed else 0


def cmd_verify(args: argparse.Namespace) -> int:
    from . import verify as verify_mod

    report = verify_mod.verify(args.out, workers=args.workers, scheduler=args.scheduler, progress=not args.no_progress,
                               max_member_bytes=int(args.max_member_mb * 2**20))
    if args.format == "json":
        sys.stdout.write(verify_mod.render_json(report))
    else:
        sys.stdout.write(verify_mod.render_text(report, args.max_problems))
    return 0 if report.ok else 1


def cmd_diff(args: argparse.Namespace) -> int:
    from . import compare

    diff = compare.diff_builds(args.out_a, args.out_b)
    text = {"table": lambda: compare.render_text(diff, args.all), "markdown": lambda: compare.render_markdown(diff, args.all),
            "json": lambda: compare.render_json(diff)}[args.format]()
    _emit(text, args.output)
    return 0


def _build_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("config", nargs="?", help="TOML build config (default: the embedded demo corpus)")
    command.add_argument("--out", required=True, help="build folder (local path or fsspec URL)")
    command.add_argument("--overwrite", action="store_true", help="replace a build of a different config in --out")
    _add_cluster_args(command)


def _index_arguments(command: argparse.ArgumentParser) -> None:
    _build_arguments(command)
    command.add_argument("--limit", type=int_at_least(0), default=20, help="failed and excluded files listed (default: %(default)s)")


def _recipes_arguments(recipes: argparse.ArgumentParser) -> None:
    recipes.add_argument("name", nargs="?", help="a recipe to show in full: layout, variants, citation, example config")


def _render_arguments(render: argparse.ArgumentParser) -> None:
    render.add_argument("out", help="build folder")
    render.add_argument("example_id", help="e.g. train-00000012")
    render.add_argument("-o", "--output", help="folder for the rendered members (default: OUT/renders/EXAMPLE_ID)")
    render.add_argument("--snr-db", type=float, help="target SNR in dB")
    render.add_argument("--clean-loudness-lufs", type=float, help="clean loudness target in LUFS")
    render.add_argument("--clean-start-s", type=float, help="excerpt start in the clean recording, s")
    render.add_argument("--noise-start-s", type=float, help="excerpt start in the noise recording, s")


def _audit_arguments(audit: argparse.ArgumentParser) -> None:
    audit.add_argument("out", help="build folder")
    audit.add_argument("--by", default=",".join(DEFAULT_BY),
                       help="comma-separated examples-manifest columns of the counts table (aliases: corpus=clean_corpus, noise=noise_corpus, "
                            "group=group_key; default: %(default)s)")
    audit.add_argument("--format", choices=["table", "markdown", "html", "json"], default="table",
                       help="table (terminal), markdown, json, or html: a self-contained page with PNG plots (default: %(default)s)")
    audit.add_argument("-o", "--output", help="write the report to this file (default: stdout; html: OUT/audit/report.html, PNGs next to it)")
    audit.add_argument("--snr-tolerance-db", type=float, default=SNR_TOLERANCE_DB, help="|measured - target SNR| above this is reported (default: %(default)s)")
    audit.add_argument("--limit", type=int_at_least(0), default=20, help="rows shown of long lists in table/markdown output (default: %(default)s)")


def _verify_arguments(verify: argparse.ArgumentParser) -> None:
    verify.add_argument("out", help="build folder")
    verify.add_argument("--format", choices=["table", "json"], default="table", help="summary and problem list, or JSON (default: %(default)s)")
    verify.add_argument("--max-problems", type=int_at_least(0), default=100, help="problems listed in table output (default: %(default)s)")
    verify.add_argument("--max-member-mb", type=float, default=64.0, help="members larger than this are reported, never read (default: %(default)s)")
    verify.add_argument("--workers", type=int_at_least(0), default=0, help="local Dask worker processes, one task per shard (default: 0 = one per core)")
    verify.add_argument("--scheduler", default=None, help="address of an existing Dask scheduler whose workers see OUT (default: start a local cluster)")
    verify.add_argument("--no-progress", action="store_true", help="do not draw a progress bar")


def _diff_arguments(diff: argparse.ArgumentParser) -> None:
    diff.add_argument("out_a", help="build folder A (before)")
    diff.add_argument("out_b", help="build folder B (after)")
    diff.add_argument("--format", choices=["table", "markdown", "json"], default="table", help="(default: %(default)s)")
    diff.add_argument("--all", action="store_true", help="also list unchanged rows")
    diff.add_argument("-o", "--output", help="write the report to this file (default: stdout)")


COMMANDS = (
    Command("build", "index the corpora, plan and render all examples, write shards and manifests", _build_arguments, cmd_build),
    Command("index", "probe the configured corpora into OUT/sources.parquet and print per corpus: files, usable, "
                     "excluded by reason, groups per split", _index_arguments, cmd_index),
    Command("recipes", "list the recipes for public corpora (licence, rate, bandwidth, hours), or show one", _recipes_arguments, cmd_recipes),
    Command("render", "re-render one example from its manifest row, optionally with one choice changed", _render_arguments, cmd_render),
    Command("audit", "what a build holds: hours per split/source/corpus/noise type, SNR and loudness distributions, "
                     "stationarity, group coverage, leakage between splits (exit 1 on leakage or missing examples)", _audit_arguments, cmd_audit),
    Command("verify", "check every manifest row against the shards (location, checksum, decoding) and every shard "
                      "against the manifest (orphans); exit 1 listing what is wrong", _verify_arguments, cmd_verify),
    Command("diff", "compare the composition (counts, hours, distributions, config) of two builds", _diff_arguments, cmd_diff),
)


def main(argv: list[str] | None = None) -> int:
    return run_cli("datagen", "Synthesize (noisy, clean) corpora of speech and music mixed with stationary noise.", COMMANDS, argv,
                   (ConfigError, ManifestError, PlanError, BuildError, MixError, AuditError, LockError),
                   "completed shards are kept and the build resumes")


if __name__ == "__main__":
    sys.exit(main())
