"""The dataset formats: one entry per layout avloc reads, and the one list of them.

Setting `data.format` takes a name of this table; `data.load_dataset` calls its reader,
`data.check_layout` tells layouts apart by their files, `avloc data export-gt` writes the
formats that can export their ground truth. Readers and exporters are named, not
imported: this module imports nothing, so settings can be checked without loading data.
Adding a dataset is one entry here and its reader in avloc/data/.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Format:
    name: str  # the value of setting data.format
    about: str  # one line: what the layout is
    reader: str  # "module:function" (cfg: DataConfig, root: Path | None) -> Dataset
    layout_files: tuple[str, ...] = ()  # files or folders only this layout has, under DIR
    needs_root: bool = True  # False: generated data (a folder is optional)
    export_gt: str | None = None  # "module:function" (root, out, cfg) -> counts, or None


FORMATS = {f.name: f for f in (
    Format("synthetic", "generated AVE-like event (or action) data: the embedded demo",
           "avloc.data.synthetic:make_synthetic", needs_root=False),
    Format("ave", "AVE as released (AVE-ECCV18): Annotations.txt, *_order.h5, feature .h5",
           "avloc.data.ave:load_ave", ("Annotations.txt",)),
    Format("anet12", "ActivityNet 1.2 in the W-TALC layout: annotation .npy, I3D features",
           "avloc.data.anet:load_anet12",
           ("ActivityNet1.2-Annotations", "ActivityNet1.2-I3D-JOINTFeatures.npy"),
           export_gt="avloc.data.anet:export_anet_gt"),
    Format("generic", "your own videos: annotations.json + features/<video>.npz",
           "avloc.data.generic:load_generic", ("annotations.json",)),
    Format("thumos14", "THUMOS'14 as ActionFormer ships it: thumos14.json + <video>.npy",
           "avloc.data.thumos:load_thumos14",
           ("annotations/thumos14.json", "thumos14.json", "i3d_features"),
           export_gt="avloc.data.thumos:export_thumos_gt"),
    Format("thumos14_wtalc", "THUMOS'14 in the W-TALC layout: Thumos14reduced .npy files",
           "avloc.data.thumos:load_thumos14_wtalc",
           ("Thumos14reduced-Annotations", "Thumos14reduced-I3D-JOINTFeatures.npy"),
           export_gt="avloc.data.thumos:export_thumos_gt"),
    Format("llp", "Look, Listen and Parse (AVVP-ECCV20): AVVP CSVs + feats/ or features/",
           "avloc.data.llp:load_llp", ("AVVP_train.csv", "data/AVVP_train.csv")),
    Format("llp_synthetic", "generated LLP-like parsing data (on the real LLP lists when given)",
           "avloc.data.synthetic_llp:make_llp_synthetic", needs_root=False),
)}
EXPORTS_GT = tuple(name for name, f in FORMATS.items() if f.export_gt)
