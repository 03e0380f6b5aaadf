import pytest
import torch
from safetensors.torch import save_file

from gantk.errors import CheckpointError
from gantk.io.checkpoint import find_checkpoint, is_complete, load_weights, save_checkpoint, step_checkpoints
from tests.helpers import trained_dcgan_run


def _save(folder, value=1.0):
    return save_checkpoint(
        folder, meta={"step": 1}, networks={"G": {"w": torch.full((2,), value)}}, training_state={"step": 1}
    )


def test_save_is_complete_and_replaces_atomically(tmp_path):
    folder = _save(tmp_path / "checkpoints" / "step_00000001")
    assert is_complete(folder)
    _save(folder, 2.0)  # overwrite in place
    from safetensors.torch import load_file

    assert load_file(folder / "G.safetensors")["w"][0] == 2.0
    assert [p.name for p in folder.parent.iterdir()] == ["step_00000001"]  # no temporary folders left


def test_incomplete_checkpoints_are_ignored(tmp_path):
    run = tmp_path / "run"
    _save(run / "checkpoints" / "step_00000001")
    newer = _save(run / "checkpoints" / "step_00000002")
    (newer / "manifest.json").unlink()  # as if the process died before the manifest
    assert [p.name for p in step_checkpoints(run)] == ["step_00000001"]
    assert find_checkpoint(run).name == "step_00000001"
    truncated = _save(run / "checkpoints" / "step_00000003")
    with open(truncated / "G.safetensors", "r+b") as fh:
        fh.truncate(10)
    assert find_checkpoint(run).name == "step_00000001"
    with pytest.raises(CheckpointError, match="incomplete"):
        find_checkpoint(truncated)


def test_pickle_files_are_refused(tmp_path):
    (tmp_path / "model.pth").write_bytes(b"\x80\x04not really")
    with pytest.raises(CheckpointError, match="pickle"):
        find_checkpoint(tmp_path / "model.pth")


def test_weight_mismatch_lists_every_problem(tmp_path):
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    bad = {"0.weight": torch.zeros(5, 3), "0.bias": torch.zeros(4), "9.extra": torch.zeros(1)}
    save_file(bad, str(tmp_path / "G.safetensors"))
    with pytest.raises(CheckpointError) as err:
        load_weights(net, tmp_path / "G.safetensors")
    msg = str(err.value)
    assert "missing 1.bias, 1.weight" in msg and "unexpected 9.extra" in msg and "0.weight: file (5, 3)" in msg


def test_run_without_checkpoints(tmp_path):
    with pytest.raises(CheckpointError, match="no complete checkpoint"):
        find_checkpoint(tmp_path)


# ---- issue 16: content checksums, a full disk, exports that never delete, config.json that runs no code


def test_a_flipped_byte_inside_a_weights_file_is_refused_naming_the_file(tmp_path):
    from gantk.io.checkpoint import read_tensors

    folder = _save(tmp_path / "step_00000001", 1.0)
    path = folder / "G.safetensors"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x40  # inside the tensor bytes: the size, and so the manifest's size check, are unchanged
    path.write_bytes(bytes(data))
    assert is_complete(folder)
    with pytest.raises(CheckpointError, match=r"G.safetensors is corrupt: .*SHA-256"):
        read_tensors(path)


def test_a_full_disk_during_a_safetensors_write_is_an_os_error_with_the_usual_message(tmp_path, monkeypatch):
    from safetensors import SafetensorError

    from gantk.io import checkpoint as ckpt

    def full(*args, **kwargs):
        raise SafetensorError(
            'Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No space left on device" })'
        )

    monkeypatch.setattr(ckpt, "save_file", full)
    with pytest.raises(OSError, match="No space left on device"):
        _save(tmp_path / "step_00000001")
    assert not list(tmp_path.iterdir())  # the temporary folder went with it


def test_export_never_deletes_what_the_destination_held(tmp_path, image_folder):
    from gantk.io.checkpoint import export_generator

    run = trained_dcgan_run(tmp_path, image_folder)
    other = trained_dcgan_run(tmp_path / "b", image_folder)
    before = sorted(p.relative_to(other) for p in other.rglob("*"))
    with pytest.raises(CheckpointError, match="already holds files and is not an earlier export"):
        export_generator(run, other)
    assert sorted(p.relative_to(other) for p in other.rglob("*")) == before
    (tmp_path / "afile").write_text("keep me")
    with pytest.raises(CheckpointError, match="is an existing file"):
        export_generator(run, tmp_path / "afile")
    assert (tmp_path / "afile").read_text() == "keep me" and not list(tmp_path.glob(".afile*"))
    shipped = export_generator(run, tmp_path / "shipped")
    assert export_generator(run, shipped) == shipped  # an earlier export is replaced


def _save_at(folder, step):
    return save_checkpoint(folder, meta={"step": step}, networks={"G": {"w": torch.zeros(2)}}, training_state={})


def test_checkpoints_are_ordered_by_their_recorded_step_and_copies_are_ignored(tmp_path):
    """A copied step_backup or a renamed step_00000004.corrupt is never the newest (issue 33)."""
    run = tmp_path / "run"
    root = run / "checkpoints"
    for step in (2, 4, 6):
        _save_at(root / f"step_{step:08d}", step)
    import shutil

    shutil.copytree(root / "step_00000002", root / "step_backup")
    shutil.copytree(root / "step_00000004", root / "step_00000004.corrupt")
    shutil.copytree(root / "step_00000002", root / "step_99")  # a hand-renamed copy: its manifest says step 2
    names = [p.name for p in step_checkpoints(run)]
    assert names == ["step_00000002", "step_99", "step_00000004", "step_00000006"]
    assert find_checkpoint(run).name == "step_00000006"


@pytest.mark.parametrize(("mask", "folder_mode", "file_mode"), [(0o022, 0o755, 0o644), (0o077, 0o700, 0o600)])
def test_a_checkpoint_has_the_modes_the_umask_gives(tmp_path, mask, folder_mode, file_mode):
    """Not mkdtemp's 0700 and safetensors' 0600 whatever the umask: an export is shipped to others."""
    import os
    import stat

    old = os.umask(mask)
    try:
        folder = _save(tmp_path / ("c" * 250))  # a long legal name: the temporary name is cut, never this one
    finally:
        os.umask(old)
    assert stat.S_IMODE(folder.stat().st_mode) == folder_mode
    assert {stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()} == {file_mode}


def test_temporaries_of_a_killed_writer_are_removed_and_a_live_ones_kept(tmp_path):
    import os

    from gantk import staging

    dest = tmp_path / "step_00000001"
    dead = tmp_path / ".step_00000001.tmp-999999999-abc"  # no such process
    live = tmp_path / f".step_00000001.tmp-{os.getppid()}-abc"  # the test runner's parent: alive
    dead.mkdir()
    live.mkdir()
    _save(dest)
    assert not dead.exists() and live.exists()
    assert staging.stale_staging(dest) == []
