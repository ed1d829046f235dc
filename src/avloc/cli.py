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
presets: ave, anet12, demo (or a YAML file); settings are SECTION.NAME=VALUE
(sections data, model, loss, train, localize; see docs/paper-notes.md)"""


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
    from avloc.data import load_dataset
    from avloc.evaluate import evaluate_split, format_event_table
    from avloc.io import write_json_atomic
    from avloc.train import check_compatible

    model, cfg, ckpt = load_model(args.run)
    if args.data_format:
        cfg.data.format = args.data_format
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
        from avloc.metrics import format_map_table

        print(format_map_table(metrics))
        if args.predictions:
            write_json_atomic(args.predictions, results_json(action_detections(ds, preds, cfg)))
    if args.json:
        write_json_atomic(args.json, metrics)


def cmd_demo(args: argparse.Namespace) -> None:
    from avloc.demo import run_demo

    run_demo(Path(args.out), args.overrides)


def cmd_score(args: argparse.Namespace) -> None:
    from avloc.io import write_json_atomic
    from avloc.metrics import format_map_table, score_files

    metrics = score_files(args.gt, args.pred, args.subset)
    print(format_map_table(metrics))
    if args.json:
        write_json_atomic(args.json, metrics)


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
    from avloc.data.anet import export_anet_gt

    counts = export_anet_gt(Path(args.data), args.out)
    detail = ", ".join(f"{k} {v}" for k, v in counts.items())
    print(f"wrote ActivityNet ground truth to {args.out} ({detail})")


def add_data_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="convert datasets between layouts, export ground truth",
                       description="Dataset utilities (layouts: docs/datasets.md).")
    data_sub = p.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    c = data_sub.add_parser("convert", help="write the generic layout (.npz per video + JSON)",
                            description="Read AVE, ActivityNet 1.2 (W-TALC) or synthetic data and "
                            "write the generic layout: OUT/features/<vid>.npz + annotations.json.")
    c.add_argument("--format", required=True, choices=["ave", "anet12", "generic", "synthetic"])
    c.add_argument("--data", help="source dataset folder")
    c.add_argument("--out", required=True, help="new folder to write (must not exist or be empty)")
    c.add_argument("--config", help="preset or YAML for data settings (default: the format's)")
    c.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="e.g. data.snippet_seconds=1")
    c.set_defaults(func=cmd_data_convert)
    e = data_sub.add_parser("export-gt", help="ActivityNet 1.2 annotations (.npy) -> official JSON",
                            description="Write the official ActivityNet ground-truth JSON from "
                            "the W-TALC annotation .npy files, for `avloc score`.")
    e.add_argument("--data", required=True, help="folder with the ActivityNet1.2 .npy files")
    e.add_argument("--out", required=True, help="ground-truth JSON to write")
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
    p.add_argument("--config", default="ave", help="preset name (ave, anet12, demo) or YAML path")
    p.add_argument("--data", help="dataset folder (not needed for data.format=synthetic)")
    p.add_argument("--out", help="run folder to create")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                   help="setting overrides, e.g. model.stages=1 train.epochs=10")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="score a trained model on a split",
                       description="Event data: snippet accuracy (AVE protocol) and the oracle. "
                       "Action data: mAP@tIoU 0.5:0.05:0.95 (ActivityNet protocol).")
    p.add_argument("run", help="run folder (uses best.pt) or checkpoint file")
    p.add_argument("--data", help="dataset folder")
    p.add_argument("--split", default="test", choices=["train", "val", "test"])
    p.add_argument("--json", help="write the metrics here (JSON)")
    p.add_argument("--predictions", help="action data: write detections here (ActivityNet JSON)")
    p.add_argument("--data-format", help="override data.format stored in the checkpoint")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("demo", help="train and compare variants on the embedded synthetic data",
                       description="Full model vs audio-only, visual-only and naive fusion on "
                       "generated AVE-like data (a stand-in, not real data).")
    p.add_argument("--out", default="runs/demo", help="folder for the runs (default runs/demo)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="setting overrides")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("score", help="ActivityNet detection mAP of any results JSON",
                       description="Score a results file (ActivityNet format: {version, results: "
                       "{video: [{label, score, segment}]}}) against a ground-truth JSON with the "
                       "official protocol: mAP at tIoU 0.5:0.05:0.95 and their average.")
    p.add_argument("gt", help="ground-truth JSON (e.g. from `avloc data export-gt`)")
    p.add_argument("pred", help="results JSON to score")
    p.add_argument("--subset", help="score only ground-truth videos of this subset (validation)")
    p.add_argument("--json", help="write the metrics here (mAP, average_mAP, per_class_AP)")
    p.set_defaults(func=cmd_score)

    add_data_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except AvlocError as e:
        print(f"avloc: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("avloc: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
