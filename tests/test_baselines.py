"""The zero-motion baseline: first-frame mask copied to every frame, resumable."""
import numpy as np

from fvos_utils.base import io
from fvos_utils.metrics import baselines


def test_zero_motion_copies_the_first_mask_and_resumes(tmp_path):
    labels = np.zeros((12, 16), np.uint8)
    labels[3:7, 4:9] = 1
    for t in range(4):
        io.write_frame(tmp_path / "data" / "JPEGImages" / "v" / f"{t:05d}.jpg", np.zeros((12, 16, 3), np.uint8))
    io.write_mask(tmp_path / "data" / "Annotations" / "v" / "00000.png", labels)
    out = baselines.zero_motion(tmp_path / "data", tmp_path / "pred", split=None)
    written = sorted((out / "v").iterdir())
    assert [p.name for p in written] == [f"{t:05d}.png" for t in range(4)]
    assert all((io.read_mask(p) == labels).all() for p in written)
    stamp = written[2].stat().st_mtime_ns
    baselines.zero_motion(tmp_path / "data", tmp_path / "pred", split=None)
    assert written[2].stat().st_mtime_ns == stamp  # complete videos are not rewritten


def test_the_decay_curve_counts_what_reaches_each_frame():
    objects = [{"video": "a", "J-frames": [1.0, 0.8, 0.6]}, {"video": "a", "J-frames": [0.8, 0.6, 0.4]},
               {"video": "b", "J-frames": [0.5]}]
    mean_j, count, videos = baselines.decay_curve(objects)
    np.testing.assert_allclose(mean_j, [(1.0 + 0.8 + 0.5) / 3, 0.7, 0.5])
    assert count.tolist() == [3, 2, 2] and videos.tolist() == [2, 1, 1]
    fig = baselines.decay_figure(objects)
    assert all(float(t).is_integer() for t in fig.axes[1].get_xticks())  # whole frames only
    assert fig.axes[1].get_ylabel() == "videos"
    np.testing.assert_allclose(fig.axes[0].get_lines()[0].get_ydata(), 100 * mean_j)  # J in percent
    assert fig.axes[0].get_ylim() == (0, 100) and fig.axes[0].get_ylabel().endswith("(%)")


def test_the_real_clip_caption_names_the_clip_and_its_scores_in_percent():
    result = {"global": {"J&F": 0.51234, "J": 0.5, "F": 0.52468}}
    assert baselines.real_clip_caption("xmempp_chair", "chair", 60, result) == (
        "The real clip xmempp_chair (video chair, 60 frames, from ../shared/data/samples): its ground truth on the "
        "first and last frame, and the zero-motion baseline on the last (over the clip: J&F 51.23, J 50.00, F 52.47).")
