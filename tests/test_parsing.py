"""The parsing head (model.head=parsing) and its losses against naive references, threshold
tuning on validation only, and learning on LLP-structured synthetic data: the audio-visual
model beats audio-only and visual-only and puts heard-only and seen-only events in their
own modality."""

from __future__ import annotations

import contextlib
import io
import math

import numpy as np
import pytest
import torch

from avloc.config import LossConfig, ModelConfig, load_config
from avloc.losses import (
    parsing_continuity_loss,
    parsing_mil_loss,
    parsing_pseudo_loss,
    parsing_total_loss,
)
from avloc.model import AVLocModel
from avloc.util.errors import AvlocError

pytestmark = pytest.mark.usefixtures("one_torch_thread")
C = 5


def parsing_model(**kw) -> AVLocModel:
    cfg = ModelConfig(d_x=16, head="parsing", dropout=0.0, **kw)
    torch.manual_seed(0)
    return AVLocModel(cfg, 6, 7, C).eval()


def batch(B=3, L=10, lengths=(10, 7, 4)):
    g = torch.Generator().manual_seed(1)
    mask = torch.arange(L)[None, :] < torch.tensor(lengths)[:, None]  # (B, L)
    return torch.randn(B, L, 6, generator=g), torch.randn(B, L, 7, generator=g), mask


# ---- the model ------------------------------------------------------------------------------
def test_audio_events_come_from_the_audio_stream():
    """0 stages: the audio head sees X_u only, so the visual input cannot move audio events;
    with cross attention it can (each stream is attended under the other's guidance)."""
    a, v, mask = batch()
    for stages, moves in ((0, False), (2, True)):
        model = parsing_model(stages=stages)
        out1 = model(a, v, mask)
        out2 = model(a, v + torch.randn_like(v), mask)
        audio_moved = not torch.allclose(out1["frame"][..., 0, :], out2["frame"][..., 0, :])
        assert audio_moved == moves
        assert not torch.allclose(out1["frame"][..., 1, :], out2["frame"][..., 1, :])


def test_streams_are_eq3_before_the_concatenation_of_eq4():
    model = AVLocModel(ModelConfig(d_x=16, stages=2, dropout=0.0), 6, 7, C).eval()
    a, v, mask = batch()
    xu, xv = model.embed(a, v)
    fused, _ = model.fusion(xu, xv, mask)
    su, sv, _ = model.fusion.streams(xu, xv, mask)
    assert torch.equal(fused, torch.cat([su, sv], dim=-1))


def naive_attention_pool(model, a, v, mask):
    """HAN's attentive MMIL pooling, written out per video, class and stream."""
    xs = model.embed(a, v)
    if model.fusion is not None:
        xs = list(model.fusion.streams(xs[0], xs[1], mask)[:2])
    heads = [h(x) for h, x in zip(model.stream_heads, xs, strict=True)]
    B, M = a.shape[0], len(heads)
    video, stream = torch.zeros(B, C), torch.zeros(B, M, C)
    for b in range(B):
        n = int(mask[b].sum())
        for c in range(C):
            w = [torch.softmax(h["time_att"][b, :n, c], 0) for h in heads]  # over time
            mod = torch.softmax(torch.stack([h["modality_att"][b, :n, c] for h in heads]), 0)
            for m, h in enumerate(heads):
                stream[b, m, c] = (w[m] * h["p"][b, :n, c]).sum()
                video[b, c] += (w[m] * h["p"][b, :n, c] * mod[m]).sum()
    return video, stream


@pytest.mark.parametrize("modality, stages", [("av", 2), ("av", 0), ("audio", 0)])
def test_attentive_pooling_matches_han_over_real_segments(modality, stages):
    model = parsing_model(modality=modality, stages=stages)
    a, v, mask = batch()
    out = model(a, v, mask)
    video, stream = naive_attention_pool(model, a, v, mask)
    torch.testing.assert_close(out["video"], video, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out["stream"], stream, rtol=1e-5, atol=1e-6)
    assert out["frame"].shape == (3, 10, 2 if modality == "av" else 1, C)


def test_topk_pooling_is_the_max_over_streams_of_the_top_k_mean():
    model = parsing_model(parsing_pool="topk")
    a, v, mask = batch()
    out = model(a, v, mask)
    for b in range(3):
        n = int(mask[b].sum())
        k = math.ceil(n / 8)
        top = out["frame"][b, :n].sort(dim=0, descending=True).values[:k].mean(0)  # (M, C)
        torch.testing.assert_close(out["stream"][b], top)
        torch.testing.assert_close(out["video"][b], top.amax(0))


def test_padding_never_reaches_real_segments():
    model = parsing_model(stages=2)
    a, v, mask = batch()
    alone = model(a[2:], v[2:], mask[2:])
    a2, v2 = a.clone(), v.clone()
    a2[2, 4:] = 1e3  # garbage in the padding of video 2
    padded = model(a2, v2, mask)
    torch.testing.assert_close(padded["frame"][2, :4], alone["frame"][0, :4])
    torch.testing.assert_close(padded["video"][2], alone["video"][0])


def test_mu_gates_the_events_and_predict_copies_a_single_stream():
    from avloc.data.base import Video
    from avloc.scoring.predict import predict

    model = parsing_model()
    a, v, mask = batch()
    out = model(a, v, mask)
    assert (out["frame"] <= out["mu"][..., None] + 1e-6).all()  # p = mu * sigmoid(h) <= mu
    uni = parsing_model(modality="visual", stages=0)
    videos = [Video("x", a[0].numpy(), v[0].numpy(), np.zeros(C, np.float32))]
    pred = predict(uni, videos)[0]
    np.testing.assert_array_equal(pred.audio, pred.visual)  # one stream stands for both
    assert pred.p.shape == (10, C + 1) and pred.video.shape == (C,)
    np.testing.assert_allclose(pred.p[:, 1:], pred.visual)


# ---- the losses -----------------------------------------------------------------------------
def bce(p, y):
    p = min(max(p, 1e-7), 1 - 1e-7)
    return -(y * math.log(p) + (1 - y) * math.log(1 - p))


def random_outputs(B=3, L=10, M=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    frame = torch.rand(B, L, M, C, generator=g)
    mu = torch.rand(B, L, M, generator=g)
    return {"frame": frame, "mu": mu, "video": torch.rand(B, C, generator=g),
            "stream": torch.rand(B, M, C, generator=g), "feat": torch.randn(B, L, 8, generator=g)}


def test_mil_is_bce_with_hans_guided_smoothed_terms():
    out = random_outputs()
    labels = torch.tensor([[1, 0, 1, 0, 0], [0, 0, 0, 0, 1], [0] * 5], dtype=torch.float32)
    cfg = LossConfig(parsing_smooth_audio=1.0, parsing_smooth_visual=0.9,
                     parsing_modality_weight=0.5)
    want = 0.0
    for b in range(3):
        for c in range(C):
            y = float(labels[b, c])
            want += bce(float(out["video"][b, c]), y) / 15
            for m, a in enumerate((1.0, 0.9)):
                want += 0.5 * bce(float(out["stream"][b, m, c]), a * y + (1 - a) / 2) / 15
    assert float(parsing_mil_loss(out, labels, cfg)) == pytest.approx(want, rel=1e-5)
    one = random_outputs(M=1)  # a uni-modal model: only the video-level term
    plain = sum(bce(float(one["video"][b, c]), float(labels[b, c]))
                for b in range(3) for c in range(C)) / 15
    assert float(parsing_mil_loss(one, labels, cfg)) == pytest.approx(plain, rel=1e-5)


def test_continuity_and_pseudo_losses_match_naive_loops():
    from avloc.losses import gaussian_window

    out = random_outputs(L=6)
    out["frame"][0, :, 0, 0] = torch.tensor([0.95, 0.9, 0.92, 0.1, 0.05, 0.1])  # confident
    mask = torch.tensor([[True] * 6, [True] * 4 + [False] * 2, [True] * 6])
    labels = torch.tensor([[1, 0, 0, 1, 0], [0, 1, 0, 0, 0], [0] * 5], dtype=torch.float32)
    cfg = LossConfig(cont_window=2, cont_sigma=1.0, pseudo_neighbors=2, pseudo_tau=0.8)
    g = gaussian_window(3, 1.0).tolist()

    def smooth(x, n, t, weights):
        pairs = [(weights[i + 1], x[t - i]) for i in (-1, 0, 1) if 0 <= t - i < n]
        return sum(w * v for w, v in pairs) / sum(w for w, _ in pairs)

    cont, pseu = 0.0, 0.0
    for b in range(3):
        n = int(mask[b].sum())
        own = [c for c in range(C) if labels[b, c] > 0]
        per_c = 0.0
        for m in range(2):
            mu = out["mu"][b, :n, m].tolist()
            p_hat = [max([float(out["frame"][b, t, m, c]) for c in own], default=0.0)
                     for t in range(n)]
            for t in range(n):
                per_c += abs(mu[t] - smooth(mu, n, t, g)) / (2 * n)
                if own:
                    per_c += abs(mu[t] - smooth(p_hat, n, t, g)) / (2 * n)
                for c in own:
                    p = out["frame"][b, :n, m, c].tolist()
                    q = smooth(p, n, t, [1.0, 1.0, 1.0])
                    if q >= 0.8 or q <= 0.2:
                        pseu += bce(p[t], 1.0 if q >= 0.8 else 0.0) / (n * 2 * len(own)) / 3
        cont += per_c / 3
    assert float(parsing_continuity_loss(out, mask, labels, cfg)) == pytest.approx(cont, rel=1e-5)
    assert float(parsing_pseudo_loss(out, mask, labels, cfg)) == pytest.approx(pseu, rel=1e-5)
    assert pseu > 0


def test_total_loss_weights_switch_terms_and_gradients_are_finite():
    model = parsing_model(stages=1)
    model.train()
    a, v, mask = batch()
    labels = torch.tensor([[1, 1, 0, 0, 0], [0, 0, 1, 0, 0], [0] * 5], dtype=torch.float32)
    out = model(a, v, mask)
    loss, parts = parsing_total_loss(out, mask, labels, LossConfig(alpha=0, beta=0, gamma=0))
    assert set(parts) == {"mil"}
    loss, parts = parsing_total_loss(out, mask, labels, LossConfig(alpha=0.8, beta=0.8, gamma=1))
    assert set(parts) == {"mil", "cas", "cont", "pseu"}
    want = parts["mil"] + 0.8 * parts["cas"] + 0.8 * parts["cont"] + parts["pseu"]
    torch.testing.assert_close(loss, want)
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_settings_that_cannot_work_are_refused():
    with pytest.raises(AvlocError, match="loss.beta"):
        load_config("llp_demo", ["model.parsing_mu=false", "loss.beta=0.8"])
    with pytest.raises(AvlocError, match="localize.parsing_audio_threshold"):
        load_config("llp_demo", ["localize.parsing_audio_threshold=0"])
    with pytest.raises(AvlocError, match="loss.parsing_smooth_visual"):
        load_config("llp_demo", ["loss.parsing_smooth_visual=1.5"])


# ---- training, selection and tuning -----------------------------------------------------------
TINY = ["data.synth_videos=60", "model.d_x=16", "train.epochs=2", "train.batch_size=16",
        "train.progress=false"]


def quiet_train(cfg, root, out, ds=None):
    from avloc.train import train

    with contextlib.redirect_stdout(io.StringIO()):
        return train(cfg, root, out, dataset=ds)


def test_heads_and_data_must_match(tmp_path):
    from avloc.data import load_dataset

    cfg = load_config("llp_demo", TINY)
    event = load_config("demo", ["data.synth_videos=20", "model.head=parsing", *TINY[1:]])
    with pytest.raises(AvlocError, match="model.head=parsing: dataset synthetic is event data"):
        quiet_train(event, None, tmp_path / "a")
    fused = load_config("llp_demo", [*TINY, "model.head=fused"])
    with pytest.raises(AvlocError, match="use model.head=parsing"):
        quiet_train(fused, None, tmp_path / "b")
    bad = load_config("llp_demo", [*TINY, "train.select_metric=accuracy"])
    with pytest.raises(AvlocError, match="parsing data is scored by segment_level.audio"):
        quiet_train(bad, None, tmp_path / "c", load_dataset(cfg.data, None))
    assert not any((tmp_path / x).exists() for x in "abc")


def official_reference(ds, split: str, model) -> dict:
    """The LLP protocol on the model's own outputs, written plainly from main_avvp.py's
    `eval`: o = video probability >= 0.5; Pa = (frame audio >= 0.5) * o, the same for visual;
    ground truth GT[c, onset:offset] = 1; scored by the naive per-video loop."""
    from test_metrics_parsing import naive_scores

    from avloc.scoring.predict import predict

    pa, pv, ga, gv = [], [], [], []
    for p in predict(model, ds.splits[split]):
        o = (p.video >= 0.5).astype(int)  # (C,)
        pa.append(((p.audio >= 0.5).astype(int) * o).T)  # (C, T)
        pv.append(((p.visual >= 0.5).astype(int) * o).T)
        truth = {m: np.zeros((ds.num_classes, len(p.p)), int) for m in ("audio", "visual")}
        for s in ds.annotations[p.vid].segments:
            truth[s.modality][ds.classes.index(s.label), int(s.start):int(s.end)] = 1
        ga.append(truth["audio"])
        gv.append(truth["visual"])
    return naive_scores(pa, pv, ga, gv)


def test_run_reports_the_protocol_and_tunes_thresholds_on_validation_only(tmp_path):
    from avloc.checkpoint import load_model
    from avloc.data import load_dataset
    from avloc.scoring.eval_run import score_with_best

    cfg = load_config("llp_demo", TINY)
    ds = load_dataset(cfg.data, None)
    metrics = quiet_train(cfg, None, tmp_path / "run", ds)
    assert metrics["select_metric"] == "segment_level.type_av"
    assert all("val_segment_level.type_av" in r for r in metrics["history"])
    t = metrics["tuned_thresholds"]
    assert t["source"] == "tuned on the validation split"
    test = metrics["test"]
    # the main numbers are the protocol's (0.5), on the best checkpoint's outputs
    assert test["thresholds"] == {"video": 0.5, "audio": 0.5, "visual": 0.5,
                                  "source": "the LLP protocol"}
    model, _, _ = load_model(tmp_path / "run")
    want = official_reference(ds, "test", model)
    for level in ("segment_level", "event_level"):
        assert set(test[level]) == {"audio", "visual", "audio_visual", "type_av", "event_av"}
        for k, v in want[level].items():
            assert test[level][k] == pytest.approx(v, abs=1e-12)
    # the tuned thresholds are reported beside, labelled
    assert test["tuned"]["thresholds"] == t
    assert set(test["tuned"]) == {"segment_level", "event_level", "thresholds"}
    # the test split's content never moves the thresholds
    rng = np.random.default_rng(0)
    for vid in ds.splits["test"]:
        vid.audio[:] = rng.standard_normal(vid.audio.shape)
    again = score_with_best(tmp_path / "run" / "best.pt", ds, metrics_cfg(tmp_path / "run"))
    assert again["tuned_thresholds"] == t
    assert again["val"] == metrics["val"]


def metrics_cfg(run):
    from avloc.runs.layout import read_run_config

    return read_run_config(run)


def test_eval_prints_the_protocol_first_and_the_tuned_beside(tmp_path, capsys):
    from avloc.cli import main

    quiet_train(load_config("llp_demo", TINY), None, tmp_path / "run")
    assert main(["eval", str(tmp_path / "run"), "--split", "test",
                 "--json", str(tmp_path / "m.json")]) == 0
    printed = capsys.readouterr().out
    assert "segment-level" in printed and "event-level" in printed
    assert "Type@AV" in printed and "Event@AV" in printed
    first, second = printed.index("of the LLP protocol"), printed.index("tuned on the valid")
    assert first < second and "not the LLP protocol" in printed[second - 200:second + 200]
    import json

    m = json.loads((tmp_path / "m.json").read_text())
    assert set(m) >= {"segment_level", "event_level", "videos", "thresholds",
                      "modality_specific", "tuned"}
    assert m["thresholds"]["video"] == 0.5 and m["thresholds"]["source"] == "the LLP protocol"
    assert set(m["tuned"]["thresholds"]) == {"video", "audio", "visual", "source"}
    assert 0 <= m["event_level"]["event_av"] <= 1
    # --untuned: no tuned thresholds applied or reported; the protocol's numbers unchanged
    assert main(["eval", str(tmp_path / "run"), "--split", "test", "--untuned",
                 "--json", str(tmp_path / "u.json")]) == 0
    printed = capsys.readouterr().out
    assert "tuned" not in printed
    u = json.loads((tmp_path / "u.json").read_text())
    assert "tuned" not in u
    assert u["segment_level"] == m["segment_level"] and u["event_level"] == m["event_level"]


@pytest.fixture(scope="module")
def learned(tmp_path_factory, llp_dir):
    """The audio-visual model and both uni-modal ones on synthetic features laid out on the
    real LLP files: real clip lists and labels, the real validation and test events."""
    from avloc.data import load_dataset

    common = ["data.synth_videos=1000", "model.d_x=64", "train.epochs=12",
              "train.batch_size=32", "train.lr=3e-3", "train.progress=false"]
    ds = load_dataset(load_config("llp_demo", common).data, llp_dir)
    torch.set_num_threads(1)
    out = {}
    for name, extra in (("av", []), ("audio", ["model.modality=audio", "model.stages=0"]),
                        ("visual", ["model.modality=visual", "model.stages=0"])):
        cfg = load_config("llp_demo", [*common, *extra])
        out[name] = quiet_train(cfg, llp_dir, tmp_path_factory.mktemp(name), ds)["test"]
    return out


def test_audio_visual_model_beats_either_modality_alone(learned):
    """Segment-level Type@AV at the protocol's 0.5 on the 1,200 real test clips' events:
    measured 71.1 (av), 63.4 (audio-only), 64.5 (visual-only) on one CPU; the margin asked
    for is two thirds of the gap."""
    av = learned["av"]["segment_level"]["type_av"]
    for uni in ("audio", "visual"):
        assert av > learned[uni]["segment_level"]["type_av"] + 0.04
        assert learned["av"]["event_level"]["type_av"] > learned[uni]["event_level"]["type_av"]


def test_per_modality_outputs_find_modality_specific_events(learned):
    """Of the segments where an event is heard but not seen (seen but not heard), the share
    the model puts in audio (visual) only, at the protocol's thresholds: measured 0.50 and
    0.82; a model with one stream cannot separate them (0 and 0)."""
    found = learned["av"]["modality_specific"]
    assert found["heard_only"] > 0.4 and found["seen_only"] > 0.65
    for uni in ("audio", "visual"):
        assert max(learned[uni]["modality_specific"].values()) < 0.2


def test_readme_parsing_table_is_what_the_demo_prints(tmp_path):
    """README's table of `avloc demo --task parsing` (one thread), within margins for other
    CPUs: 1.5 points per F-score, 6 points per share of modality-specific segments."""
    from docnumbers import readme_parsing_demo

    from avloc.demo import run_demo

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            results = run_demo(tmp_path / "demo", [], "parsing")
    finally:
        torch.set_num_threads(threads)
    names = {"full (2-stage cross attention, parsing head)": "full (2-stage, parsing head)",
             "audio-only": "audio-only", "visual-only": "visual-only",
             "0-stage (no cross attention)": "0-stage (no cross attention)"}
    for row, doc in readme_parsing_demo().items():
        m = results[names[row]]
        s, e, found = m["segment_level"], m["event_level"], m["modality_specific"]
        got = [100 * s[k] for k in ("audio", "visual", "audio_visual", "type_av", "event_av")]
        got += [100 * e["type_av"], 100 * found["heard_only"], 100 * found["seen_only"]]
        margins = [1.5] * 6 + [6.0, 6.0]
        assert all(abs(a - b) <= t for a, b, t in zip(doc, got, margins, strict=True)), (row,
                                                                                       doc, got)
