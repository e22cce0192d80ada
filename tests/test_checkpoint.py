"""Checkpoints: round trip, strict key checks that name the keys, refusal of pickles."""

import pickle

import pytest
import torch
from safetensors.torch import save_file

from model_src import HRM, HRMConfig, tiny_config
from model_src.checkpoint import _convert, load_checkpoint, read_config, save_checkpoint
from model_src.errors import CheckpointError


def test_round_trip(tmp_path, tiny_model):
    path = save_checkpoint(tiny_model, tmp_path / "m.safetensors")
    loaded = load_checkpoint(path)
    assert loaded.cfg == tiny_model.cfg
    for (k, a), (_, b) in zip(tiny_model.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert torch.equal(a, b), k


def test_bf16_round_trip_is_close(tmp_path, tiny_model):
    loaded = load_checkpoint(save_checkpoint(tiny_model, tmp_path / "m.safetensors", dtype=torch.bfloat16))
    w0, w1 = tiny_model.l.embed.weight, loaded.l.embed.weight
    assert w1.dtype == torch.float32 and (w0 - w1).abs().max() <= w0.abs().max() * 2**-8


@pytest.mark.parametrize("payload", ["torch_zip", "raw_pickle"])
def test_refuses_pickles(tmp_path, tiny_model, payload):
    path = tmp_path / "evil.pt"
    if payload == "torch_zip":
        torch.save(tiny_model.state_dict(), path)
    else:
        path.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(CheckpointError, match="refusing to unpickle"):
        load_checkpoint(path)


def test_names_missing_unexpected_and_misshaped_keys(tmp_path, tiny_model):
    state = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    del state["h.embed.weight"]
    state["l.extra"] = torch.zeros(1)
    state["l.heads.q.bias"] = torch.zeros(7)
    path = tmp_path / "bad.safetensors"
    save_file(state, str(path), metadata={"hrm_config": tiny_model.cfg.to_json()})
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(path)
    msg = str(e.value)
    assert "h.embed.weight" in msg and "l.extra" in msg and "l.heads.q.bias" in msg


def test_missing_file_and_garbage(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "nope.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all")
    with pytest.raises(CheckpointError, match="not a safetensors"):
        load_checkpoint(junk)


def test_interrupted_save_leaves_nothing(tmp_path, tiny_model, monkeypatch):
    import model_src.checkpoint as ck

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(ck, "save_file", boom)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tiny_model, tmp_path / "m.safetensors")
    assert list(tmp_path.iterdir()) == []


def test_config_from_sidecar(tmp_path):
    m = HRM(tiny_config())
    path = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in m.state_dict().items()}, str(path))
    (tmp_path / "config.json").write_text(m.cfg.to_json())
    assert load_checkpoint(path).cfg == m.cfg


def test_converting_a_pickle_without_a_config_reads_it_as_written_before_film_pool(tmp_path):
    """A trusted state-dict pickle carries no config: it gets the default sizes of its time, film_pool "mean"."""
    torch.save(HRM(HRMConfig(film_pool="mean")).state_dict(), tmp_path / "old.pt")
    _convert(str(tmp_path / "old.pt"), str(tmp_path / "old.safetensors"))
    assert read_config(tmp_path / "old.safetensors") == HRMConfig(film_pool="mean")


def test_header_length_that_looks_like_a_pickle_opcode_still_loads(tmp_path, tiny_model):
    """A safetensors header length whose first (low) byte is 0x80 — pickle's PROTO opcode — is a valid file."""
    path = tmp_path / "m.safetensors"
    state = tiny_model.state_dict()
    for pad in range(512):  # the header length moves in steps of 8 as the metadata grows
        save_file(state, str(path), metadata={"hrm_config": tiny_model.cfg.to_json(), "pad": "x" * pad})
        if path.read_bytes()[0] == 0x80:
            break
    assert path.read_bytes()[0] == 0x80
    loaded = load_checkpoint(path)
    assert torch.equal(loaded.state_dict()["l.heads.q.bias"], state["l.heads.q.bias"])
