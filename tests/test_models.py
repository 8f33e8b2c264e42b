"""Models: registry, scales, building (kit config and overrides), checkpoints, download helper."""
import hashlib
import http.server
import json
import socket
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from fvos_utils.base import paths
from fvos_utils.base.io import DataError, read_json, read_mask
from fvos_utils.data.testing import command_error, first_frames_clip
from fvos_utils.method import infer, models

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tiny():
    return models.build_predictor("fvos_tiny", models.RANDOM, seed=0)


def _state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# ----------------------------------------------------------------------------------------- registry
def test_registry_holds_every_released_model_with_its_config_and_address():
    import sam2

    package = Path(sam2.__file__).parent
    released = [s for s in models.MODELS.values() if not s.kit_config]
    assert {s.name for s in released} == {f"{v}_hiera_{size}" for v in ("sam2", "sam2.1")
                                          for size in ("tiny", "small", "base_plus", "large")}
    for spec in released:
        assert (package / spec.config).is_file(), spec.config  # the hydra config ships with sam2
        assert spec.url.endswith("/" + spec.checkpoint) and spec.url.startswith("https://dl.fbaipublicfiles.com/")
        assert ("092824" in spec.url) == spec.name.startswith("sam2.1")  # 2.1 came out in Sept. 2024
        assert spec.base_image_size == 1024
    kit = models.get_spec("fvos_tiny")
    assert (models.CONFIG_DIR / "fvos_tiny.yaml").is_file() and kit.base_image_size == 256


def test_unknown_model_name_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown model 'sam3'.*sam2.1_hiera_large.*fvos_tiny"):
        models.get_spec("sam3")
    with pytest.raises(ValueError, match="unknown model"):
        models.build_predictor("hiera_huge", models.RANDOM)


def test_every_fvos_scale_is_a_valid_image_size():
    assert [models.image_size_for(models.get_spec("fvos_tiny"), s) for s in models.FVOS_SCALES] == \
        [256, 288, 320, 352, 384, 416, 448]
    assert [models.image_size_for(models.get_spec("sam2.1_hiera_large"), s) for s in models.FVOS_SCALES] == \
        [1024, 1152, 1280, 1408, 1536, 1664, 1792]


@pytest.mark.parametrize("scale", [1.1, 0.3, 1.0625])
def test_scale_off_the_32_grid_is_a_clear_error(scale):
    with pytest.raises(ValueError, match="multiple of 32"):
        models.image_size_for(models.get_spec("fvos_tiny"), scale)


@pytest.mark.parametrize("scale", [0, -1.0, float("nan"), 1e-9])
def test_non_positive_scale_is_a_clear_error(scale):
    """1e-9 rounds to image size 0, a multiple of 32 that SAM 2 cannot run."""
    with pytest.raises(ValueError, match="positive"):
        models.image_size_for(models.get_spec("fvos_tiny"), scale)


def test_weights_are_identified_by_content_and_hashed_once(tmp_path, monkeypatch):
    ckpt = tmp_path / "weights.pt"
    ckpt.write_bytes(b"first weights")
    reads = []
    sha256_of = models._sha256_of
    monkeypatch.setattr(models, "_sha256_of", lambda path: reads.append(path) or sha256_of(path))
    first = models.weights_identity("fvos_tiny", str(ckpt))
    assert first == models.weights_identity("fvos_tiny", str(ckpt)) == f"sha256:{hashlib.sha256(b'first weights').hexdigest()}"
    assert len(reads) == 1  # once per process while the file is unchanged
    ckpt.write_bytes(b"retrained weights")  # rewritten in place, same name
    assert models.weights_identity("fvos_tiny", str(ckpt)) != first and len(reads) == 2
    assert models.weights_identity("fvos_tiny", models.weights_label("random", seed=3)) == "random (seed 3)"

    expected = "cuda" if torch.cuda.is_available() else ("mps" if torch.backends.mps.is_available() else "cpu")
    assert models.pick_device().type == expected
    assert models.pick_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            models.pick_device("cuda")
    with models.autocast(torch.device("cpu")):
        assert torch.ones(2, 2).matmul(torch.ones(2, 2)).dtype == torch.float32  # fp32 on the CPU


# -------------------------------------------------------------------------------------------- build
def test_kit_model_builds_small_in_eval_mode_without_hole_filling(tiny):
    n_params = sum(p.numel() for p in tiny.parameters())
    assert 1.0e6 < n_params < 2.0e6  # ~1.3 M (sam2-notes.md)
    assert tiny.image_size == 256 and tiny.sam_image_embedding_size == 16
    assert not tiny.training and tiny.fill_hole_area == 0
    assert (tiny.sigmoid_scale_for_mem_enc, tiny.sigmoid_bias_for_mem_enc) == (20.0, -10.0)
    # built like SAM 2's VOS evaluation: no dynamic multimask fallback, no binarised click masks
    assert not tiny.binarize_mask_from_pts_for_mem_enc
    assert not tiny.sam_mask_decoder.dynamic_multimask_via_stability


def test_building_the_kit_config_leaves_sam2_configs_usable(tiny):
    from hydra import compose

    cfg = compose(config_name="configs/sam2.1/sam2.1_hiera_t.yaml")
    assert cfg.model.image_size == 1024


def test_random_weights_follow_the_seed_and_leave_the_global_rng_alone(tiny):
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    again = models.build_predictor("fvos_tiny", models.RANDOM, seed=0)
    assert torch.equal(torch.rand(3), expected_next)
    other = models.build_predictor("fvos_tiny", models.RANDOM, seed=1)
    same, different = _state(again), _state(other)
    for key, value in _state(tiny).items():
        assert torch.equal(value, same[key]), key
    assert any(not torch.equal(v, different[k]) for k, v in _state(tiny).items())


def test_scale_override_changes_the_feature_size_but_not_the_weights(tiny):
    larger = models.build_predictor("fvos_tiny", models.RANDOM, scale=1.25, seed=0)
    assert larger.image_size == 320 and larger.sam_image_embedding_size == 20
    with torch.inference_mode():
        features = larger.forward_image(torch.zeros(1, 3, 320, 320))["backbone_fpn"]
        base_features = tiny.forward_image(torch.zeros(1, 3, 256, 256))["backbone_fpn"]
    assert [f.shape[-1] for f in features] == [80, 40, 20]  # strides 4, 8, 16 of 320
    assert [f.shape[-1] for f in base_features] == [64, 32, 16]
    base = _state(tiny)
    for key, value in _state(larger).items():
        assert torch.equal(value, base[key]), key


def test_sigmoid_override_reaches_the_memory_encoder(tiny):
    """Set on the loaded predictor between runs: the memory encoder must get sigmoid(x) * s + b."""
    from fvos_utils.method.infer import propagate

    seen = []
    hook = tiny.memory_encoder.register_forward_pre_hook(lambda mod, args: seen.append(args[1].clone()))
    frames = np.zeros((3, 64, 64, 3), np.uint8)
    mask = np.zeros((64, 64), bool)
    mask[20:40, 16:30] = True

    def first_memory_input(scale, bias):
        models.set_memory_sigmoid(tiny, scale=scale, bias=bias)
        seen.clear()
        propagate(tiny, frames, {1: (0, mask)}, progress=False)
        return seen[0]

    try:
        default = first_memory_input(20.0, -10.0)
        custom = first_memory_input(3.0, 0.5)
    finally:
        models.set_memory_sigmoid(tiny, scale=20.0, bias=-10.0)
        hook.remove()
    # the prompt mask enters as logits of +-10 (SAM 2's mask-as-output), so the memory encoder sees
    # sigmoid(+-10) * s + b at the extremes and the same sigmoid in between for both settings
    sig = torch.sigmoid(torch.tensor([-10.0, 10.0]))
    for got, (s, b) in ((default, (20.0, -10.0)), (custom, (3.0, 0.5))):
        assert got.min().item() == pytest.approx((sig[0] * s + b).item(), abs=1e-5)
        assert got.max().item() == pytest.approx((sig[1] * s + b).item(), abs=1e-5)
    assert torch.allclose((default + 10.0) / 20.0, (custom - 0.5) / 3.0, atol=1e-6)


def test_sigmoid_override_rejects_non_finite_values(tiny):
    with pytest.raises(ValueError, match="finite"):
        models.set_memory_sigmoid(tiny, scale=float("inf"))
    assert models.set_memory_sigmoid(tiny) == (20.0, -10.0)


# -------------------------------------------------------------------------------------- checkpoints
def test_checkpoint_round_trip_loads_exactly_these_weights(tiny, tmp_path):
    other = models.build_predictor("fvos_tiny", models.RANDOM, seed=7)
    path = tmp_path / "w.pt"
    models.save_checkpoint(other, path)
    assert set(torch.load(path, weights_only=True)) == {"model"}
    loaded = models.build_predictor("fvos_tiny", path, seed=0)
    reference = _state(other)
    for key, value in _state(loaded).items():
        assert torch.equal(value, reference[key]), key


def test_bad_checkpoints_are_clear_errors_naming_the_file(tiny, tmp_path):
    with pytest.raises(DataError, match="missing.pt: checkpoint file not found"):
        models.build_predictor("fvos_tiny", tmp_path / "missing.pt")
    wrong_layout = tmp_path / "wrong_layout.pt"
    torch.save({"state_dict": tiny.state_dict()}, wrong_layout)
    with pytest.raises(DataError, match="wrong_layout.pt: not a SAM 2 checkpoint"):
        models.build_predictor("fvos_tiny", wrong_layout)
    partial = tmp_path / "partial.pt"
    weights = tiny.state_dict()
    weights.pop("no_mem_embed")
    torch.save({"model": weights}, partial)
    with pytest.raises(DataError, match="partial.pt: weights do not fit.*1 missing"):
        models.build_predictor("fvos_tiny", partial)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="garbage.pt: not a readable PyTorch checkpoint"):
        models.build_predictor("fvos_tiny", garbage)


def test_kit_model_loads_its_bundled_weights_by_default(monkeypatch):
    import hashlib

    spec = models.get_spec("fvos_tiny")
    path = models.resolve_checkpoint(spec)
    assert path == models.ASSET_DIR / "fvos_tiny.pt" and path.stat().st_size < 10_000_000
    assert hashlib.sha256(path.read_bytes()).hexdigest() == spec.sha256
    predictor = models.build_predictor("fvos_tiny", device="cpu")
    stored = torch.load(path, map_location="cpu", weights_only=True)["model"]
    loaded = predictor.state_dict()
    assert all(torch.equal(loaded[k], v.float()) for k, v in stored.items())
    monkeypatch.setattr(models, "ASSET_DIR", models.ASSET_DIR / "nowhere")
    with pytest.raises(DataError, match="nowhere/fvos_tiny.pt: the kit's bundled fvos_tiny weights are missing"):
        models.resolve_checkpoint(spec)


def test_the_bundled_record_belongs_to_the_bundled_file_only(tmp_path):
    path = models.resolve_checkpoint(models.get_spec("fvos_tiny"))
    record = models.bundled_record("fvos_tiny", path)
    assert record == json.loads((models.ASSET_DIR / "fvos_tiny.json").read_text())
    assert record["sha256"] == models.get_spec("fvos_tiny").sha256  # the record describes these very weights
    copy = tmp_path / "fvos_tiny.pt"
    copy.write_bytes(path.read_bytes())
    assert models.bundled_record("fvos_tiny", copy) is None  # same bytes elsewhere: a user's file, no record
    assert models.bundled_record("fvos_tiny", models.RANDOM) is None
    assert models.bundled_record("sam2.1_hiera_tiny", path) is None  # not a bundled model


def test_missing_registry_checkpoint_without_download_names_where_it_belongs(monkeypatch, tmp_path):
    monkeypatch.setenv("FVOS_ROOT", str(tmp_path))
    with pytest.raises(DataError, match=r"checkpoints/sam2.1_hiera_tiny.pt: checkpoint of sam2.1_hiera_tiny not found"):
        models.resolve_checkpoint(models.get_spec("sam2.1_hiera_tiny"), allow_download=False)


BMX = paths.shared_samples_dir() / "davis_bmx-trees" if paths.shared_samples_dir() else None


@pytest.mark.skipif(BMX is None or not BMX.is_dir(), reason="../shared/data/samples/davis_bmx-trees not present")
def test_a_release_in_meta_s_format_runs_through_the_registry(tmp_path, monkeypatch):
    """A SAM 2.1 checkpoint as Meta releases it (``{"model": state_dict}``, random weights standing in for the
    download) where the registry keeps downloads (``data/checkpoints/`` under ``FVOS_ROOT``) is what
    ``infer --ckpt registry`` loads: 2 frames of a real clip at a quarter of the base size (256 px)."""
    first_frames_clip(BMX, "bmx-trees", tmp_path / "clip", 2)
    monkeypatch.setenv(paths.ROOT_ENV, str(tmp_path / "kit"))  # where the kit keeps data/, checkpoints included
    spec = models.get_spec("sam2.1_hiera_tiny")
    release = models.default_checkpoint_path(spec)
    assert release == tmp_path / "kit" / "data" / "checkpoints" / "sam2.1_hiera_tiny.pt"
    weights = models.build_predictor(spec.name, models.RANDOM, seed=3).state_dict()
    release.parent.mkdir(parents=True)
    torch.save({"model": weights}, release)  # Meta's layout, written as Meta writes it (not save_checkpoint)
    real_build, built = models.build_predictor, []

    def build_and_keep(*args, **kwargs):  # the real builder; its predictor kept to compare the weights
        built.append(real_build(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(models, "build_predictor", build_and_keep)
    monkeypatch.chdir(tmp_path)
    run = ["--data-root", "clip", "--model", spec.name, "--scale", "0.25", "--no-progress"]
    infer.main([*run, "--out", "pred"])  # --ckpt registry is the default
    loaded = built[0].state_dict()
    assert built[0].image_size == 256 and loaded.keys() == weights.keys()
    assert all(torch.equal(loaded[k], v) for k, v in weights.items())
    # not the random start the builder draws before loading (seed 0): these come from the file
    start = real_build(spec.name, models.RANDOM, seed=0).state_dict()
    for key in ("image_encoder.trunk.blocks.0.attn.qkv.weight", "memory_attention.layers.0.self_attn.q_proj.weight",
                "sam_mask_decoder.iou_prediction_head.layers.0.weight", "maskmem_tpos_enc"):
        assert not torch.equal(loaded[key], start[key]), key
    for frame in ("00000", "00001"):
        labels = read_mask(tmp_path / "pred" / "bmx-trees" / f"{frame}.png")
        assert labels.shape == (480, 854) and set(np.unique(labels)) <= {0, 1, 2}
    record = read_json(infer.record_path(tmp_path / "pred", "bmx-trees"))
    assert (record["checkpoint"], record["settings"]["weights"]) == (
        "registry", "sha256:" + hashlib.sha256(release.read_bytes()).hexdigest())
    # a file in another layout where the release should be: one line naming it, exit 2
    torch.save(weights, release)  # a bare state dict, without "model"
    assert command_error(infer.main, [*run, "--out", "bare"]).startswith(
        f"error: {release}: not a SAM 2 checkpoint: expected a dict with a 'model' state dict, got ['")
    torch.save({"model": {k: v for k, v in weights.items() if k != "no_mem_embed"}}, release)
    assert command_error(infer.main, [*run, "--out", "partial"]) == (
        f"error: {release}: weights do not fit this model: 1 missing (e.g. ['no_mem_embed']), 0 unexpected (e.g. [])")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip", "kit", "pred"]


# ----------------------------------------------------------------------------------------- download
class _RangeServer(http.server.BaseHTTPRequestHandler):
    """Serves ``payload`` at any path and honours ``Range: bytes=N-`` (206), as the CDN does."""

    payload = b""
    ranges: list = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        start = 0
        header = self.headers.get("Range")
        type(self).ranges.append(header)
        if header:
            start = int(header.split("=")[1].rstrip("-"))
        body = self.payload[start:]
        self.send_response(206 if header else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture()
def server():
    _RangeServer.payload = np.random.default_rng(0).integers(0, 256, 300_000, dtype=np.uint8).tobytes()
    _RangeServer.ranges = []
    httpd = http.server.HTTPServer(("127.0.0.1", 0), _RangeServer)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/ckpt.pt", _RangeServer
    httpd.shutdown()


def test_download_verifies_the_checksum(server, tmp_path):
    url, handler = server
    sha = hashlib.sha256(handler.payload).hexdigest()
    dest = tmp_path / "ckpt" / "model.pt"
    assert models.download(url, dest, sha256=sha, progress=False) == sha
    assert dest.read_bytes() == handler.payload
    assert sorted(p.name for p in dest.parent.iterdir()) == ["model.pt"]  # no .part left


def test_download_resumes_a_partial_file(server, tmp_path):
    url, handler = server
    dest = tmp_path / "model.pt"
    dest.with_name("model.pt.part").write_bytes(handler.payload[:123_456])
    models.download(url, dest, sha256=hashlib.sha256(handler.payload).hexdigest(), progress=False)
    assert handler.ranges == ["bytes=123456-"]
    assert dest.read_bytes() == handler.payload


def test_download_with_a_wrong_checksum_keeps_nothing(server, tmp_path):
    url, _ = server
    dest = tmp_path / "model.pt"
    with pytest.raises(DataError, match="checksum mismatch"):
        models.download(url, dest, sha256="0" * 64, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_download_offline_says_where_to_put_the_file(tmp_path):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    dest = tmp_path / "checkpoints" / "sam2.1_hiera_large.pt"
    with pytest.raises(models.DownloadError, match=f"put it at {dest}"):
        models.download(f"http://127.0.0.1:{port}/sam2.1_hiera_large.pt", dest, progress=False, timeout=5)
    assert not dest.exists()
