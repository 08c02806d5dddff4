"""The checkpoint format itself: what capture writes, what restore gives back (older formats too), what peek
reads without loading, what load refuses. Written against bench/mutation.py's survivors in vaetui/checkpoint.py."""

from __future__ import annotations

import io
import math
import pickle
import zipfile

import pytest
import torch

from vaetui.runs import checkpoint
from vaetui.config.presets import preset
from vaetui.errors import CheckpointError
from vaetui.models.vae import ConvVAE


def _parts(seed: int = 0):
    torch.manual_seed(seed)
    cfg = preset("tiny")
    model = ConvVAE.from_config(cfg)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.rand(2, 3, *cfg.data.size)).logits.mean().backward()
    optimizer.step()  # Adam has state to save
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    noise = torch.Generator().manual_seed(seed + 7)
    return cfg, model, optimizer, scaler, noise


def _capture(**counters):
    cfg, model, optimizer, scaler, noise = _parts()
    values = {"step": 123, "epoch": 4, "lr_scale": 0.25, "best_valid": 456.5, "nonfinite_total": 7, "rollbacks": 2,
              "epoch_sums": [1.5, 2.5, 3.5, 64]}
    values.update(counters)
    epoch = values.pop("epoch")
    return cfg, model, optimizer, checkpoint.capture(config=cfg, model=model, optimizer=optimizer, scaler=scaler,
                                                     noise=noise, device_type="cpu", epoch=epoch,
                                                     counters=checkpoint.Counters(**values))


def test_capture_holds_every_field_of_the_format():
    cfg, model, optimizer, payload = _capture()
    assert set(payload) == {"format", "config", "model", "optimizer", "scaler", "noise_rng", "noise_device", "step",
                            "epoch", "lr_scale", "best_valid", "nonfinite_total", "rollbacks", "epoch_sums"}
    assert payload["format"] == checkpoint.FORMAT == 2
    assert payload["config"] == cfg.to_json() and payload["noise_device"] == "cpu"
    assert (payload["step"], payload["epoch"], payload["lr_scale"], payload["best_valid"]) == (123, 4, 0.25, 456.5)
    assert (payload["nonfinite_total"], payload["rollbacks"], payload["epoch_sums"]) == (7, 2, [1.5, 2.5, 3.5, 64])
    assert all(torch.equal(payload["model"][k], v) for k, v in model.state_dict().items())
    assert payload["optimizer"]["state"] and payload["noise_rng"].dtype == torch.uint8


def test_a_saved_checkpoint_restores_everything(tmp_path):
    _, _, _, payload = _capture()
    path = checkpoint.save(tmp_path / "ckpt-latest.pt", payload)
    loaded = checkpoint.load(path)
    cfg, model, optimizer, scaler, noise = _parts(seed=1)  # different weights, to be overwritten
    counters = checkpoint.restore(loaded, model=model, optimizer=optimizer, scaler=scaler)
    assert counters == checkpoint.Counters(step=123, lr_scale=0.25, best_valid=456.5, nonfinite_total=7, rollbacks=2,
                                           epoch_sums=[1.5, 2.5, 3.5, 64])
    assert all(torch.equal(model.state_dict()[k], v) for k, v in payload["model"].items())
    assert optimizer.state_dict()["state"][0]["step"] == payload["optimizer"]["state"][0]["step"]
    assert checkpoint.restore_noise(loaded, noise, "cpu", reseed=99) is None
    assert torch.equal(noise.get_state(), payload["noise_rng"])


def test_an_older_checkpoint_restores_with_the_documented_defaults():
    _, model, optimizer, payload = _capture()
    old = {"model": payload["model"], "optimizer": payload["optimizer"], "step": 40}
    counters = checkpoint.restore(old, model=model, optimizer=optimizer, scaler=_parts()[3])
    assert counters == checkpoint.Counters(step=40, lr_scale=1.0, best_valid=math.inf, nonfinite_total=0, rollbacks=0,
                                           epoch_sums=[0.0, 0.0, 0.0, 0])


def test_noise_from_another_device_is_reseeded_and_said():
    _, _, _, payload = _capture()
    noise = torch.Generator()
    note = checkpoint.restore_noise({**payload, "noise_device": "cuda"}, noise, "cpu", reseed=5)
    assert note and "resumed on cpu" in note and "on cuda" in note and "reseeded" in note
    assert torch.equal(noise.get_state(), torch.Generator().manual_seed(5).get_state())
    broken = {**payload, "noise_rng": torch.zeros(3, dtype=torch.uint8)}  # same device, unusable state
    note = checkpoint.restore_noise(broken, noise, "cpu", reseed=6)
    assert note and "on cpu" in note.split("whose")[1]
    assert torch.equal(noise.get_state(), torch.Generator().manual_seed(6).get_state())
    missing = {k: v for k, v in payload.items() if k not in ("noise_device", "noise_rng")}
    assert "another device" in checkpoint.restore_noise(missing, noise, "cpu", reseed=6)


def test_peek_reads_the_plain_numbers_without_building_anything(tmp_path):
    _, _, _, payload = _capture()
    path = checkpoint.save(tmp_path / "c.pt", payload)
    info = checkpoint.peek(path)
    assert info == {"format": 2, "config": payload["config"], "noise_device": "cpu", "step": 123, "epoch": 4,
                    "lr_scale": 0.25, "best_valid": 456.5, "nonfinite_total": 7, "rollbacks": 2}
    torch.save([1, 2], tmp_path / "list.pt")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    assert checkpoint.peek(tmp_path / "list.pt") is None and checkpoint.peek(tmp_path / "junk.pt") is None
    assert checkpoint.peek(tmp_path / "missing.pt") is None
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("archive/other.txt", "no pickle here")
    (tmp_path / "nopickle.pt").write_bytes(buf.getvalue())
    assert checkpoint.peek(tmp_path / "nopickle.pt") is None


class _Touch:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import pathlib

        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def test_peek_and_load_run_no_code(tmp_path):
    marker = tmp_path / "ran"
    torch.save({"step": 3, "model": {}, "evil": _Touch(str(marker))}, tmp_path / "evil.pt")
    assert checkpoint.peek(tmp_path / "evil.pt") in (None, {"step": 3})  # read or refused, never run
    with pytest.raises(CheckpointError, match="cannot be loaded"):
        checkpoint.load(tmp_path / "evil.pt")
    assert not marker.exists()
    # the peeker's stand-ins take whatever a pickle hands them, and build nothing
    data = pickle.dumps({"step": 5, "obj": _Touch(str(marker)), "lst": [1, 2]})
    assert checkpoint._peeker()(io.BytesIO(data)).load()["step"] == 5 and not marker.exists()


@pytest.mark.parametrize("content, says", [
    (None, "cannot read"), (b"", "truncated or not a checkpoint"), (b"PK\x03\x04junk", "truncated or not a checkpoint"),
])
def test_load_names_what_is_wrong(tmp_path, content, says):
    path = tmp_path / "c.pt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(CheckpointError, match=says):
        checkpoint.load(path)


def test_load_refuses_what_is_not_a_vaetui_checkpoint(tmp_path):
    torch.save({"step": 1}, tmp_path / "nomodel.pt")
    torch.save([1], tmp_path / "list.pt")
    for name in ("nomodel.pt", "list.pt"):
        with pytest.raises(CheckpointError, match="is not a vaetui checkpoint"):
            checkpoint.load(tmp_path / name)
    _, _, _, payload = _capture()
    data = bytearray(checkpoint.encode(payload))
    path = tmp_path / "flipped.pt"
    zf = zipfile.ZipFile(io.BytesIO(bytes(data)))
    info = max(zf.infolist(), key=lambda i: i.file_size)  # the largest tensor's bytes
    offset = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra) + info.file_size // 2
    data[offset] ^= 0x10
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupt \\(checksum mismatch"):
        checkpoint.load(path)
