"""Dataset specs and the file-based formats: CAV-MAE manifests, ESC-50, Speech Commands.

Spec strings (``parse_data_spec``):

- ``synthetic`` or ``synthetic:classes=10,size=2000,eval_size=500,difficulty=0`` (built-in
  default; ``difficulty`` a number in [0, 1], see ``diffmavil.data.synthetic``)
- ``manifest:/path/data.json`` or ``manifest:/path/data.csv`` (entries: wav, video or
  frames, labels; optional split)
- ``esc50:/path`` (``audio/*.wav``, ``meta/esc50.csv``; ``fold`` picks the eval fold)
- ``spc:/path`` (Speech Commands class folders, ``validation_list.txt``,
  ``testing_list.txt``)
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch

from diffmavil.config import ModelConfig
from diffmavil.data.common import AVDataset, DataError, Split, check_split, warn_skip
from diffmavil.data.fbank import AUDIOSET, ESC50, SPC, NormStats, audio_features
from diffmavil.data.media import load_audio, load_video, probe_audio, probe_video
from diffmavil.data.synthetic import (
    DIFFICULTY_HELP,
    SyntheticAVDataset,
    SyntheticOptions,
    check_difficulty,
)

SPEC_KINDS: tuple[str, ...] = ("synthetic", "manifest", "esc50", "spc")
SPEC_HELP = (
    "allowed: 'synthetic[:classes=N,size=N,eval_size=N,difficulty=0-1]', "
    "'manifest:/path.json|.csv', "
    "'esc50:/path', 'spc:/path'"
)
SPC_SPECIAL = "_background_noise_"
ESC50_FOLDS = (1, 2, 3, 4, 5)


@dataclass(frozen=True)
class DataSpec:
    """A parsed spec: its kind, path (file formats) and options (synthetic)."""

    kind: str
    path: Path | None = None
    options: dict[str, int | float] = field(default_factory=dict)

    def __str__(self) -> str:
        if self.path is not None:
            return f"{self.kind}:{self.path}"
        opts = ",".join(f"{k}={v}" for k, v in self.options.items())
        return f"{self.kind}:{opts}" if opts else self.kind


def parse_data_spec(spec: str) -> DataSpec:
    """``"esc50:/data/ESC-50"`` -> DataSpec; raises DataError naming the spec and the forms."""
    text = spec.strip()
    kind, _, rest = text.partition(":")
    kind = kind.strip().lower()
    if kind not in SPEC_KINDS:
        raise DataError(f"unknown data spec {spec!r}; {SPEC_HELP}")
    if kind == "synthetic":
        allowed = {f.name for f in fields(SyntheticOptions)}
        options: dict[str, int | float] = {}
        for part in filter(None, (p.strip() for p in rest.split(","))):
            key, sep, value = part.partition("=")
            key = key.strip()
            if not sep or key not in allowed:
                raise DataError(
                    f"data spec {spec!r}: bad option {part!r}; allowed: "
                    f"{', '.join(sorted(allowed - {'difficulty'}))} as key=integer, "
                    f"difficulty=number"
                )
            if key == "difficulty":
                options[key] = _difficulty(spec, value)
                continue
            try:
                options[key] = int(value)
            except ValueError:
                raise DataError(f"data spec {spec!r}: {key}={value!r} is not an integer") from None
        return DataSpec("synthetic", None, options)
    if not rest.strip():
        raise DataError(f"data spec {spec!r} needs a path: '{kind}:/path'; {SPEC_HELP}")
    path = Path(rest.strip()).expanduser()
    if kind == "manifest" and path.suffix.lower() not in (".json", ".csv"):
        raise DataError(f"data spec {spec!r}: a manifest is a .json or .csv file")
    if not path.exists():
        raise DataError(f"data spec {spec!r}: {path} does not exist")
    return DataSpec(kind, path, {})


def _difficulty(spec: str, value: str) -> float:
    try:
        return check_difficulty(float(value))
    except (ValueError, DataError):
        raise DataError(
            f"data spec {spec!r}: difficulty={value.strip()!r} is not allowed; {DIFFICULTY_HELP}"
        ) from None


@dataclass(frozen=True)
class ClipEntry:
    """One file-based clip: its audio, optional video (file or frame folder) and label(s)."""

    wav: Path
    video: Path | None
    labels: tuple[int, ...]


class FileAVDataset(AVDataset):
    """Clips read from files. Bad files are dropped at build time (headers probed) and, if
    one still fails in ``__getitem__``, the next good item is returned; both are counted in
    ``skipped`` (the run-time count is per process: DataLoader workers keep their own)."""

    def __init__(
        self,
        config: ModelConfig,
        split: Split,
        entries: list[ClipEntry],
        class_names: list[str],
        *,
        stats: NormStats,
        multi_label: bool,
        has_video: bool,
        source: str,
        cache: str | None = None,
        skipped: int = 0,
    ):
        super().__init__(config, split, stats, cache)
        self.source = source
        self.class_names = class_names
        self.num_classes = len(class_names)
        self.multi_label = multi_label
        self.has_video = has_video
        self.skipped = skipped
        self.entries: list[ClipEntry] = []
        for entry in entries:
            reason = probe_audio(entry.wav)
            if reason is None and entry.video is not None and has_video:
                reason = probe_video(entry.video)
                path = entry.video
            else:
                path = entry.wav
            if reason is not None:
                warn_skip(path, reason)
                self.skipped += 1
            else:
                self.entries.append(entry)
        if not self.entries:
            raise DataError(
                f"{source} ({split}): no usable files ({self.skipped} skipped); "
                "expected readable audio files (wav/flac/ogg) and mp4s or image folders"
            )
        self._bad: set[int] = set()

    def __len__(self) -> int:
        return len(self.entries)

    def fingerprint(self) -> str:
        return f"{self.source}|{self.split}|{len(self.entries)}"

    def _label(self, labels: tuple[int, ...]) -> torch.Tensor:
        if self.multi_label:
            target = torch.zeros(self.num_classes)
            target[list(labels)] = 1.0
            return target
        return torch.tensor(labels[0], dtype=torch.long)

    def _load_entry(self, index: int) -> dict[str, Any]:
        entry = self.entries[index]
        spec = self.config.audio
        wave = load_audio(entry.wav, spec.sample_rate)
        video_spec = self.config.video
        if self.has_video and entry.video is not None:
            video = load_video(entry.video, video_spec)
        else:
            video = torch.zeros(
                video_spec.channels, video_spec.frames, video_spec.height, video_spec.width
            )
        return {
            "audio": audio_features(wave, spec.sample_rate, spec, self.stats),
            "video": video,
            "label": self._label(entry.labels),
            "index": index,
        }

    def load_item(self, index: int) -> dict[str, Any]:
        for step in range(len(self.entries)):
            candidate = (index + step) % len(self.entries)
            if candidate in self._bad:
                continue
            try:
                return self._load_entry(candidate)
            except Exception as error:  # any decoding failure skips the file
                self._bad.add(candidate)
                self.skipped += 1
                warn_skip(self.entries[candidate].wav, f"failed to load ({error})")
        raise DataError(f"{self.source} ({self.split}): every file failed to load")


# --------------------------------------------------------------------------------------
# Manifests (CAV-MAE style)
# --------------------------------------------------------------------------------------


def _read_manifest(path: Path) -> tuple[list[dict[str, Any]], list[str] | None]:
    try:
        if path.suffix.lower() == ".json":
            payload = json.loads(path.read_text())
            if isinstance(payload, dict):
                if not isinstance(payload.get("data"), list):
                    raise DataError(f"manifest {path}: a JSON object needs a 'data' list")
                names = payload.get("classes")
                return payload["data"], [str(n) for n in names] if names else None
            if isinstance(payload, list):
                return payload, None
            raise DataError(f"manifest {path}: expected {{'data': [...]}} or a list of entries")
        with path.open(newline="") as handle:
            return list(csv.DictReader(handle)), None
    except (OSError, json.JSONDecodeError, UnicodeDecodeError, csv.Error) as error:
        raise DataError(f"manifest {path}: cannot read ({error})") from None


def _split_labels(value: Any) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value if str(v).strip()]
    return [part.strip() for part in str(value).split(",") if part.strip()]


def manifest_dataset(
    path: Path, config: ModelConfig, split: Split, stats: NormStats | None, cache: str | None
) -> FileAVDataset:
    """Entries ``{"wav", "video" | "frames", "labels", ["split"]}``; relative paths are taken
    from the manifest's folder; labels are names or indices, comma-separated."""
    rows, class_names = _read_manifest(path)
    if rows and any(str(r.get("split") or "").strip() for r in rows):
        rows = [r for r in rows if str(r.get("split") or "").strip() == split]
    base = path.parent
    parsed: list[tuple[Path, Path | None, list[str]]] = []
    for number, row in enumerate(rows):
        if not isinstance(row, dict) or not row.get("wav"):
            raise DataError(f"manifest {path}: entry {number} has no 'wav' field")
        video_field = row.get("video") or row.get("frames")
        labels = _split_labels(row.get("labels", ""))
        if not labels:
            raise DataError(f"manifest {path}: entry {number} has no 'labels'")
        video = base / str(video_field) if video_field else None
        parsed.append((base / str(row["wav"]), video, labels))
    if not parsed:
        raise DataError(f"manifest {path}: no entries for split {split!r}")
    all_labels = sorted({label for _, _, labels in parsed for label in labels})
    if class_names is None:
        if all(label.isdigit() for label in all_labels):
            class_names = [str(i) for i in range(max(int(label) for label in all_labels) + 1)]
        else:
            class_names = all_labels
    lookup = {name: i for i, name in enumerate(class_names)}
    entries = []
    for wav, video, labels in parsed:
        try:
            ids = tuple(lookup[label] if label in lookup else int(label) for label in labels)
        except ValueError:
            raise DataError(
                f"manifest {path}: label {labels} not among classes {class_names[:10]}"
            ) from None
        entries.append(ClipEntry(wav, video, ids))
    return FileAVDataset(
        config,
        split,
        entries,
        class_names,
        stats=stats or AUDIOSET,
        multi_label=any(len(e.labels) > 1 for e in entries),
        has_video=any(e.video is not None for e in entries),
        source=f"manifest:{path}",
        cache=cache,
    )


# --------------------------------------------------------------------------------------
# ESC-50 and Speech Commands
# --------------------------------------------------------------------------------------


def esc50_dataset(
    root: Path,
    config: ModelConfig,
    split: Split,
    fold: int | None,
    stats: NormStats | None,
    cache: str | None,
) -> FileAVDataset:
    """ESC-50: train = folds other than ``fold`` (default 1); val and test = ``fold``."""
    fold = 1 if fold is None else fold
    if fold not in ESC50_FOLDS:
        raise DataError(f"esc50: fold {fold} not allowed; allowed: 1-5")
    meta = root / "meta" / "esc50.csv"
    if not meta.is_file():
        raise DataError(f"esc50:{root}: missing metadata file {meta}")
    with meta.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    needed = {"filename", "fold", "target", "category"}
    if not rows or not needed <= set(rows[0]):
        raise DataError(f"{meta}: needs columns {', '.join(sorted(needed))}")
    names: dict[int, str] = {}
    entries = []
    for row in rows:
        target = int(row["target"])
        names[target] = row["category"]
        in_fold = int(row["fold"]) == fold
        if in_fold == (split == "train"):
            continue
        entries.append(ClipEntry(root / "audio" / row["filename"], None, (target,)))
    class_names = [names.get(i, str(i)) for i in range(max(names) + 1)]
    return _audio_only(config, split, entries, class_names, stats or ESC50, f"esc50:{root}", cache)


def _audio_only(
    config: ModelConfig,
    split: Split,
    entries: list[ClipEntry],
    class_names: list[str],
    stats: NormStats,
    source: str,
    cache: str | None,
) -> FileAVDataset:
    """A single-label, audio-only dataset (ESC-50, Speech Commands): the video is zeros."""
    return FileAVDataset(
        config,
        split,
        entries,
        class_names,
        stats=stats,
        multi_label=False,
        has_video=False,
        source=source,
        cache=cache,
    )


def _read_list(path: Path) -> set[str]:
    if not path.is_file():
        return set()
    return {line.strip() for line in path.read_text().splitlines() if line.strip()}


def spc_dataset(
    root: Path, config: ModelConfig, split: Split, stats: NormStats | None, cache: str | None
) -> FileAVDataset:
    """Speech Commands: val/test from the two lists, train = every other wav."""
    class_names = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name != SPC_SPECIAL)
    if not class_names:
        raise DataError(f"spc:{root}: no class folders (expected e.g. {root}/yes/*.wav)")
    lists = {"val": root / "validation_list.txt", "test": root / "testing_list.txt"}
    if split != "train" and not lists[split].is_file():
        raise DataError(f"spc:{root}: missing metadata file {lists[split]}")
    val, test = _read_list(lists["val"]), _read_list(lists["test"])
    entries = []
    for label, name in enumerate(class_names):
        for wav in sorted((root / name).glob("*.wav")):
            relative = f"{name}/{wav.name}"
            member = "val" if relative in val else "test" if relative in test else "train"
            if member == split:
                entries.append(ClipEntry(wav, None, (label,)))
    if split != "train":
        # Listed files that are absent on disk are missing files: count them.
        present = {f"{e.wav.parent.name}/{e.wav.name}" for e in entries}
        missing = sorted((val if split == "val" else test) - present)
        entries += [
            ClipEntry(root / rel, None, (class_names.index(rel.split("/")[0]),))
            for rel in missing
            if rel.split("/")[0] in class_names
        ]
    return _audio_only(config, split, entries, class_names, stats or SPC, f"spc:{root}", cache)


def build_dataset(
    spec: str,
    config: ModelConfig,
    split: Split = "train",
    *,
    seed: int = 0,
    stats: NormStats | None = None,
    fold: int | None = None,
    cache: str | None = None,
) -> AVDataset:
    """The one entry point: a spec string -> a Dataset of ``{"audio", "video", "label",
    "index"}`` items at the config's input sizes.

    stats: fbank normalisation (default: AudioMAE's for the format, AUDIOSET for manifests,
    measured for synthetic). fold: ESC-50 eval fold. cache: None, "memory" or a directory.
    """
    split = check_split(split)
    parsed = parse_data_spec(spec)
    if parsed.kind == "synthetic":
        return SyntheticAVDataset(
            config,
            split,
            options=SyntheticOptions(**parsed.options),
            seed=seed,
            stats=stats,
            cache=cache,
        )
    assert parsed.path is not None
    if parsed.kind == "manifest":
        return manifest_dataset(parsed.path, config, split, stats, cache)
    if not parsed.path.is_dir():
        raise DataError(f"data spec {spec!r}: {parsed.path} is not a directory")
    if parsed.kind == "esc50":
        return esc50_dataset(parsed.path, config, split, fold, stats, cache)
    return spc_dataset(parsed.path, config, split, stats, cache)
