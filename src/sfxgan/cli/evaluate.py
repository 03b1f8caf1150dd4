"""`sfxgan evaluate --real DATA --generated DIR --out REPORT`: quality, diversity and
memorisation metrics of generated clips, with a report."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from sfxgan.cli.options import add_crop_option, add_quiet_option, add_weights_options, class_list


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="quality, diversity and memorisation metrics of generated clips, with a report",
        description="Compare generated clips (class sub-folders, as generate writes them) with "
        "the real data; write metrics.json, report.html and report.md.",
    )
    p.add_argument("--real", required=True, help="real class folders or a CSV manifest")
    p.add_argument("--generated", required=True, type=Path, help="generated class folders")
    p.add_argument("--out", required=True, type=Path, help="report folder")
    p.add_argument(
        "--classifier",
        type=Path,
        help="judge from `sfxgan classifier train` (default: train one on --real, saved in --out)",
    )
    p.add_argument(
        "--run",
        type=Path,
        help="the run that generated the clips: adds phase consistency and its loss curves",
    )
    add_weights_options(
        p,
        no_ema_help="the clips came from `generate --no-ema`: check the run's trained generator "
        "(only for folders without the generated.json that `generate` writes, which says so)",
        device=False,
    )
    p.add_argument("--classes", help="comma-separated subset of classes to evaluate")
    add_crop_option(
        p, default=None, help="part of long real clips to keep (default: the run's, else start)"
    )
    p.add_argument(
        "--vggish",
        nargs="?",
        const="auto",
        metavar="WEIGHTS",
        help="add FAD with VGGish from local weights (a path, or $SFXGAN_VGGISH_WEIGHTS, or "
        "the torch hub cache); nothing is downloaded",
    )
    p.add_argument("--seed", type=int, default=0)
    add_quiet_option(p, help="no progress bars")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from sfxgan.evaluate.evaluation import evaluate
    from sfxgan.evaluate.judge import Judge
    from sfxgan.evaluate.report import check_report_folder, table_rows, write_report

    check_report_folder(Path(args.out))
    judge = Judge.load(args.classifier) if args.classifier else None
    vggish = None
    if args.vggish:
        from sfxgan.evaluate.vggish import load_vggish

        vggish = load_vggish(None if args.vggish == "auto" else args.vggish)
    start = time.perf_counter()
    evaluation = evaluate(
        args.real,
        args.generated,
        judge=judge,
        run=args.run,
        classes=class_list(args.classes),
        crop=args.crop,
        seed=args.seed,
        vggish=vggish,
        progress=not args.quiet,
        ema=False if args.no_ema else None,  # None: the generated folder's record decides
        checkpoint=args.checkpoint,
    )
    out = Path(args.out)
    report = write_report(evaluation, out, run=args.run)
    if judge is None:
        evaluation.judge.save(out / "classifier.pt")
    headers, rows = table_rows(evaluation)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    overall = evaluation.metrics["overall"]
    print(
        f"Inception Score {overall['inception_score']:.2f} "
        f"(real {overall['inception_score_real']:.2f}); "
        f"classifier held-out accuracy {100 * (evaluation.judge.accuracy or 0):.1f} %"
    )
    print(
        f"report: {report}  metrics: {out / 'metrics.json'}  ({time.perf_counter() - start:.0f} s)"
    )
    return 0
