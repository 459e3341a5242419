"""Log a run to a real ``mlflow server`` over HTTP on 127.0.0.1 (a free port)."""

import socket
import subprocess
import sys
import time
import urllib.request

import mlflow
import pandas as pd
import pytest

from conftest import fast_overrides
from supportlens.config import load_config
from supportlens.training.trainer import train


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def mlflow_server(tmp_path):
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{tmp_path / 'server.db'}",
            "--artifacts-destination",
            str(tmp_path / "server-artifacts"),
            "--workers",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2):
                break
        except OSError:
            if proc.poll() is not None:
                pytest.fail("mlflow server exited early")
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("mlflow server did not start in 90 s")
    yield url
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_run_logged_to_remote_server(mlflow_server, coded_file, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cfg = load_config(None, fast_overrides() + [f"data.path={coded_file}"])
    result = train(cfg, tracking_uri=mlflow_server, log=lambda m: None)
    client = mlflow.MlflowClient(tracking_uri=mlflow_server)
    run = client.get_run(result.run_id)
    assert "macro_f1" in run.data.metrics
    assert (tmp_path / "server-artifacts").exists()  # artifacts went through the server
    mlflow.set_tracking_uri(mlflow_server)
    model = mlflow.pyfunc.load_model(result.model_uri)
    assert model.predict(pd.DataFrame({"text": ["we trained them"]})).shape[0] == 1
