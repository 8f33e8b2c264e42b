"""The zero-motion baseline: first-frame mask copied to every frame, resumable."""
import numpy as np

from fvos_utils import baselines, io


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
