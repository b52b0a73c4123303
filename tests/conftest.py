"""Shared fixtures: one tiny synthetic dataset, made once per test session, at every pipeline stage.

All of them are read-only for tests (copy a file before changing it):
- synthetic_raw_zip / synthetic_raw_dir: the same 12 images (seed 7, sizes 32x32, 40x48, 48x48) as a Kaggle-layout
  zip and as a folder;
- synthetic_interim_h5: `unetpp ingest` of the zip;
- synthetic_processed_h5: `unetpp preprocess` of it at 32x32;
- synthetic_split_json: `unetpp split` of that with val 0.25 (3 images), test 0, seed 41.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from unetpp.data.ingest import ingest
from unetpp.data.preprocess import preprocess
from unetpp.data.split import split
from unetpp.data.synth import synthesize

SYNTH_N = 12
SYNTH_SEED = 7
SYNTH_SIZES = ((32, 32), (40, 48), (48, 48))
SYNTH_PROCESSED_SIZE = 32


def real_raw_zip() -> Path:
    """The real DSB2018 zip beside the repo (shared/), or $UNETPP_RAW_ZIP."""
    default = Path(__file__).resolve().parents[2] / "shared/data/dsb2018/stage1_train.zip"
    return Path(os.environ.get("UNETPP_RAW_ZIP", default))


def pytest_report_header(config: pytest.Config) -> str:
    """The CPU and torch's dispatch level: float tolerances and layout choices depend on them."""
    import torch

    from unetpp.training.device import cpu_kernel_family, cpu_model

    return (f"unetpp: CPU {cpu_model()}, torch {torch.__version__} CPU capability "
            f"{torch.backends.cpu.get_cpu_capability()} (kernel family {cpu_kernel_family()}), "
            f"{torch.get_num_threads()} threads")


@pytest.fixture(autouse=True, scope="session")
def layout_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Keep `--layout auto`'s per-machine decisions (training/layout.py) out of the user's ~/.cache during tests."""
    folder = tmp_path_factory.mktemp("layout-cache")
    os.environ["UNETPP_CACHE_DIR"] = str(folder)
    return folder


@pytest.fixture(scope="session")
def synthetic_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("synthetic")


@pytest.fixture(scope="session")
def synthetic_raw_zip(synthetic_dir: Path) -> Path:
    path = synthetic_dir / "raw.zip"
    synthesize(SYNTH_N, path, seed=SYNTH_SEED, sizes=SYNTH_SIZES)
    return path


@pytest.fixture(scope="session")
def synthetic_raw_dir(synthetic_dir: Path) -> Path:
    path = synthetic_dir / "raw"
    synthesize(SYNTH_N, path, seed=SYNTH_SEED, sizes=SYNTH_SIZES)
    return path


@pytest.fixture(scope="session")
def synthetic_interim_h5(synthetic_dir: Path, synthetic_raw_zip: Path) -> Path:
    path = synthetic_dir / "interim.h5"
    ingest(synthetic_raw_zip, path, workers=1, progress=False)
    return path


@pytest.fixture(scope="session")
def synthetic_processed_h5(synthetic_dir: Path, synthetic_interim_h5: Path) -> Path:
    path = synthetic_dir / f"processed_{SYNTH_PROCESSED_SIZE}.h5"
    preprocess(synthetic_interim_h5, path, size=SYNTH_PROCESSED_SIZE, workers=1, progress=False)
    return path


@pytest.fixture(scope="session")
def synthetic_split_json(synthetic_dir: Path, synthetic_processed_h5: Path) -> Path:
    path = synthetic_dir / "split.json"
    split(synthetic_processed_h5, path, val_fraction=0.25, test_fraction=0.0, seed=41)
    return path
