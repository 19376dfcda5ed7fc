"""Model manifests: content, not timestamps, makes a manifest stale; a truncated weight file is
one line; a job checks its model's files against the manifest."""

from __future__ import annotations

import os
import shutil
import time

import pytest

from laserflow.io import LaserflowError, read_json, sha256_file
from laserflow.manifest import refresh, stat_path, verified_files, write_manifest
from laserflow.models import load_model, read_parameters


@pytest.fixture
def model(tiny_models, tmp_path):
    """A copy of the tiny GPT-J model and its manifest."""
    directory = tmp_path / "model"
    shutil.copytree(tiny_models["gptj"], directory)
    manifest = tmp_path / "manifests" / "gptj.json"
    write_manifest(directory, manifest)
    return directory, manifest


def flip_byte(path, offset=-100):
    data = bytearray(path.read_bytes())
    data[offset] ^= 1
    with open(path, "r+b") as handle:  # in place: the folder's timestamp does not change
        handle.write(bytes(data))


def test_a_manifest_names_every_file_with_its_sha256(model):
    directory, manifest = model
    files = read_json(manifest)["files"]
    assert sorted(files) == sorted(path.name for path in directory.iterdir() if path.suffix in (".json", ".safetensors"))
    assert files["model.safetensors"] == sha256_file(directory / "model.safetensors")


def test_touched_files_leave_the_manifest_as_it_is(model):
    directory, manifest = model
    before = (manifest.read_bytes(), manifest.stat().st_mtime_ns)
    later = time.time() + 60
    for path in directory.iterdir():
        os.utime(path, (later, later))
    assert refresh(directory, manifest) is None
    assert (manifest.read_bytes(), manifest.stat().st_mtime_ns) == before
    assert verified_files(directory, manifest) == read_json(manifest)["files"]


def test_one_changed_byte_rewrites_the_manifest(model):
    directory, manifest = model
    weights = directory / "model.safetensors"
    flip_byte(weights)
    with pytest.raises(LaserflowError) as err:  # a job started before the workflow looked again
        verified_files(directory, manifest)
    assert str(err.value) == (f"{directory}: model.safetensors changed since {manifest} was written; rerun "
                              f"snakemake, which rehashes it and reruns what it affects")
    assert refresh(directory, manifest) == (
        f"{directory}: model.safetensors changed since {manifest} was written; rehashed, so every SVD and "
        f"evaluation of this model reruns")
    assert read_json(manifest)["files"]["model.safetensors"] == sha256_file(weights)
    assert refresh(directory, manifest) is None
    assert stat_path(manifest).name == ".gptj.stat.json"


def test_a_truncated_safetensors_file_is_one_line_before_any_compute(model):
    directory, manifest = model
    weights = directory / "model.safetensors"
    size = weights.stat().st_size
    os.truncate(weights, size - 1000)
    message = (f"{weights}: truncated or damaged safetensors file ({size - 1000} bytes, its header describes {size}); "
               f"restore or re-download the model")
    for check in (lambda: write_manifest(directory, manifest), lambda: refresh(directory, manifest),
                  lambda: load_model(directory), lambda: read_parameters(directory, ["transformer.h.1.mlp.fc_in.weight"])):
        with pytest.raises(LaserflowError) as err:
            check()
        assert str(err.value) == message
