"""The web app under load and across users, on loopback only: N concurrent `gradio_client` sessions each color their
own lineart a fixed number of times against the app served on 127.0.0.1 with a tiny PaintsTorch pipeline.

Checked: every session gets back its own image (each lineart carries a unique mark, a line at its own row and column,
which `keep_lines` copies into the result), the cached uploads and results are gone once the sessions end, an upload
over `max_upload_mb` and a non-image are refused with a message, and the server listens on 127.0.0.1 by default.
The figures (requests/s, p50/p95 latency, peak RSS) are printed and written to `outputs/test-artifacts/app_load.json`;
`benchmarks/bench_app_load.py` runs the same load with more sessions (docs/reliability.md)."""

import contextlib
import json
import os
import socket
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
from test_paintstorch_pipeline import get_dummy_components

from stablepaint import PaintsTorchPipeline

pytestmark = pytest.mark.slow

ARTIFACTS = Path(__file__).resolve().parent.parent / "outputs" / "test-artifacts"
SESSIONS = 8
REQUESTS_PER_SESSION = 5
SIZE = (96, 64)  # (width, height) of every lineart
MODEL = "tiny PaintsTorch"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def session_mark(index: int):
    """The (row, column) of the lines that only session `index`'s lineart has."""
    return 2 + index, 2 + 2 * index


def session_lineart(index: int, folder: Path) -> Path:
    width, height = SIZE
    row, column = session_mark(index)
    lineart = np.full((height, width), 255, np.uint8)
    lineart[row, :] = 0
    lineart[:, column] = 0
    path = folder / f"lineart-{index}.png"
    PIL.Image.fromarray(lineart).save(path)
    return path


def dark_lines(image: PIL.Image.Image):
    """The rows and the columns of `image` that are dark from end to end."""
    gray = np.asarray(image.convert("L"))
    return set(np.flatnonzero((gray < 64).all(axis=1)).tolist()), set(np.flatnonzero((gray < 64).all(axis=0)).tolist())


def cached_files(temp_dir) -> list:
    """The files gradio cached for the sessions (those in the sub-folders of the app's temp folder)."""
    return [path for path in Path(temp_dir).glob("*/**/*") if path.is_file()]


class PeakRSS:
    """Samples the resident memory of this process (the server runs in it, in threads) until stopped."""

    def __init__(self, interval: float = 0.02):
        import psutil

        self.process, self.interval, self.peak = psutil.Process(), interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)


def run_load(
    url: str, folder: Path, sessions: int, requests_per_session: int, temp_dir=None, timeout: float = 300.0
) -> dict:
    """`sessions` concurrent clients, each coloring its own lineart `requests_per_session` times; returns the figures
    and, per session, the marks seen in its results. Loopback only, a fixed number of requests, bounded in time."""
    from gradio_client import Client, handle_file

    assert url.startswith("http://127.0.0.1:"), url
    linearts = [session_lineart(index, folder) for index in range(sessions)]
    clients = [Client(url, verbose=False, download_files=str(folder / f"client-{i}")) for i in range(sessions)]
    deadline = time.monotonic() + timeout
    cached = [0]  # the most files seen in the app's cache while the sessions ran

    def session(index: int):
        client, latencies, marks = clients[index], [], []
        for _ in range(requests_per_session):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the load did not finish in {timeout} s")
            lineart = {"background": handle_file(str(linearts[index])), "layers": [], "composite": None}
            start = time.perf_counter()
            result = client.predict(MODEL, lineart, *RUN_SETTINGS, api_name="/run")
            latencies.append(time.perf_counter() - start)
            if temp_dir is not None:
                cached[0] = max(cached[0], len(cached_files(temp_dir)))
            with PIL.Image.open(result[0]) as image:
                marks.append((image.size, dark_lines(image)))
        return latencies, marks

    try:
        with PeakRSS() as rss, ThreadPoolExecutor(sessions) as pool:
            start = time.perf_counter()
            outcomes = list(pool.map(session, range(sessions)))
            wall = time.perf_counter() - start
    finally:
        for client in clients:
            client.close()  # ends the session: its heartbeat stops, gradio runs its `unload` event
    latencies = sorted(latency for latency_list, _ in outcomes for latency in latency_list)
    figures = {
        "sessions": sessions,
        "requests": len(latencies),
        "wall_s": round(wall, 3),
        "requests_per_s": round(len(latencies) / wall, 2),
        "p50_ms": round(1000 * statistics.median(latencies), 1),
        "p95_ms": round(1000 * latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))], 1),
        "peak_rss_mb": round(rss.peak / 2**20, 1),
        "most_cached_files": cached[0],
        "cpu_cores": os.cpu_count(),
    }
    return {"figures": figures, "marks": [marks for _, marks in outcomes]}


# The /run API's inputs after the model and the lineart: hints, mask, previous image, seed, steps, images, keep lines,
# flatten regions, stroked regions, learned flats, palette text, palette file, layers, reference.
RUN_SETTINGS = (None, None, None, 0, 1, 1, True, False, "model default", "model default", "", None, "none", None)


@contextlib.contextmanager
def serve(folder: Path, model: str = "tiny", max_upload_mb: float = 1):
    """The app on a free 127.0.0.1 port (launched with the default host) offering `MODEL`: a tiny PaintsTorch pipeline
    saved in `folder` (`model="tiny"`) or the flat-fill baseline (`model="flat-fill"`). Yields (url, demo, port)."""
    from stablepaint.app import build_app, launch_app

    if model == "tiny":
        PaintsTorchPipeline(**get_dummy_components(PaintsTorchPipeline, features=False)).save_pretrained(
            folder / "model"
        )
    target = str(folder / "model") if model == "tiny" else model
    temp_dir = str(folder / "gradio")
    demo = build_app(
        {MODEL: target},
        max_image_size=256,
        max_upload_mb=max_upload_mb,
        temp_dir=temp_dir,
        purge_delay=0.5,  # the default purge, sooner than the app's 60 s so that the test need not wait
    )
    port = free_port()
    launch_app(demo, port=port, prevent_thread_lock=True, quiet=True)  # the default host
    try:
        yield f"http://127.0.0.1:{port}/", demo, port
    finally:
        demo.close()


@pytest.fixture(scope="module")
def served_app(tmp_path_factory):
    pytest.importorskip("gradio_client", reason="the web app needs gradio (pip install 'stablepaint[app]')")
    pytest.importorskip("psutil")
    folder = tmp_path_factory.mktemp("app-load")
    with serve(folder) as (url, demo, port):
        yield url, demo, port, folder


def test_concurrent_sessions_get_their_own_images_and_leave_no_files(served_app):
    url, demo, _, folder = served_app
    load = run_load(url, folder, SESSIONS, REQUESTS_PER_SESSION, temp_dir=demo.temp_dir)
    leaks = 0
    for index, marks in enumerate(load["marks"]):
        row, column = session_mark(index)
        assert len(marks) == REQUESTS_PER_SESSION
        for size, (rows, columns) in marks:
            assert size == SIZE
            leaks += (rows, columns) != ({row}, {column})
    # Once every session has ended, the last `unload` empties gradio's cache (uploads and results).
    deadline = time.monotonic() + 30
    while cached_files(demo.temp_dir) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = cached_files(demo.temp_dir)
    figures = {**load["figures"], "cross_session_leaks": leaks, "temp_files_left": len(left)}
    print(json.dumps(figures))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "app_load.json").write_text(json.dumps(figures, indent=2) + "\n")
    assert leaks == 0
    assert figures["most_cached_files"] > 0  # the uploads and results were cached while the sessions ran
    assert left == []
    assert figures["requests"] == SESSIONS * REQUESTS_PER_SESSION


def test_an_upload_over_the_limit_is_refused_with_a_message(served_app):
    import requests

    url, _, _, _ = served_app
    big = os.urandom(int(1.5 * 2**20))  # max_upload_mb=1
    response = requests.post(f"{url}gradio_api/upload", files={"files": ("big.png", big, "image/png")}, timeout=60)
    assert response.status_code == 413
    assert "1mb" in response.text.lower() or "maximum" in response.text.lower(), response.text


def test_a_non_image_is_refused_with_a_message(served_app, tmp_path):
    from gradio_client import Client, handle_file

    url, _, _, _ = served_app
    text = tmp_path / "notes.png"  # an image's name, not an image's bytes
    text.write_text("not an image\n" * 10)
    client = Client(url, verbose=False, download_files=str(tmp_path / "client"))
    try:
        lineart = {"background": handle_file(str(text)), "layers": [], "composite": None}
        with pytest.raises(Exception, match="The lineart is not an image this app can read") as error:
            client.predict(MODEL, lineart, *RUN_SETTINGS, api_name="/run")
    finally:
        client.close()
    assert "Traceback" not in str(error.value)


def test_the_server_listens_on_localhost_by_default(served_app):
    import inspect

    import psutil

    from stablepaint.app import launch_app

    _, demo, port, _ = served_app
    assert inspect.signature(launch_app).parameters["host"].default == "127.0.0.1"
    listening = [
        connection.laddr
        for connection in psutil.Process().net_connections(kind="inet")
        if connection.status == psutil.CONN_LISTEN and connection.laddr.port == port
    ]
    assert listening and all(address.ip == "127.0.0.1" for address in listening), listening
    assert demo.server_name == "127.0.0.1" and demo.share_url is None


def test_purge_keeps_top_level_files_and_files_touched_after_the_cutoff(tmp_path):
    from stablepaint.app.session_files import purge_session_files

    (tmp_path / "certificate.pem").write_text("kept")  # the --share tunnel's certificate
    old, new = tmp_path / "hash-a" / "image.png", tmp_path / "hash-b" / "upload.png"
    for path in (old, new):
        path.parent.mkdir()
        path.write_bytes(b"x")
    os.utime(old, (time.time() - 60, time.time() - 60))
    assert purge_session_files(tmp_path, before=time.time() - 30) == 1
    assert not old.exists() and new.exists() and (tmp_path / "certificate.pem").exists()
    assert old.parent.is_dir()  # folders stay: a concurrent write into one never fails
    assert purge_session_files(tmp_path / "missing") == 0


class _Session:
    def __init__(self, closed):
        self.is_closed = closed


class _Demo:
    """What `SessionFileCleanup` reads of a launched gradio Blocks: its sessions and whether each has disconnected."""

    def __init__(self, **sessions):
        self.state_holder = type("Holder", (), {})()
        self.state_holder.session_data = {key: _Session(closed) for key, closed in sessions.items()}


def _cache(tmp_path, age=60.0):
    path = tmp_path / "hash-a" / "result.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    os.utime(path, (time.time() - age, time.time() - age))
    return path


def test_the_purge_waits_and_runs_once_the_last_session_has_ended(tmp_path):
    from stablepaint.app.session_files import SessionFileCleanup

    cached = _cache(tmp_path)
    demo = _Demo(a=False, b=False)
    cleanup = SessionFileCleanup(demo, tmp_path, delay=0.3)
    demo.state_holder.session_data["a"].is_closed = True
    cleanup.session_ended("a")  # b is still open: no purge is even scheduled
    assert cleanup._timer is None
    demo.state_holder.session_data["b"].is_closed = True
    cleanup.session_ended("b")
    assert cached.exists()  # not at once: the purge waits `delay` seconds
    cleanup._timer.join(5)
    assert not cached.exists() and cleanup.purged == 1 and cleanup.skipped == 0


def test_a_tab_that_lost_its_connection_and_keeps_working_keeps_its_files(tmp_path):
    """gradio calls `unload` when a live tab's heartbeat drops under load (the tab stays `is_closed`); its next upload
    or Run writes to the cache, which calls the purge off: the files it still shows are not deleted under it."""
    from stablepaint.app.session_files import SessionFileCleanup

    cached = _cache(tmp_path)
    cleanup = SessionFileCleanup(_Demo(a=True), tmp_path, delay=0.3)
    cleanup.session_ended("a")
    time.sleep(0.05)
    (tmp_path / "hash-b").mkdir()
    (tmp_path / "hash-b" / "upload.png").write_bytes(b"y")  # the same tab uploads a stroke during the wait
    cleanup._timer.join(5)
    assert cached.exists() and (tmp_path / "hash-b" / "upload.png").exists()
    assert cleanup.purged == 0 and cleanup.skipped == 1


def test_a_session_that_opens_during_the_wait_calls_the_purge_off(tmp_path):
    from stablepaint.app.session_files import SessionFileCleanup

    cached = _cache(tmp_path)
    demo = _Demo(a=True)
    cleanup = SessionFileCleanup(demo, tmp_path, delay=0.3)
    cleanup.session_ended("a")
    demo.state_holder.session_data["c"] = _Session(False)  # a new visitor arrives
    cleanup._timer.join(5)
    assert cached.exists() and cleanup.skipped == 1
    cleanup.session_ended("a")
    cleanup.cancel()  # the app closes: nothing runs after it
    time.sleep(0.5)
    assert cached.exists()


def test_the_purge_delay_is_checked(tmp_path):
    from stablepaint.app.session_files import SessionFileCleanup

    for delay in (-1, float("nan")):
        with pytest.raises(ValueError, match="purge_delay"):
            SessionFileCleanup(_Demo(), tmp_path, delay=delay)
