import importlib.util
import os
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from hypothesis import Phase, settings
from PIL import Image, ImageDraw

# No test may reach the network: Hub ids fail at once instead of being retried.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

# Property-based fuzzing (tests/test_fuzz.py): `ci` by default, derandomized (the same examples on every run) and
# bounded to about a minute on one core; `pytest --hypothesis-profile=deep` runs many more, nightly-style.
settings.register_profile(
    "ci",
    max_examples=100,
    deadline=None,
    derandomize=True,
    print_blob=True,
    phases=tuple(Phase)[:4],  # no shrinking
)
settings.register_profile("deep", max_examples=500, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def load_script(path) -> ModuleType:
    """Import a script of `train/`, `scripts/` or `benchmarks/` (not a package) as a module, named after its file."""
    spec = importlib.util.spec_from_file_location(Path(path).stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def shared_data() -> Path:
    if not (SHARED_DATA / "adventurer").is_dir():
        pytest.skip("../shared/data is not beside the checkout")
    return SHARED_DATA


def draw_illustration(size: int = 64, seed: int = 0) -> Image.Image:
    """A small flat-colored drawing with black outlines: a colored disc and a colored square on a pale background."""
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (size, size), tuple(int(v) for v in rng.integers(200, 256, 3)))
    draw = ImageDraw.Draw(image)
    s = size
    draw.ellipse(
        (s * 0.1, s * 0.1, s * 0.55, s * 0.55),
        fill=tuple(int(v) for v in rng.integers(0, 200, 3)),
        outline=(0, 0, 0),
        width=max(1, s // 32),
    )
    draw.rectangle(
        (s * 0.5, s * 0.5, s * 0.9, s * 0.9),
        fill=tuple(int(v) for v in rng.integers(0, 200, 3)),
        outline=(0, 0, 0),
        width=max(1, s // 32),
    )
    return image


@pytest.fixture
def illustration() -> Image.Image:
    return draw_illustration(64)


@pytest.fixture
def illustration_folder(tmp_path) -> Path:
    folder = tmp_path / "illustrations"
    folder.mkdir()
    for i in range(3):
        draw_illustration(48 + 8 * i, seed=i).save(folder / f"drawing_{i}.png")
    return folder


@pytest.fixture
def pairs_folder(tmp_path) -> Path:
    from stablepaint.synthesis import xdog

    folder = tmp_path / "pairs"
    folder.mkdir()
    for i in range(3):
        color = draw_illustration(64, seed=10 + i)
        color.save(folder / f"item{i}_color.png")
        Image.fromarray(xdog(color, sigma=0.5)).save(folder / f"item{i}_line.png")
    (folder / "lonely_color.png").write_bytes((folder / "item0_color.png").read_bytes())  # no partner: ignored
    return folder


VGG16_WEIGHTS = REPO.parent / "shared" / "weights" / "vgg16_features.safetensors"


@pytest.fixture
def vgg16_weights() -> Path:
    """The project's VGG16 ImageNet weights (safetensors, torchvision layout); skips when ../shared is absent."""
    if not VGG16_WEIGHTS.is_file():
        pytest.skip("../shared/weights/vgg16_features.safetensors is not beside the checkout")
    return VGG16_WEIGHTS


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def run_accelerate():
    """Run a script with `accelerate launch` as `num_processes` CPU processes (gloo), and return the CompletedProcess.

    Two CPU processes need `ACCELERATE_USE_CPU=1` with `--multi_gpu`: `--cpu --num_processes 2` silently starts one.
    """
    import subprocess
    import sys

    def run(script, args, num_processes: int = 2, timeout: int = 600, env=None):
        launcher = [sys.executable, "-m", "accelerate.commands.launch"]
        if num_processes > 1:
            launcher += ["--multi_gpu", "--num_processes", str(num_processes)]
        else:
            launcher += ["--cpu", "--num_processes", "1"]
        launcher += ["--num_machines", "1", "--main_process_port", str(_free_port()), "--dynamo_backend", "no"]
        full_env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
        full_env.update(env or {})
        command = launcher + [str(script)] + [str(a) for a in args]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=full_env, cwd=REPO)

    return run
