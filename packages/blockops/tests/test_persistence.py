import errno
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import textwrap
import threading

import numpy as np
import pytest
import torch
from blockops import load_checkpoint, save_checkpoint


def test_roundtrip(tmp_path):
    cfg = {"a": 1, "name": "x", "list": [1.5, 2.5]}
    tens = {"w": torch.arange(6.0).reshape(2, 3), "codes": torch.tensor([1, 2])}
    save_checkpoint(tmp_path / "ck", cfg, tens, {"package": "blockops"})
    c, t, m = load_checkpoint(tmp_path / "ck")
    assert c == cfg and m["package"] == "blockops" and m["format_version"] == 1
    assert torch.equal(t["w"], tens["w"]) and torch.equal(t["codes"], tens["codes"])
    assert (tmp_path / "ck" / "config.yaml").read_text().startswith("a: 1")


def test_overwrite_replaces(tmp_path):
    save_checkpoint(tmp_path / "ck", {"v": 1}, {})
    save_checkpoint(tmp_path / "ck", {"v": 2}, {})
    assert load_checkpoint(tmp_path / "ck")[0] == {"v": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck"]


@pytest.mark.parametrize("target", ["tensors.pt", "config.yaml"])
def test_truncated_or_edited_is_refused(tmp_path, target):
    save_checkpoint(tmp_path / "ck", {"v": 1}, {"w": torch.ones(100)})
    path = tmp_path / "ck" / target
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="checksum"):
        load_checkpoint(tmp_path / "ck")


def test_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path / "none")
    save_checkpoint(tmp_path / "ck", {}, {})
    os.remove(tmp_path / "ck" / "meta.json")
    with pytest.raises(FileNotFoundError, match="meta.json"):
        load_checkpoint(tmp_path / "ck")


def test_bad_meta(tmp_path):
    save_checkpoint(tmp_path / "ck", {}, {})
    (tmp_path / "ck" / "meta.json").write_text(json.dumps({"format_version": 99}))
    with pytest.raises(ValueError, match="format_version"):
        load_checkpoint(tmp_path / "ck")


def test_non_tensor_rejected(tmp_path):
    with pytest.raises(TypeError, match="tensors"):
        save_checkpoint(tmp_path / "ck", {}, {"w": [1, 2]})


def test_crash_mid_save_keeps_old(tmp_path):
    save_checkpoint(tmp_path / "ck", {"v": "old"}, {"w": torch.zeros(3)})
    script = textwrap.dedent(
        f"""
        import os, torch, blockops.persistence as p
        real = torch.save
        def dying(obj, f):
            real(obj, f)
            os._exit(3)
        torch.save = dying
        p.save_checkpoint({str(tmp_path / "ck")!r}, {{"v": "new"}}, {{"w": torch.ones(3)}})
        """
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.run([sys.executable, "-c", script], env=env)
    assert proc.returncode == 3
    cfg, tens, _ = load_checkpoint(tmp_path / "ck")
    assert cfg == {"v": "old"} and torch.equal(tens["w"], torch.zeros(3))


def test_pickled_object_not_executed(tmp_path):
    save_checkpoint(tmp_path / "ck", {}, {"w": torch.ones(1)})
    # replace the tensors with a pickle of an arbitrary object and fix the checksum
    torch.save(
        {"w": torch.ones(1), "evil": pathlib.PurePosixPath("x")}, tmp_path / "ck" / "tensors.pt"
    )
    import blockops.persistence as p

    meta = json.loads((tmp_path / "ck" / "meta.json").read_text())
    meta["sha256"]["tensors.pt"] = p._digest(tmp_path / "ck" / "tensors.pt")
    (tmp_path / "ck" / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(Exception, match="(?i)weights_only|unsupported|PurePosixPath"):
        load_checkpoint(tmp_path / "ck")


def test_non_tensor_values_refused(tmp_path):
    save_checkpoint(tmp_path / "ck", {}, {"w": torch.ones(1)})
    torch.save({"w": [1, 2]}, tmp_path / "ck" / "tensors.pt")
    import blockops.persistence as p

    meta = json.loads((tmp_path / "ck" / "meta.json").read_text())
    meta["sha256"]["tensors.pt"] = p._digest(tmp_path / "ck" / "tensors.pt")
    (tmp_path / "ck" / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="not a tensor"):
        load_checkpoint(tmp_path / "ck")


def test_never_replaces_a_file_or_a_folder_of_other_files(tmp_path):
    tensors = {"w": torch.ones(2)}
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="is a file"):
        save_checkpoint(tmp_path / "notes.txt", {}, tensors)
    assert (tmp_path / "notes.txt").read_text() == "mine"
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "table.csv").write_text("a,b")
    with pytest.raises(FileExistsError, match="not a checkpoint"):
        save_checkpoint(folder, {}, tensors)
    assert (folder / "table.csv").read_text() == "a,b"
    empty = tmp_path / "empty"
    empty.mkdir()
    save_checkpoint(empty, {"k": 1}, tensors)
    assert load_checkpoint(empty)[0] == {"k": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "notes.txt", "results"]


def test_never_deletes_other_files_next_to_a_meta_json(tmp_path):
    # a results folder that happens to hold a meta.json is not a checkpoint: nothing is replaced
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "meta.json").write_text("{}")
    (folder / "precious.csv").write_text("a,b")
    with pytest.raises(FileExistsError, match="precious.csv"):
        save_checkpoint(folder, {}, {"w": torch.ones(1)})
    assert sorted(p.name for p in folder.iterdir()) == ["meta.json", "precious.csv"]


def test_bad_containers_refused_on_save_and_load(tmp_path):
    with pytest.raises(TypeError, match="config must be a dict"):
        save_checkpoint(tmp_path / "a", [1, 2], {})  # would write a checkpoint load refuses
    with pytest.raises(TypeError, match="tensors must be a dict"):
        save_checkpoint(tmp_path / "b", {}, [torch.ones(1)])
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    save_checkpoint(tmp_path / "c", {}, {"w": torch.ones(1)})
    meta = json.loads((tmp_path / "c" / "meta.json").read_text())
    meta["sha256"] = ["edited"]
    (tmp_path / "c" / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="sha256"):
        load_checkpoint(tmp_path / "c")


def test_map_location_accepts_auto_and_names_itself(tmp_path):
    # "auto" was torch's "don't know how to restore data location ... (tagged with auto)"
    save_checkpoint(tmp_path / "ck", {}, {"w": torch.arange(3.0)})
    _, tensors, _ = load_checkpoint(tmp_path / "ck", map_location="auto")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert tensors["w"].device.type == expected and tensors["w"].tolist() == [0.0, 1.0, 2.0]
    with pytest.raises(ValueError, match="map_location='tpu' is not understood"):
        load_checkpoint(tmp_path / "ck", map_location="tpu")


def test_config_that_safe_yaml_cannot_write_names_the_entry(tmp_path):
    # was yaml's RepresenterError ('cannot represent an object', np.float64(0.1))
    with pytest.raises(TypeError, match=r"config\['grid'\]\[1\] is a float64"):
        save_checkpoint(tmp_path / "ck", {"grid": [0.5, np.float64(0.1)]}, {})
    with pytest.raises(TypeError, match=r"config\['w'\] is a Tensor"):
        save_checkpoint(tmp_path / "ck", {"w": torch.tensor(1.0)}, {})
    with pytest.raises(TypeError, match=r"tensors\['s'\] must be a dense tensor"):
        save_checkpoint(tmp_path / "ck", {}, {"s": torch.eye(2).to_sparse()})
    assert not (tmp_path / "ck").exists()
    cfg = {"t": (1, "x"), "n": None, "b": True, "nested": {"s": {2}}}
    save_checkpoint(tmp_path / "ck", cfg, {})
    assert load_checkpoint(tmp_path / "ck")[0] == {**cfg, "t": [1, "x"]}


def test_a_view_saves_only_its_own_elements(tmp_path):
    # torch.save of a view writes its whole storage: one row of a 1000x1000 buffer was 4 MB
    buffer = torch.arange(1_000_000.0).reshape(1000, 1000)
    save_checkpoint(tmp_path / "ck", {}, {"row": buffer[3]})
    assert (tmp_path / "ck" / "tensors.pt").stat().st_size < 100_000
    assert torch.equal(load_checkpoint(tmp_path / "ck")[1]["row"], buffer[3])


def test_leftover_backup_with_the_old_pid_name_does_not_break_a_save(tmp_path):
    # the backup was ".ck.old-<pid>": a crashed save's leftover (a recycled pid, or this
    # process) made os.replace fail with "Directory not empty"
    save_checkpoint(tmp_path / "ck", {"v": 1}, {"w": torch.zeros(2)})
    leftover = tmp_path / f".ck.old-{os.getpid()}"
    leftover.mkdir()
    (leftover / "meta.json").write_text("{}")
    save_checkpoint(tmp_path / "ck", {"v": 2}, {"w": torch.ones(2)})
    cfg, tens, _ = load_checkpoint(tmp_path / "ck")
    assert cfg == {"v": 2} and torch.equal(tens["w"], torch.ones(2))
    assert (leftover / "meta.json").read_text() == "{}"  # not ours: left alone
    assert sorted(p.name for p in tmp_path.iterdir()) == [leftover.name, "ck"]


def test_threads_saving_to_one_path_do_not_collide(tmp_path):
    # threads of one process shared the backup name ".ck.old-<pid>"
    target = tmp_path / "ck"
    save_checkpoint(target, {"i": -1}, {"w": torch.zeros(1)})
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for _ in range(5):
                save_checkpoint(target, {"i": i}, {"w": torch.full((1,), float(i))})
        except BaseException as exc:  # collected and reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    cfg, tens, _ = load_checkpoint(target)
    assert cfg["i"] in range(6) and tens["w"].item() == cfg["i"]
    assert [p.name for p in tmp_path.iterdir()] == ["ck"]  # no temporary or backup left


@pytest.mark.parametrize(
    "meta, error, match",
    [
        # was json's "Object of type float32 is not JSON serializable", naming no argument
        ({"acc": np.float32(0.5)}, TypeError, "meta must hold JSON values.*float32"),
        ([("a", 1)], TypeError, "meta must be a dict or None, got list"),
        # was "'<' not supported between 'str' and 'int'" (sort_keys), or "1" on load
        ({1: "a"}, TypeError, "meta has the key 1; meta.json keys must be str"),
        ({"a": [{2: 0}]}, TypeError, r"meta\['a'\]\[0\] has the key 2"),
    ],
)
def test_meta_that_json_cannot_hold_names_meta(tmp_path, meta, error, match):
    save_checkpoint(tmp_path / "ck", {"v": "old"}, {"w": torch.zeros(1)})
    with pytest.raises(error, match=match):
        save_checkpoint(tmp_path / "ck", {"v": "new"}, {"w": torch.ones(1)}, meta)
    assert load_checkpoint(tmp_path / "ck")[0] == {"v": "old"}
    assert [p.name for p in tmp_path.iterdir()] == ["ck"]
    nested = {"a": {"b": [1, 2.5, None, "x"]}, "ok": True}
    save_checkpoint(tmp_path / "ck", {}, {"w": torch.ones(1)}, nested)
    meta_back = load_checkpoint(tmp_path / "ck")[2]
    assert meta_back["a"] == nested["a"] and meta_back["ok"] is True


@pytest.mark.parametrize("config", [{(1, 2): "a"}, {"grid": {(0.1, 1): 0.9}}])
def test_a_tuple_key_in_config_is_refused_before_saving(tmp_path, config):
    # was saved, then every load failed with yaml's "found unhashable key"
    with pytest.raises(TypeError, match=r"a key of config(\['grid'\])? is a tuple"):
        save_checkpoint(tmp_path / "ck", config, {"w": torch.zeros(1)})
    assert not (tmp_path / "ck").exists()


def test_a_loaded_checkpoint_saves_back_with_its_meta(tmp_path):
    save_checkpoint(tmp_path / "ck", {"v": 1}, {"w": torch.zeros(2)}, {"package": "x"})
    config, tensors, meta = load_checkpoint(tmp_path / "ck")
    config["v"] = 2
    tensors["w"] += 1
    save_checkpoint(tmp_path / "ck", config, tensors, meta)  # meta holds the written keys
    config, tensors, meta_back = load_checkpoint(tmp_path / "ck")
    assert config == {"v": 2} and torch.equal(tensors["w"], torch.ones(2))
    assert meta_back["package"] == "x" and meta_back["format_version"] == 1
    assert meta_back["sha256"] != meta["sha256"]  # recomputed for the new files


def test_saving_into_the_working_directory_is_a_clear_error(tmp_path, monkeypatch):
    # save_checkpoint(".") failed with "Device or resource busy: '.' -> '..old-...'" and left
    # that backup directory inside the working directory
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    for directory in (".", str(work), "sub/..", ".."):
        with pytest.raises(ValueError, match="current working directory"):
            save_checkpoint(directory, {"v": 1}, {"w": torch.ones(2)})
    assert list(work.iterdir()) == []
    (work / "sub").mkdir()
    save_checkpoint("sub/../ck", {"v": 2}, {"w": torch.ones(2)})
    assert load_checkpoint(work / "ck")[0] == {"v": 2}


def test_a_name_near_the_length_limit_saves_and_replaces(tmp_path):
    # the temporary sibling ".<name>.<random>" exceeded 255 bytes: "File name too long"
    target = tmp_path / ("é" * 125)  # 250 bytes in UTF-8: a valid directory name
    save_checkpoint(target, {"v": 1}, {"w": torch.ones(2)})
    save_checkpoint(target, {"v": 2}, {"w": torch.zeros(2)})  # the backup sibling too
    config, tensors, _ = load_checkpoint(target)
    assert config == {"v": 2} and torch.equal(tensors["w"], torch.zeros(2))
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]


def test_a_binary_meta_json_is_a_value_error(tmp_path):
    # was a bare UnicodeDecodeError ("'utf-8' codec can't decode byte 0xff")
    save_checkpoint(tmp_path / "ck", {}, {"w": torch.ones(1)})
    (tmp_path / "ck" / "meta.json").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ValueError, match="meta.json is not valid JSON"):
        load_checkpoint(tmp_path / "ck")


def test_saving_through_a_symlink_replaces_the_checkpoint_it_points_to(tmp_path):
    # was IsADirectoryError: the link was renamed over the backup directory
    save_checkpoint(tmp_path / "real", {"v": 1}, {"w": torch.ones(1)})
    (tmp_path / "link").symlink_to(tmp_path / "real", target_is_directory=True)
    assert save_checkpoint(tmp_path / "link", {"v": 2}, {"w": torch.ones(1)}) == tmp_path / "link"
    assert (tmp_path / "link").is_symlink()
    assert load_checkpoint(tmp_path / "real")[0] == {"v": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "real"]


def test_an_unwritable_folder_is_an_error_naming_the_checkpoint(tmp_path, monkeypatch):
    # was "[Errno 13] Permission denied: '<dir>/.ck.x1y2z3'", naming a hidden temporary folder
    # (simulated: chmod does not stop root, who runs some CI containers)
    def refuse(prefix, dir):
        raise PermissionError(errno.EACCES, "Permission denied", os.path.join(dir, prefix))

    monkeypatch.setattr(tempfile, "mkdtemp", refuse)
    with pytest.raises(PermissionError, match=r"cannot save a checkpoint at '.*ck'.*Permission"):
        save_checkpoint(tmp_path / "ck", {}, {"w": torch.ones(1)})
    assert list(tmp_path.iterdir()) == []
