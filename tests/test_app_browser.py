"""The web app end to end in a real headless Chromium (Debian's `chromium` + `chromium-driver`, driven by Selenium):
load the page, upload a lineart, draw a color stroke, click Run, get the colored image back.

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

    # 3. Draw a stroke with the hints brush: a mouse drag across the middle of the visible canvas.
    brush = browser.find_element(By.CSS_SELECTOR, "#hints-editor button[aria-label='Brush']")
    brush.click()
    canvas = wait_for(lambda: visible_canvas(browser, "hints-editor"), what="the hints canvas")
    stroke = ActionChains(browser).move_to_element_with_offset(canvas, -40, -20).click_and_hold()
    for step in range(1, 9):
        stroke = stroke.move_by_offset(10, 5 if step % 2 else 0)
    stroke.release().perform()
    time.sleep(1.0)

    # 4. Run, and wait for the result image.
    browser.find_element(By.ID, "run").click()
    source = wait_for(
        lambda: next(
            (
                img.get_attribute("src")
                for img in browser.find_elements(By.CSS_SELECTOR, "#result img")
                if img.get_attribute("src")
            ),
            None,
        ),
        timeout=120,
        what="the result image",
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    screenshot = ARTIFACTS / "app.png"
    browser.save_screenshot(str(screenshot))
    print(f"screenshot of the app: {screenshot}")

    # The server got the uploaded lineart and the painted stroke, in its own color.
    assert len(calls) == 1
    assert calls[0]["lineart"].size == LINEART_SIZE
    assert np.array_equal(np.asarray(calls[0]["lineart"]) < 128, lineart < 128)
    hints = calls[0]["hints"]
    assert hints is not None, "the stroke drawn in the browser did not reach the app"
    hints = np.asarray(hints)
    stroke_pixels = hints[..., 3] == 255
    assert stroke_pixels.sum() >= 10
    assert np.abs(hints[stroke_pixels][:, :3].astype(int) - HINT_COLOR).max() <= 8

    # The browser shows a colored image of the lineart's size.
    if source.startswith("data:"):
        import base64

        data = base64.b64decode(source.split(",", 1)[1])
    else:
        with urllib.request.urlopen(source, timeout=30) as response:
            data = response.read()
    result = PIL.Image.open(io.BytesIO(data))
    assert result.size == LINEART_SIZE
    assert result.convert("RGB").getextrema() != ((255, 255), (255, 255), (255, 255))
    # The app wrote its files in its own temp folder.
    assert Path(demo.temp_dir).is_dir() and any(Path(demo.temp_dir).rglob("*"))
    assert os.path.getsize(screenshot) > 10_000
