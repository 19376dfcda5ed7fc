"""Bad inputs outside the config: downloads, the hub, and the SVD cache's agreement with a fresh SVD."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import pytest
import torch

from laserflow import svd_cache
from laserflow.data.fetch import download
from laserflow.edits import Level
from laserflow.io import LaserflowError, read_json
from laserflow.svd_cache import check_svd_caches
from laserflow.svd import compute_svd, load_svd_cache
from laserflow.laser import truncate


def test_download_verifies_the_checksum_and_leaves_nothing_on_mismatch(tmp_path):
    source = tmp_path / "counterfact.json"
    source.write_text("[]")
    good = hashlib.sha256(b"[]").hexdigest()
    target = tmp_path / "out" / "counterfact.raw"
    assert download(source.as_uri(), target, sha256=good) == good
    assert target.read_text() == "[]"
    target.unlink()
    with pytest.raises(LaserflowError) as err:
        download(source.as_uri(), target, sha256="0" * 64)
    assert str(err.value) == f"{source.as_uri()}: sha256 mismatch: expected {'0' * 64}, found {good}"
    assert list(target.parent.iterdir()) == []


def test_an_unreachable_url_says_how_to_use_a_local_copy(tmp_path):
    url = (tmp_path / "missing.json").as_uri()
    target = tmp_path / "out.raw"
    with pytest.raises(LaserflowError) as err:
        download(url, target, retries=1)
    assert str(err.value).startswith(f"{url} is unreachable after 1 attempts (")
    assert str(err.value).endswith("download the file elsewhere and point the dataset's 'local' key at it")
    assert not target.exists()


def test_an_unreachable_hub_names_the_model_and_the_local_alternative(tmp_path):
    code = (
        "from laserflow.cli import run_script\n"
        "from laserflow.models import snapshot\n"
        "class Job:\n    log = []\n    threads = 1\n"
        f"run_script(Job, lambda: snapshot('EleutherAI/gpt-j-6B', 'float16', {str(tmp_path / 'model')!r}))\n"
    )
    env = dict(os.environ, HF_ENDPOINT="http://127.0.0.1:9", HF_HUB_ETAG_TIMEOUT="3", HF_HUB_DOWNLOAD_TIMEOUT="3")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith(
        "laserflow: error: model EleutherAI/gpt-j-6B@float16: the hub is unreachable (")
    assert "set models.<name>.path to the local directory" in result.stderr
    assert not (tmp_path / "model").exists()


@pytest.mark.parametrize("rate", [1.0, 4.0, 6.0, 9.9])
def test_cached_svd_truncation_equals_a_fresh_svd(tiny_models, tmp_path, rate):
    cache = tmp_path / "fc_in-1.pt"
    compute_svd(tiny_models["llama"], "fc_in", 1, cache)
    (name, factors), = load_svd_cache([cache]).items()
    from laserflow.models import read_parameters

    weight = read_parameters(tiny_models["llama"], [name])[name].float()
    rank = Level(rate=rate).kept_rank(tuple(weight.shape))
    U, S, Vh = torch.linalg.svd(weight, full_matrices=False)
    fresh = U[:, :rank] @ torch.diag(S[:rank]) @ Vh[:rank]
    for cached in (truncate(factors, rank), truncate(factors, rank, weight)):  # head product, W − tail
        assert (torch.linalg.norm(cached - fresh) / torch.linalg.norm(fresh)).item() < 1e-5


def test_a_gated_model_without_a_token_says_what_to_do(tmp_path):
    """A local server answers every hub request the way the hub answers for a gated repository."""
    code = (
        "import http.server, threading\n"
        "class Gated(http.server.BaseHTTPRequestHandler):\n"
        "    def _deny(self):\n"
        "        self.send_response(401)\n"
        "        self.send_header('X-Error-Code', 'GatedRepo')\n"
        "        self.send_header('X-Error-Message', 'Access to model meta-llama/Llama-2-7b-hf is restricted.')\n"
        "        self.send_header('Content-Length', '0')\n"
        "        self.end_headers()\n"
        "    do_GET = do_HEAD = _deny\n"
        "    def log_message(self, *args):\n        pass\n"
        "server = http.server.HTTPServer(('127.0.0.1', 0), Gated)\n"
        "threading.Thread(target=server.serve_forever, daemon=True).start()\n"
        "import os\n"
        "os.environ['HF_ENDPOINT'] = f'http://127.0.0.1:{server.server_port}'\n"
        "from laserflow.cli import run_script\n"
        "from laserflow.models import snapshot\n"
        "class Job:\n    log = []\n    threads = 1\n"
        "run_script(Job, lambda: snapshot('meta-llama/Llama-2-7b-hf', 'main', "
        f"{str(tmp_path / 'model')!r}))\n"
    )
    env = {key: value for key, value in os.environ.items() if key not in ("HF_TOKEN", "HF_ENDPOINT")}
    env["HF_HOME"] = str(tmp_path / "hf")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1] == (
        "laserflow: error: model meta-llama/Llama-2-7b-hf is gated: accept its licence on the hub and "
        "export HF_TOKEN, or set models.<name>.path to a local copy"
    )
    assert not (tmp_path / "model").exists()


def test_the_svd_cache_is_written_deterministically_with_its_sha256(tiny_models, tmp_path):
    first, second = tmp_path / "a" / "1.pt", tmp_path / "b" / "1.pt"
    for path in (first, second):
        compute_svd(tiny_models["gptj"], "fc_in", 1, path)
    assert first.read_bytes() == second.read_bytes()
    assert b".1.pt." not in first.read_bytes()  # no temporary file name inside
    record = read_json(tmp_path / "a" / "1.json")
    assert record["sha256"] == hashlib.sha256(first.read_bytes()).hexdigest()
    from laserflow.models import read_parameters
    from laserflow.svd import tensor_sha256

    name = "transformer.h.1.mlp.fc_in.weight"
    assert record["source_sha256"] == {name: tensor_sha256(read_parameters(tiny_models["gptj"], [name])[name])}


@pytest.mark.parametrize("damage", ["flip 400 bytes", "truncate"])
def test_a_corrupt_svd_cache_is_one_line_never_a_number(tiny_models, tmp_path, damage):
    cache = tmp_path / "1.pt"
    compute_svd(tiny_models["gptj"], "fc_in", 1, cache)
    recorded = read_json(tmp_path / "1.json")["sha256"]
    data = bytearray(cache.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    else:
        middle = len(data) // 2
        data[middle:middle + 400] = bytes(byte ^ 0xFF for byte in data[middle:middle + 400])
    cache.write_bytes(bytes(data))
    found = hashlib.sha256(bytes(data)).hexdigest()
    message = (f"{cache}: corrupt SVD cache (sha256 {found[:12]}…, recorded {recorded[:12]}…); "
               f"delete it and rerun snakemake, which rebuilds it")
    with pytest.raises(LaserflowError) as err:
        load_svd_cache([cache])
    assert str(err.value) == message
    with pytest.raises(LaserflowError) as err:  # the check when the workflow is read
        check_svd_caches([cache])
    assert str(err.value) == message


def test_the_workflows_cache_check_hashes_only_touched_files(tiny_models, tmp_path, monkeypatch):
    cache = tmp_path / "1.pt"
    compute_svd(tiny_models["gptj"], "fc_in", 1, cache)
    hashed = []
    monkeypatch.setattr(svd_cache, "sha256_file", lambda path: hashed.append(path) or hashlib.sha256(
        path.read_bytes()).hexdigest())
    check_svd_caches([cache, tmp_path / "unfinished.pt"])  # written by its job: its stat is recorded
    assert hashed == []
    os.utime(cache, (1, 1))
    check_svd_caches([cache])
    check_svd_caches([cache])  # verified once, then known again
    assert hashed == [cache]
