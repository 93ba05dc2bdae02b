"""Fixtures of the fault matrix: a throw-away copy of the project (configuration only, the
package comes from this checkout) and small folders of real crops, and a `kedro run` helper."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT

KEDRO = Path(sys.executable).parent / "kedro"


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def make_project(root: Path) -> Path:
    """pyproject + conf (without conf/local) + empty data layers, ready for `kedro run`."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(PROJECT_ROOT / "pyproject.toml", root)
    shutil.copytree(PROJECT_ROOT / "conf", root / "conf", ignore=shutil.ignore_patterns("local"))
    (root / "conf" / "local").mkdir()
    (root / "src").mkdir()
    (root / "data").mkdir()
    (root / ".telemetry").write_text("consent: false\n")
    return root


def kedro_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "AZURE_"))}
    env.update({"OMP_NUM_THREADS": "1", "KEDRO_DISABLE_TELEMETRY": "true", "PYTHONUNBUFFERED": "1",
                "PYTHONPATH": os.pathsep.join([str(PROJECT_ROOT / "src"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
                "AWS_CONFIG_FILE": "/nonexistent/aws-config", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-creds",
                "AWS_EC2_METADATA_DISABLED": "true", "COLUMNS": "200"})
    env.update(extra)
    return env


def kedro_command(params: str, pipeline: str = "evaluate") -> list[str]:
    return [str(KEDRO), "run", "--pipelines", pipeline, "--params", params]


def start(project: Path, params: str, pipeline: str = "evaluate", **env: str) -> subprocess.Popen:
    return subprocess.Popen(kedro_command(params, pipeline), cwd=project, env=kedro_env(**env), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


def finish(process: subprocess.Popen, started: float, timeout: float = 300) -> Run:
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
    return Run(process.returncode, out, err, time.monotonic() - started)


def run(project: Path, params: str, pipeline: str = "evaluate", preexec_fn=None, **env: str) -> Run:
    started = time.monotonic()
    result = subprocess.run(kedro_command(params, pipeline), cwd=project, env=kedro_env(**env), text=True,
                            capture_output=True, timeout=300, preexec_fn=preexec_fn)
    return Run(result.returncode, result.stdout, result.stderr, time.monotonic() - started)


def forms_folder(target: Path, source: Path, names: list[str]) -> Path:
    """A Donut-layout folder with the named forms of ``source`` (images and metadata lines)."""
    target.mkdir(parents=True)
    lines = {json.loads(line)["file_name"]: line for line in (source / "metadata.jsonl").read_text().splitlines()}
    for name in names:
        shutil.copy(source / name, target / name)
    (target / "metadata.jsonl").write_text("".join(lines[n] + "\n" for n in names))
    return target


def latest(project: Path, relative: str) -> Path:
    """The newest version of a versioned output: data/08_reporting/metrics.md -> .../<v>/metrics.md."""
    folder = project / relative
    versions = sorted(p for p in folder.glob(f"*/{folder.name}"))
    assert versions, f"no version of {relative} was written"
    return versions[-1]


def versions(project: Path, relative: str) -> list[Path]:
    folder = project / relative
    return sorted(folder.glob(f"*/{folder.name}"))


@pytest.fixture(scope="session")
def validation_names(shared_validation) -> list[str]:
    names = [json.loads(line)["file_name"] for line in (shared_validation / "metadata.jsonl").read_text().splitlines()]
    return sorted(names)
