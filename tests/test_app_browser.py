"""The web app end to end in a real headless Chromium (Debian's `chromium` + `chromium-driver`, driven by Selenium):
load the page, upload a lineart, see the live preview color it, draw a color stroke and see the preview change
without pressing Run, click Run, get the colored image back.

The screenshot is kept in `outputs/test-artifacts/app.png` (ignored by git). Skips only when chromium, chromedriver
or the Python packages are missing on this machine; CI installs them (`.ci/run`)."""

import io
import os
import shutil
import socket
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
from test_paintstorch_pipeline import get_dummy_components

from stablepaint import PaintsTorchPipeline
from stablepaint.app import editor_to_hints, editor_to_lineart

ARTIFACTS = Path(__file__).resolve().parent.parent / "outputs" / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,2200",
)
LINEART_SIZE = (128, 96)  # (width, height): not square, so a transposed output would be caught
HINT_COLOR = (0xD0, 0x40, 0x40)  # the hints brush's default color, stablepaint.app.HINT_COLORS[0]

pytestmark = [
    pytest.mark.slow,
    # Skipped on a developer machine without a browser; never in CI (CI=true), where .ci/run installs it.
    pytest.mark.skipif(
        (CHROMIUM is None or CHROMEDRIVER is None) and not os.environ.get("CI"),
        reason="Debian's chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)",
    ),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def served_app(tmp_path_factory):
    """The app with a tiny saved PaintsTorch pipeline, served on a free localhost port in this process."""
    pytest.importorskip("gradio", reason="the web app needs gradio (pip install 'stablepaint[app]')")
    from stablepaint.app import build_app, launch_app

    folder = tmp_path_factory.mktemp("tiny-paintstorch")
    PaintsTorchPipeline(**get_dummy_components(PaintsTorchPipeline, features=False)).save_pretrained(folder)
    demo = build_app({"tiny PaintsTorch": str(folder)}, max_image_size=256, temp_dir=str(folder.parent / "gradio"))
    calls = []
    colorize = demo.colorization_app.colorize

    def recording_colorize(model, lineart, hints=None, mask=None, *args, **kwargs):
        calls.append({"lineart": editor_to_lineart(lineart), "hints": editor_to_hints(hints)})
        return colorize(model, lineart, hints, mask, *args, **kwargs)

    demo.colorization_app.colorize = recording_colorize
    port = free_port()
    launch_app(demo, host="127.0.0.1", port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}/", calls, demo
    finally:
        demo.close()


@pytest.fixture
def browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="pip install selenium")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="stablepaint-chromium-")
    for flag in CHROMIUM_FLAGS + (f"--user-data-dir={profile}",):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_for(condition, timeout=60.0, what="the condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def visible_canvas(driver, editor_id):
    from selenium.webdriver.common.by import By

    canvases = [c for c in driver.find_elements(By.CSS_SELECTOR, f"#{editor_id} canvas") if c.is_displayed()]
    return canvases[0] if canvases else None


def test_upload_draw_run_in_headless_chromium(served_app, browser, tmp_path):
    try:
        upload_draw_run(served_app, browser, tmp_path)
    except Exception:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(ARTIFACTS / "app-failure.png"))
        print(f"screenshot of the failure: {ARTIFACTS / 'app-failure.png'}")
        raise


def result_source(browser):
    """The `src` of the result image, or `None` while there is none."""
    from selenium.webdriver.common.by import By

    sources = [img.get_attribute("src") for img in browser.find_elements(By.CSS_SELECTOR, "#result img")]
    return next((source for source in sources if source), None)


def fetch_image(source: str) -> PIL.Image.Image:
    if source.startswith("data:"):
        import base64

        return PIL.Image.open(io.BytesIO(base64.b64decode(source.split(",", 1)[1])))
    with urllib.request.urlopen(source, timeout=30) as response:
        return PIL.Image.open(io.BytesIO(response.read()))


def status_text(browser) -> str:
    from selenium.webdriver.common.by import By

    return browser.find_element(By.ID, "status").text


def upload_draw_run(served_app, browser, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    url, calls, demo = served_app
    width, height = LINEART_SIZE
    lineart = np.full((height, width), 255, np.uint8)
    lineart[height // 3, :] = 0
    lineart[:, width // 2] = 0
    lineart_file = tmp_path / "lineart.png"
    PIL.Image.fromarray(lineart).save(lineart_file)

    # 1. Load the page.
    browser.get(url)
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#lineart-editor input[type=file]"), what="the page")

    # 2. Upload the lineart; the app copies it under the hints and mask editors.
    browser.find_element(By.CSS_SELECTOR, "#lineart-editor input[type=file]").send_keys(str(lineart_file))
    wait_for(
        # The editor shows its "Image" (background) tool once it holds a background: the synced lineart.
        lambda: browser.find_elements(By.CSS_SELECTOR, "#hints-editor button[aria-label='Image']"),
        what="the hints editor to receive the lineart",
    )
    time.sleep(1.0)  # let the editor finish drawing the background before painting over it

    # 2b. Live preview (on by default for a GAN model): the lineart is colored without pressing Run.
    assert browser.find_element(By.CSS_SELECTOR, "#live-preview input[type=checkbox]").is_selected()
    first_preview = wait_for(lambda: result_source(browser), timeout=120, what="the live preview of the lineart")
    assert status_text(browser).startswith("Live preview")
    assert calls and all(call["hints"] is None for call in calls)  # no stroke yet

    # 3. Draw a stroke with the hints brush: a mouse drag across the middle of the visible canvas.
    brush = browser.find_element(By.CSS_SELECTOR, "#hints-editor button[aria-label='Brush']")
    brush.click()
    canvas = wait_for(lambda: visible_canvas(browser, "hints-editor"), what="the hints canvas")
    stroke = ActionChains(browser).move_to_element_with_offset(canvas, -40, -20).click_and_hold()
    for step in range(1, 9):
        stroke = stroke.move_by_offset(10, 5 if step % 2 else 0)
    stroke.release().perform()

    # 3b. Without pressing Run, the live preview re-colors with the stroke: the image shown changes.
    wait_for(
        lambda: calls[-1]["hints"] is not None and result_source(browser) not in (None, first_preview),
        timeout=120,
        what="the live preview to re-color with the stroke",
    )
    preview_calls = len(calls)
    before = np.asarray(fetch_image(first_preview).convert("RGB"), dtype=int)
    after = np.asarray(fetch_image(result_source(browser)).convert("RGB"), dtype=int)
    assert before.shape == after.shape == (height, width, 3)
    assert np.abs(after - before).max() > 0, "the live preview did not change with the stroke"

    # 4. Run, and wait for its result (the status line says Run's message, not the preview's).
    browser.find_element(By.ID, "run").click()
    wait_for(
        lambda: len(calls) > preview_calls and status_text(browser).startswith("Colored"),
        timeout=120,
        what="the result of Run",
    )
    source = result_source(browser)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    screenshot = ARTIFACTS / "app.png"
    browser.save_screenshot(str(screenshot))
    print(f"screenshot of the app: {screenshot}")

    # The server got the uploaded lineart and the painted stroke, in its own color.
    assert len(calls) == preview_calls + 1  # one call for Run
    assert calls[-1]["lineart"].size == LINEART_SIZE
    assert np.array_equal(np.asarray(calls[-1]["lineart"]) < 128, lineart < 128)
    hints = calls[-1]["hints"]
    assert hints is not None, "the stroke drawn in the browser did not reach the app"
    hints = np.asarray(hints)
    stroke_pixels = hints[..., 3] == 255
    assert stroke_pixels.sum() >= 10
    assert np.abs(hints[stroke_pixels][:, :3].astype(int) - HINT_COLOR).max() <= 8

    # The browser shows a colored image of the lineart's size.
    result = fetch_image(source)
    assert result.size == LINEART_SIZE
    assert result.convert("RGB").getextrema() != ((255, 255), (255, 255), (255, 255))
    # The app wrote its files in its own temp folder.
    assert Path(demo.temp_dir).is_dir() and any(Path(demo.temp_dir).rglob("*"))
    assert os.path.getsize(screenshot) > 10_000
