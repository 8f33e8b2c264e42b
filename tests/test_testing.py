"""The test helpers' own generator of foreign clips: layout, scenarios, determinism."""
import cv2
import numpy as np

from fvos_utils.base import io
from fvos_utils.data import testing
from fvos_utils.metrics import evaluate


def test_foreign_clips_hold_each_scenario_in_the_held_out_layout(tmp_path):
    root = testing.write_foreign_clips(tmp_path / "clips", n_videos=4, n_frames=12, height=96, width=128, seed=3)
    names = io.VOSDataset(root, "valid").video_names()
    assert [n.split("_", 1)[1] for n in names] == list(testing.FOREIGN_SCENARIOS)
    tags = evaluate.load_tags(root / "meta.json")
    assert sorted(tags) == names
    assert all(tags[n][0] == n.split("_", 1)[1] and tags[n][1].endswith(" background")
               and tags[n][1].split()[0] in testing.FOREIGN_TEXTURES for n in names)
    for name in names:
        video = io.VOSDataset(root, "valid").video(name)
        assert len(video) == 12 and sorted(video.annotations) == ["00000"]  # first-frame masks only
        labels = np.stack([io.read_mask(root / "valid_gt" / "Annotations" / name / f"{t:05d}.png") for t in range(12)])
        assert labels.shape == (12, 96, 128) and set(np.unique(labels[0])) >= {0, 1, 2}
        scenario = name.split("_", 1)[1]
        if scenario == "exit-reenter":  # object 1 leaves through the left edge and is back at the end
            present = [(labels[t] == 1).any() for t in range(12)]
            assert present[0] and present[-1] and not all(present)
        if scenario == "touching":  # a 1-px gap: never adjacent, but one dilation step apart
            for t in range(12):
                a, b = (labels[t] == 1).astype(np.uint8), (labels[t] == 2).astype(np.uint8)
                cross = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], np.uint8)
                assert not (cv2.dilate(a, cross) & b).any() and (cv2.dilate(a, np.ones((5, 5), np.uint8)) & b).any()
        if scenario == "crossing":  # the second object passes in front of the first
            hidden = [(labels[t] == 1).sum() for t in range(12)]
            assert min(hidden) < 0.8 * hidden[0]
    again = testing.write_foreign_clips(tmp_path / "again", n_videos=4, n_frames=12, height=96, width=128, seed=3)
    assert testing.tree_bytes(again) == testing.tree_bytes(root)
