"""Inference engine: merge rules, transforms, equality with a bare SAM 2 loop, modes, late objects,
batch runs (layout, palettes, determinism, resume, probabilities), errors, command line, torchrun."""
import dataclasses
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fvos_utils.base import io
from fvos_utils.base.paths import project_root, shared_samples_dir
from fvos_utils.method import infer, models, transforms
from fvos_utils.method.probs import load_probs

torch.set_num_threads(1)
SIZE = (48, 64)  # (H, W): not square, so quarter turns change the shape
LATE_FRAME = 3   # object 3 of the "late" clip is first annotated here


def _clip(*, n_frames: int = 6, late: bool = False, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Moving squares over a fixed texture: ``(frames (T, H, W, 3) uint8, truth (T, H, W) uint8)``.
    Ids 1 and 2 from frame 0; with ``late`` a third object from LATE_FRAME on."""
    h, w = SIZE
    rng = np.random.default_rng(seed)
    texture = rng.integers(60, 140, (h // 4, w // 4, 3), dtype=np.uint8).repeat(4, 0).repeat(4, 1)
    truth = np.zeros((n_frames, h, w), np.uint8)
    frames = np.empty((n_frames, h, w, 3), np.uint8)
    for t in range(n_frames):
        truth[t, 6:18, 4 + 3 * t:16 + 3 * t] = 1
        truth[t, 4 + 2 * t:14 + 2 * t, 40:52] = 2
        if late and t >= LATE_FRAME:
            truth[t, 30:42, 20 + 2 * t:30 + 2 * t] = 3
        frames[t] = texture
        for object_id, colour in ((1, (220, 30, 30)), (2, (30, 220, 30)), (3, (30, 30, 220))):
            frames[t][truth[t] == object_id] = colour
    return frames, truth


def _write_clip(root: Path, name: str, *, n_frames: int = 6, late: bool = False, ext: str = ".jpg",
                seed: int = 0) -> None:
    """:func:`_clip` on disk; frame 0 annotated and, with ``late``, LATE_FRAME too (YouTube-VOS
    style: that file holds every visible object)."""
    frames, truth = _clip(n_frames=n_frames, late=late, seed=seed)
    for t, frame in enumerate(frames):
        io.write_frame(root / "JPEGImages" / name / f"{t:05d}{ext}", frame)
    for t in (0, LATE_FRAME) if late else (0,):
        io.write_mask(root / "Annotations" / name / f"{t:05d}.png", truth[t])


@pytest.fixture(scope="module")
def predictor():
    return models.build_predictor("fvos_tiny", models.RANDOM, seed=0)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """Two videos: ``plain`` (ids 1, 2 from frame 0) and ``late`` (id 3 from LATE_FRAME)."""
    root = tmp_path_factory.mktemp("clips")
    _write_clip(root, "plain")
    _write_clip(root, "late", late=True, seed=1)
    return root


def _prompts(root: Path, name: str):
    data = io.VOSDataset(root)
    video = data.video(name)
    return video, infer.video_prompts(data, video)


def _run(root, out, *, ckpt=models.RANDOM, seed=0, scale=1.0, **kwargs):
    """infer.run_dataset with a freshly built fvos_tiny (``ckpt``, ``seed``, ``scale``), as the command
    line runs it."""
    kwargs.setdefault("progress", False)
    predictor = models.build_predictor("fvos_tiny", ckpt, scale=scale, seed=seed, device="cpu")
    return infer.run_dataset(predictor, root, out, model="fvos_tiny", weights=models.weights_label(ckpt, seed=seed),
                             **kwargs)


# ------------------------------------------------------------------------------------------ merging
def _merge_reference(scores, ids, rule, threshold):
    """Literal per-pixel version of the three rules."""
    n, h, w = scores.shape
    out = np.zeros((h, w), np.uint8)
    for y in range(h):
        for x in range(w):
            fg = [(ids[k], scores[k, y, x]) for k in range(n) if scores[k, y, x] > threshold]
            if not fg:
                continue
            if rule == "higher":
                out[y, x] = max(i for i, _ in fg)
            elif rule == "lower":
                out[y, x] = min(i for i, _ in fg)
            else:  # the largest score; among equal scores the lower id
                best = max(s for _, s in fg)
                out[y, x] = min(i for i, s in fg if s == best)
    return out


@pytest.mark.parametrize("rule", infer.MERGE_RULES)
@pytest.mark.parametrize("threshold", [0.0, 0.5])
def test_merge_rules_match_a_literal_pixel_loop(rule, threshold):
    rng = np.random.default_rng(3)
    scores = rng.integers(-2, 3, (4, 9, 11)).astype(np.float32) / 2  # coarse values: many ties
    ids = [7, 2, 9, 4]  # unsorted on purpose
    got = infer.merge_objects(scores, ids, rule=rule, threshold=threshold)
    assert got.dtype == np.uint8
    assert np.array_equal(got, _merge_reference(scores, ids, rule, threshold))


def test_merge_rejects_bad_input():
    scores = np.zeros((2, 3, 3))
    with pytest.raises(ValueError, match="unknown merge rule 'max'"):
        infer.merge_objects(scores, [1, 2], rule="max")
    with pytest.raises(ValueError, match=r"scores must be \(N=3"):
        infer.merge_objects(scores, [1, 2, 3])
    with pytest.raises(ValueError, match="1..254"):
        infer.merge_objects(scores, [1, 255])


# --------------------------------------------------------------------------------------- transforms
@pytest.mark.parametrize("name", transforms.TRANSFORM_NAMES)
def test_transforms_round_trip_exactly(name):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    stack = rng.normal(size=(2, 5, 7)).astype(np.float32)
    moved = transforms.apply(image, name)
    assert moved.shape[:2] == ((7, 5) if name in ("rot90", "rot270") else (5, 7))
    assert np.array_equal(transforms.invert(moved, name), image)
    assert np.array_equal(transforms.invert_stack(transforms.apply_stack(stack, name), name), stack)
    # the stack version moves every channel like the single-image version
    assert np.array_equal(transforms.apply_stack(stack, name)[1], transforms.apply(stack[1], name))


# ---------------------------------------------------------------------------------------- prompts
def test_prompts_take_each_objects_first_annotation(dataset):
    _, truth = _clip(late=True, seed=1)  # the clip of the fixture
    _, prompts = _prompts(dataset, "late")
    assert {i: t for i, (t, _) in prompts.items()} == {1: 0, 2: 0, 3: LATE_FRAME}
    for object_id, (t, mask) in prompts.items():
        assert mask.dtype == bool and np.array_equal(mask, truth[t] == object_id)


# ------------------------------------------------------------------------------- the SAM 2 reference
@pytest.mark.parametrize("rule", ["lower", "argmax"])
def test_kit_equals_a_bare_sam2_loop(predictor, dataset, rule):
    """SAM 2's own VOS loop (init_state on the JPEG folder, a mask per object, propagate): its
    logits > 0 written high id to low (lower id wins), after ``non_overlap_masks`` for argmax."""
    video, prompts = _prompts(dataset, "plain")
    with torch.inference_mode():
        state = predictor.init_state(str(video.frames[0].parent))
        for object_id, (t, mask) in prompts.items():
            predictor.add_new_mask(state, t, object_id, mask)
        expected = []
        for _, ids, logits in predictor.propagate_in_video(state):
            if rule == "argmax":
                logits = predictor._apply_non_overlapping_constraints(logits)
            labels = np.zeros(SIZE, np.uint8)
            for k in reversed(range(len(ids))):
                labels[(logits[k, 0] > 0).numpy()] = ids[k]
            expected.append(labels)
    got = infer.predict_video(predictor, video.frames, prompts, mode="separate", merge=rule, progress=False)
    assert np.array_equal(got.labels, np.stack(expected))
    assert len(np.unique(got.labels)) > 1  # not trivially empty


def test_joint_runs_the_objects_as_one_batch_and_agrees_with_separate(predictor, dataset, monkeypatch):
    """``joint`` stacks the objects that start together into one ``track_step`` per frame; each object
    still reads only its own memory, so its logits are ``separate``'s up to float rounding."""
    calls = []
    real = type(predictor)._run_single_frame_inference

    def counted(self, *args, **kwargs):
        calls.append(kwargs["batch_size"])
        return real(self, *args, **kwargs)

    monkeypatch.setattr(type(predictor), "_run_single_frame_inference", counted)
    video, prompts = _prompts(dataset, "late")
    separate = infer.propagate(predictor, video.frames, prompts, mode="separate", progress=False)
    # one call per prompt (3), then objects 1 and 2 each over frames 1-5 and object 3 over frames 4-5
    assert calls == [1] * (3 + 2 * 5 + 2)
    calls.clear()
    joint = infer.propagate(predictor, video.frames, prompts, mode="joint", progress=False)
    # the prompts, then objects 1 and 2 together over frames 1-5; object 3, first annotated on frame 3,
    # is a batch of its own on frames 4-5
    assert sorted(calls) == [1] * (3 + 2) + [2] * 5
    assert separate.object_ids == joint.object_ids == [1, 2, 3]
    assert torch.allclose(separate.logits, joint.logits, rtol=0, atol=1e-4)
    assert np.array_equal(infer.render(separate)[0], infer.render(joint)[0])


def test_late_object_joins_at_its_first_annotation(predictor, dataset):
    video, prompts = _prompts(dataset, "late")
    prop = infer.propagate(predictor, video.frames, prompts, mode="joint", progress=False)
    assert prop.logits.shape == (6, 3, 64, 64)
    assert (prop.logits[:LATE_FRAME, 2] == -1024).all()  # absent before it is annotated
    labels, _ = infer.render(prop, merge="higher")
    assert not (labels[:LATE_FRAME] == 3).any()
    # on its prompt frame SAM 2 returns the prompt itself (mask as output), up to resampling
    truth = prompts[3][1]
    iou = ((labels[LATE_FRAME] == 3) & truth).sum() / ((labels[LATE_FRAME] == 3) | truth).sum()
    assert iou > 0.8
    # adding object 3 later leaves objects 1 and 2 exactly as without it
    alone = infer.propagate(predictor, video.frames, {i: prompts[i] for i in (1, 2)}, mode="joint",
                            progress=False)
    assert torch.equal(alone.logits, prop.logits[:, :2])


def test_offloading_frames_and_state_changes_nothing(predictor, dataset):
    video, prompts = _prompts(dataset, "plain")
    plain = infer.propagate(predictor, video.frames, prompts, mode="joint", progress=False)
    offloaded = infer.propagate(predictor, video.frames, prompts, mode="joint", offload_video=True,
                                offload_state=True, progress=False)
    assert torch.equal(plain.logits, offloaded.logits)


@pytest.mark.parametrize("name", ["hflip", "rot90", "rot270"])
def test_tta_equals_running_on_a_transformed_copy(predictor, tmp_path, name):
    """Reference: the clip transformed on disk (lossless PNG frames), run plainly, labels turned back."""
    _write_clip(tmp_path / "orig", "v", late=True, ext=".png")
    data = io.VOSDataset(tmp_path / "orig")
    video = data.video("v")
    for frame in video.frames:
        io.write_frame(tmp_path / "moved" / "JPEGImages" / "v" / frame.name,
                       transforms.apply(io.read_frame(frame), name))
    for stem, path in video.annotations.items():
        io.write_mask(tmp_path / "moved" / "Annotations" / "v" / path.name,
                      transforms.apply(io.read_mask(path), name))
    moved_video, moved_prompts = _prompts(tmp_path / "moved", "v")
    reference = infer.predict_video(predictor, moved_video.frames, moved_prompts, progress=False)
    got = infer.predict_video(predictor, video.frames, infer.video_prompts(data, video), transform=name,
                              with_probs=True, progress=False)
    assert got.labels.shape == (6, *SIZE) and got.probs.shape == (6, 3, *SIZE)
    assert np.array_equal(got.labels, np.stack([transforms.invert(lab, name) for lab in reference.labels]))


# --------------------------------------------------------------------------------------- batch runs
def test_run_writes_a_palette_png_for_every_frame(dataset, tmp_path):
    out = tmp_path / "pred"
    summary = _run(dataset, out)
    assert summary["done"] == 2 and summary["skipped"] == 0 and summary["frames"] == 12
    assert sorted(p.name for p in out.iterdir()) == [".fvos_infer.late.json", ".fvos_infer.plain.json", "late", "plain"]
    palette = io.davis_palette()
    for name, ids in (("plain", {0, 1, 2}), ("late", {0, 1, 2, 3})):
        pngs = sorted((out / name).iterdir())
        assert [p.stem for p in pngs] == [f"{t:05d}" for t in range(6)]
        for png in pngs:
            img = Image.open(png)
            assert img.mode == "P" and img.size == (SIZE[1], SIZE[0])
            assert np.array_equal(np.array(img.getpalette(), np.uint8).reshape(-1, 3)[:256], palette)
            assert set(np.unique(np.asarray(img)).tolist()) <= ids
    record = json.loads(infer.record_path(out, "late").read_text())
    assert record["video"] == "late" and record["checkpoint"] == "random (seed 0)"
    assert record["settings"] == {"model": "fvos_tiny", "weights": "random (seed 0)", "image_size": 256,
                                  "sigmoid_scale": 20.0, "sigmoid_bias": -10.0, "mode": infer.DEFAULT_MODE,
                                  "merge": "higher", "transform": "identity", "save_probs": False,
                                  "device_type": "cpu"}
    annotations = hashlib.sha256()
    for frame in ("00000", f"{LATE_FRAME:05d}"):
        annotations.update(frame.encode() + b"\0" + (dataset / "Annotations" / "late" / f"{frame}.png").read_bytes())
    fingerprint = record["data"].pop("frames_fingerprint")
    assert re.fullmatch("[0-9a-f]{64}", fingerprint)
    assert record["data"] == {"frames": [f"{t:05d}.jpg" for t in range(6)], "frame_size": list(SIZE),
                              "annotations": ["00000", f"{LATE_FRAME:05d}"],
                              "annotations_sha256": annotations.hexdigest()}


def test_same_seed_gives_the_same_bytes(dataset, tmp_path):
    for run in ("a", "b"):
        _run(dataset, tmp_path / run, save_probs=True, mode="joint")
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.png"))
    assert len(files) == 12
    for rel in files:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel
    for name in ("plain", "late"):
        a, b = load_probs(tmp_path / "a" / f"{name}.npz"), load_probs(tmp_path / "b" / f"{name}.npz")
        assert np.array_equal(a.probs, b.probs)
    other_seed = tmp_path / "c"
    _run(dataset, other_seed, seed=1, mode="joint")
    assert any((tmp_path / "a" / rel).read_bytes() != (other_seed / rel).read_bytes() for rel in files)


def test_saved_probabilities_agree_with_the_labels(dataset, tmp_path):
    out = tmp_path / "pred"
    _run(dataset, out, save_probs=True, merge="lower")
    video = load_probs(out / "late.npz")
    assert video.probs.shape == (6, 3, *SIZE) and video.object_ids.tolist() == [1, 2, 3]
    assert video.frames == [f"{t:05d}" for t in range(6)]
    labels = np.stack([io.read_mask(out / "late" / f"{f}.png") for f in video.frames])
    # stored p * 255 >= 128 <=> logit >= 0 (up to logits within float rounding of 0). Not for argmax:
    # stored values tie where probabilities saturate (255 for several objects), logits do not.
    again = np.stack([infer.merge_objects(p, video.object_ids, rule="lower", threshold=127.5) for p in video.probs])
    assert (again == labels).mean() > 0.999
    assert not video.probs[:LATE_FRAME, 2].any()  # object 3 before it appears: p = 0


def test_resume_skips_finished_videos_and_redoes_missing_ones(dataset, tmp_path):
    out = tmp_path / "pred"
    _run(dataset, out)
    kept = out / "plain" / "00003.png"
    stamp = kept.stat().st_mtime_ns
    for png in (out / "late").iterdir():
        png.unlink()
    (out / "late").rmdir()
    (out / ".late.abc.tmp").mkdir()  # what a killed run leaves: not a finished video
    summary = _run(dataset, out)
    assert (summary["done"], summary["skipped"]) == (1, 1)
    assert kept.stat().st_mtime_ns == stamp
    assert len(list((out / "late").iterdir())) == 6
    # probabilities requested now: the videos without them are redone
    assert _run(dataset, out, save_probs=True)["done"] == 2
    assert _run(dataset, out, save_probs=True)["skipped"] == 2


def test_resuming_with_other_settings_is_an_error(dataset, tmp_path):
    out = tmp_path / "pred"
    _run(dataset, out, videos=["plain"])
    with pytest.raises(io.DataError, match=r"pred: 1 video\(s\) here .*plain: merge: 'higher' there, 'lower' now"):
        _run(dataset, out, videos=["plain"], merge="lower")
    assert _run(dataset, out, videos=["plain"], merge="lower", overwrite=True)["done"] == 1


def _recorded(out, video):
    """The settings a video of a prediction folder was written with."""
    return json.loads(infer.record_path(out, video).read_text())["settings"]


def test_a_killed_overwrite_run_never_leaves_a_mixed_folder(tmp_path, monkeypatch):
    """``--overwrite --scale 1.25`` killed in its second video, then resumed without ``--overwrite``: the
    folder holds a video of each scale, which is an error naming the old one, not a finished run."""
    for k in range(3):
        _write_clip(tmp_path / "data", f"v{k}", seed=k)
    out = tmp_path / "pred"
    _run(tmp_path / "data", out)
    predict = infer.predict_video
    calls = []

    def killed_in_the_second_video(*args, **kwargs):
        calls.append(kwargs["desc"])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return predict(*args, **kwargs)

    monkeypatch.setattr(infer, "predict_video", killed_in_the_second_video)
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path / "data", out, scale=1.25, overwrite=True)
    monkeypatch.setattr(infer, "predict_video", predict)
    with pytest.raises(io.DataError, match=rf"{re.escape(str(out))}: 1 video.*v2: image_size: 256 there, 320 now"):
        _run(tmp_path / "data", out, scale=1.25)
    # v1 was being redone: its old labels are there, but nothing says they are done
    assert (out / "v1").is_dir() and not infer.record_path(out, "v1").exists()
    assert (_recorded(out, "v0")["image_size"], _recorded(out, "v2")["image_size"]) == (320, 256)
    assert _run(tmp_path / "data", out, scale=1.25, overwrite=True)["done"] == 3
    assert _run(tmp_path / "data", out, scale=1.25)["skipped"] == 3
    assert {_recorded(out, f"v{k}")["image_size"] for k in range(3)} == {320}


def test_redoing_a_video_without_probabilities_drops_its_old_ones(dataset, tmp_path):
    """Probabilities of another scale beside new labels would mix two settings in one folder."""
    out = tmp_path / "pred"
    _run(dataset, out, videos=["plain"], save_probs=True)
    _run(dataset, out, videos=["plain"], scale=1.25, overwrite=True)
    assert (out / "plain").is_dir() and not (out / "plain.npz").exists()


def test_other_weights_in_the_same_checkpoint_file_are_not_done(dataset, tmp_path):
    ckpt = tmp_path / "weights.pt"
    models.save_checkpoint(models.build_predictor("fvos_tiny", models.RANDOM, seed=0), ckpt)
    out = tmp_path / "pred"
    _run(dataset, out, ckpt=str(ckpt), videos=["plain"])
    assert _run(dataset, out, ckpt=str(ckpt), videos=["plain"])["skipped"] == 1
    models.save_checkpoint(models.build_predictor("fvos_tiny", models.RANDOM, seed=1), ckpt)  # retrained in place
    with pytest.raises(io.DataError, match=r"weights: 'sha256:[0-9a-f]{64}' there, 'sha256:[0-9a-f]{64}' now"):
        _run(dataset, out, ckpt=str(ckpt), videos=["plain"])
    assert _run(dataset, out, ckpt=str(ckpt), videos=["plain"], overwrite=True)["done"] == 1


def test_other_data_with_the_same_video_names_is_not_done(dataset, tmp_path):
    short = tmp_path / "short"
    _write_clip(short, "plain", n_frames=4)
    out = tmp_path / "pred"
    _run(dataset, out, videos=["plain"])
    with pytest.raises(io.DataError, match=r"plain: frames: 6 \(00000\.jpg\.\.00005\.jpg\) there, "
                                           r"4 \(00000\.jpg\.\.00003\.jpg\) now"):
        _run(short, out)
    assert _run(short, out, overwrite=True)["done"] == 1
    assert len(list((out / "plain").iterdir())) == 4


def test_edited_annotations_or_replaced_frames_under_the_same_names_are_not_done(tmp_path):
    """The record keyed frame names, size and annotation names: removing object 2 from a first-frame mask,
    or flipping the frames, left every video skipped with the old predictions."""
    _write_clip(tmp_path / "data", "v")
    out = tmp_path / "pred"
    _run(tmp_path / "data", out)
    first = tmp_path / "data" / "Annotations" / "v" / "00000.png"
    edited = io.read_mask(first).copy()
    edited[edited == 2] = 0
    io.write_mask(first, edited)
    with pytest.raises(io.DataError, match=r"1 video\(s\) here were written with other settings or data \(first, "
                                           r"v: annotations_sha256: '[0-9a-f]{12}\.\.\.' there, '[0-9a-f]{12}\.\.\.' now\)"):
        _run(tmp_path / "data", out)
    assert _run(tmp_path / "data", out, overwrite=True)["done"] == 1
    assert 2 not in np.unique(np.stack([io.read_mask(p) for p in sorted((out / "v").iterdir())]))
    for frame in sorted((tmp_path / "data" / "JPEGImages" / "v").iterdir()):
        io.write_frame(frame, io.read_frame(frame)[:, ::-1].copy())
    with pytest.raises(io.DataError, match="v: frames_fingerprint: "):
        _run(tmp_path / "data", out)


def test_a_copy_of_the_same_data_is_done(tmp_path):
    """Content, not times: the same files copied elsewhere (new modification times) are skipped."""
    import shutil

    _write_clip(tmp_path / "data", "v")
    out = tmp_path / "pred"
    _run(tmp_path / "data", out)
    shutil.copytree(tmp_path / "data", tmp_path / "copy")
    assert _run(tmp_path / "copy", out)["skipped"] == 1


def test_a_record_from_before_content_keys_is_redone_not_refused(tmp_path):
    _write_clip(tmp_path / "data", "v")
    out = tmp_path / "pred"
    _run(tmp_path / "data", out)
    record = json.loads(infer.record_path(out, "v").read_text())
    for key in ("annotations_sha256", "frames_fingerprint"):
        del record["data"][key]
    io.write_json(infer.record_path(out, "v"), record)
    assert _run(tmp_path / "data", out)["done"] == 1
    assert _run(tmp_path / "data", out)["skipped"] == 1


def test_a_run_removes_what_a_killed_run_left_and_nothing_else(dataset, tmp_path):
    out = tmp_path / "pred"
    _run(dataset, out)
    leftovers = [out / ".late.k3j_a8x1.tmp", out / ".plain.npz.abcdefgh.tmp.npz",
                 out / ".fvos_infer.plain.json.q1w2e3r4.tmp.json", out / ".late.zz9_x1y2.removing"]
    leftovers[0].mkdir()
    (leftovers[0] / "00000.png").write_bytes(b"half")
    leftovers[3].mkdir()
    for path in leftovers[1:3]:
        path.write_bytes(b"half")
    kept = [out / ".notes", out / "keep.tmp"]
    for path in kept:
        path.write_text("mine")
    assert _run(dataset, out)["skipped"] == 2
    assert not any(path.exists() for path in leftovers)
    assert all(path.read_text() == "mine" for path in kept)


# ------------------------------------------------------------------------------------------- errors
def test_missing_first_frame_mask_is_a_clear_error(tmp_path):
    _write_clip(tmp_path, "v", late=True)
    (tmp_path / "Annotations" / "v" / "00000.png").unlink()
    with pytest.raises(io.DataError, match=r"v/00000.png: first-frame annotation missing"):
        _run(tmp_path, tmp_path / "out")
    assert not (tmp_path / "out" / "v").exists()


def test_mask_of_the_wrong_size_is_a_clear_error(tmp_path):
    _write_clip(tmp_path, "v")
    io.write_mask(tmp_path / "Annotations" / "v" / "00000.png", np.ones((10, 10), np.uint8))
    with pytest.raises(io.DataError, match=r"v/00000.png: mask size 10x10 \(WxH\) differs from its frame"):
        _run(tmp_path, tmp_path / "out")


def test_frame_of_another_size_is_a_clear_error(tmp_path):
    _write_clip(tmp_path, "v")
    io.write_frame(tmp_path / "JPEGImages" / "v" / "00004.jpg", np.zeros((40, 64, 3), np.uint8))
    with pytest.raises(io.DataError, match=r"v/00004.jpg: frame size 64x40 \(WxH\) differs from the video's first"):
        _run(tmp_path, tmp_path / "out")


def test_annotation_without_objects_is_a_clear_error(tmp_path):
    _write_clip(tmp_path, "v")
    io.write_mask(tmp_path / "Annotations" / "v" / "00000.png", np.zeros(SIZE, np.uint8))
    with pytest.raises(io.DataError, match="no objects in the annotations"):
        _run(tmp_path, tmp_path / "out")


@pytest.mark.parametrize("argv, message", [
    (["--model", "sam3_huge"], "unknown model 'sam3_huge'"),
    (["--scale", "1.1"], "scale 1.1 gives image size 281.6 .* multiple of 32"),
    (["--ckpt", "nowhere.pt"], "nowhere.pt: checkpoint file not found"),
])
def test_command_line_errors_are_one_clear_line(dataset, tmp_path, capsys, argv, message):
    base = ["--data-root", str(dataset), "--out", str(tmp_path / "out"), "--ckpt", "random", "--no-progress"]
    with pytest.raises(SystemExit) as stop:
        infer.main(base + argv)
    assert stop.value.code == 2
    assert re.search(message, capsys.readouterr().err)


@pytest.mark.parametrize("where", ["a file", "under a file"])
def test_an_output_folder_where_a_file_is_is_one_clear_line(dataset, tmp_path, capsys, where):
    (tmp_path / "notes.txt").write_text("mine")
    out = tmp_path / "notes.txt" if where == "a file" else tmp_path / "notes.txt" / "pred"
    with pytest.raises(SystemExit) as stop:
        infer.main(["--data-root", str(dataset), "--out", str(out), "--ckpt", "random", "--no-progress"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and len(err.strip().splitlines()) == 1
    assert f"{tmp_path / 'notes.txt'}: a file, not a folder" in err
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_a_scale_giving_no_image_is_refused_before_anything_is_written(dataset, tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        infer.main(["--data-root", str(dataset), "--out", str(tmp_path / "out"), "--ckpt", "random",
                    "--scale", "1e-9", "--no-progress"])
    assert stop.value.code == 2 and "scale 1e-09 gives image size" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_command_line_paths_are_taken_from_the_current_folder(tmp_path, monkeypatch, capsys):
    _write_clip(tmp_path / "data", "v")
    _write_clip(tmp_path / "data", "w", seed=2)
    (tmp_path / "list.txt").write_text("v\n")
    models.save_checkpoint(models.build_predictor("fvos_tiny", models.RANDOM, seed=0), tmp_path / "weights.pt")
    monkeypatch.chdir(tmp_path)
    infer.main(["--data-root", "data", "--out", "pred", "--video-list", "list.txt", "--ckpt", "weights.pt",
                "--save-probs", "--probs-dir", "probs", "--no-progress"])
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["done"] == 1
    assert sorted(p.name for p in (tmp_path / "pred").iterdir() if not p.name.startswith(".")) == ["v"]
    assert (tmp_path / "probs" / "v.npz").is_file()
    assert json.loads(infer.record_path(tmp_path / "pred", "v").read_text())["checkpoint"] == str(tmp_path / "weights.pt")


def test_unknown_mode_or_transform_is_a_clear_error(predictor, dataset):
    video, prompts = _prompts(dataset, "plain")
    with pytest.raises(ValueError, match="unknown mode 'both'"):
        infer.propagate(predictor, video.frames, prompts, mode="both")
    with pytest.raises(ValueError, match="unknown transform 'vflip'"):
        infer.propagate(predictor, video.frames, prompts, transform="vflip")


# ------------------------------------------------------------------------------------- command line
def test_command_line_on_mose_style_split_folders(tmp_path, capsys):
    _write_clip(tmp_path / "MOSE" / "valid", "v1")
    _write_clip(tmp_path / "MOSE" / "train", "t1")  # another split: must not be touched
    out = tmp_path / "pred"
    infer.main(["--data-root", str(tmp_path / "MOSE"), "--split", "valid", "--ckpt", "random", "--out",
                str(out), "--scale", "1.125", "--mode", "joint", "--tta", "hflip", "--save-probs",
                "--no-progress"])
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["done"] == 1
    assert sorted(p.name for p in out.iterdir()) == [".fvos_infer.v1.json", "v1", "v1.npz"]
    assert _recorded(out, "v1")["image_size"] == 288


def test_torchrun_ranks_split_the_videos_and_match_one_process(tmp_path):
    for k in range(3):
        _write_clip(tmp_path / "data", f"v{k}", seed=k)
    _run(tmp_path / "data", tmp_path / "single", mode="joint")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(project_root()))
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
         str(infer.free_port()), "-m", "fvos_utils", "infer", "--data-root", str(tmp_path / "data"), "--ckpt",
         "random", "--out", str(tmp_path / "multi"), "--mode", "joint", "--threads", "1", "--no-progress"],
        env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    total = json.loads(result.stdout.strip().splitlines()[-1])
    assert (total["videos"], total["done"]) == (3, 3)  # summed over both ranks: each video once
    for png in sorted((tmp_path / "single").rglob("*.png")):
        assert png.read_bytes() == (tmp_path / "multi" / png.relative_to(tmp_path / "single")).read_bytes()



def test_run_split_shards_over_spawned_processes_and_matches_one_process(tmp_path):
    """What chapters 03-06 run: one process per GPU; here 2 CPU processes, as a 2-GPU machine splits."""
    for k in range(3):
        _write_clip(tmp_path / "data", f"v{k}", seed=k)
    _run(tmp_path / "data", tmp_path / "single", mode="joint", save_probs=True)
    spec = models.PredictorSpec("fvos_tiny", models.RANDOM)
    summary = infer.run_split(spec, tmp_path / "data", tmp_path / "multi", processes=2, device="cpu", mode="joint",
                              save_probs=True, progress=False)
    assert summary["videos"] == 2 and summary["total"]["videos"] == summary["total"]["done"] == 3  # v0, v2 on rank 0
    single = sorted(p.relative_to(tmp_path / "single") for p in (tmp_path / "single").rglob("*") if p.is_file())
    assert single == sorted(p.relative_to(tmp_path / "multi") for p in (tmp_path / "multi").rglob("*") if p.is_file())
    for path in single:
        if path.suffix != ".json":  # the records hold the run's timings
            assert (tmp_path / "single" / path).read_bytes() == (tmp_path / "multi" / path).read_bytes(), path
    assert _recorded(tmp_path / "multi", "v1") == _recorded(tmp_path / "single", "v1")
    # a refusal in the processes is the same one-line error here
    with pytest.raises(io.DataError, match="written with other settings"):
        infer.run_split(dataclasses.replace(spec, seed=1), tmp_path / "data", tmp_path / "multi", processes=2,
                        device="cpu", mode="joint", progress=False)

# ------------------------------------------------------------------------------------ scale finding
def test_resize_experiment_reports_input_and_feature_sizes(dataset):
    video, prompts = _prompts(dataset, "plain")
    found = infer.resize_experiment(video.frames, prompts, factor=1.25)
    assert found["image_size"] == {"original": 256, "frames_resized": 256, "model_resized": 320}
    assert found["feature_size"] == {"original": 16, "frames_resized": 16, "model_resized": 20}
    assert found["frame_size"] == {"original": [48, 64], "frames_resized": [60, 80]}
    # SAM 2 resizes to its own square input: enlarging the frames first changes what it sees by
    # resampling differences only, a few grey levels
    assert 0 < found["input_mean_abs_diff_grey"] < 3
    for key in ("label_disagreement", "mean_abs_prob_diff"):
        assert set(found[key]) == {"frames_resized", "model_resized"}
        assert all(0 <= v <= 1 for v in found[key].values())


# -------------------------------------------------------------------------------------- real clips
@pytest.mark.skipif(shared_samples_dir() is None, reason="../shared/data/samples not present")
def test_real_clip_with_an_object_appearing_late(predictor):
    data = io.VOSDataset(shared_samples_dir() / "xmempp_caps")
    video = data.video("caps")
    prompts = infer.video_prompts(data, video)
    assert {i: t for i, (t, _) in prompts.items()} == {1: 0, 2: 33}  # SOURCES.md: object 2 from frame 33
    got = infer.predict_video(predictor, video.frames[:36], prompts, mode="joint", progress=False)
    assert got.labels.shape == (36, 853, 480)  # portrait: 480 wide, 853 high
    assert not (got.labels[:33] == 2).any() and (got.labels[33] == 2).any()


@pytest.mark.parametrize("separate, runs, words", [
    (2.0, 3, "joint ran 2.00x as fast as separate here (the best of 3 runs each)"),
    (0.51, 1, "joint ran slower than separate here, 0.51x as fast (one run each, so a busy machine can move it)"),
    (1.0, 3, "joint and separate took the same time here (the best of 3 runs each)")])
def test_the_speed_words_follow_the_measured_times(separate, runs, words):
    assert infer.speed_words({"separate": separate, "joint": 1.0}, runs=runs) == words
