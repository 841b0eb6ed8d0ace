import sys
import types

import numpy as np
import pytest
from PIL import Image

from stablepaint.synthesis import xdog
from stablepaint.synthesis.lineart import LINEART_METHODS, LineartExtractionError, extract_lineart


def test_xdog_method_matches_synthesis(illustration):
    result = extract_lineart(illustration, sigma=0.4)
    assert result.mode == "L" and result.size == illustration.size
    assert np.array_equal(np.asarray(result), xdog(illustration, sigma=0.4))


def test_unknown_method_is_rejected(illustration):
    with pytest.raises(ValueError, match="method"):
        extract_lineart(illustration, method="hed")
    with pytest.raises(ValueError, match="threshold"):
        extract_lineart(illustration, threshold="otsuu")
    with pytest.raises(TypeError, match="image"):
        extract_lineart("not an image")


def test_missing_controlnet_aux_gives_clear_message(illustration, monkeypatch):
    monkeypatch.setitem(sys.modules, "controlnet_aux", None)  # import fails as if not installed
    with pytest.raises(LineartExtractionError, match=r"stablepaint\[aux\]"):
        extract_lineart(illustration, method="lineart_standard")


class FakeDetector:
    """Stands in for a controlnet-aux detector: white lines on black, at the detector's working resolution."""

    loaded_from = None

    @classmethod
    def from_pretrained(cls, path):
        if "missing" in str(path):
            raise FileNotFoundError(f"{path}/sk_model.pth")
        cls.loaded_from = str(path)
        return cls()

    def __call__(self, image, detect_resolution=512, output_type="pil", coarse=False):
        lines = 255 - np.asarray(image.convert("L").resize((detect_resolution, detect_resolution)))
        return Image.fromarray(lines).convert("RGB")


@pytest.fixture
def fake_aux(monkeypatch):
    module = types.ModuleType("controlnet_aux")
    module.LineartStandardDetector = FakeDetector
    module.LineartDetector = FakeDetector
    module.LineartAnimeDetector = FakeDetector
    monkeypatch.setitem(sys.modules, "controlnet_aux", module)
    return module


@pytest.mark.parametrize("method", [m for m in LINEART_METHODS if m != "xdog"])
def test_aux_detectors_are_inverted_to_dark_on_white_at_input_size(fake_aux, illustration, tmp_path, method):
    result = extract_lineart(illustration, method=method, annotator_path=tmp_path, detect_resolution=32)
    assert result.mode == "L" and result.size == illustration.size
    # the fake detector returns the inverted luminance, so inverting back gives (about) the luminance
    expected = np.asarray(illustration.convert("L").resize((32, 32)).resize(illustration.size, Image.BICUBIC))
    assert np.abs(np.asarray(result).astype(int) - expected.astype(int)).mean() < 3
    if method != "lineart_standard":
        assert FakeDetector.loaded_from == str(tmp_path)


def test_missing_weights_give_clear_message(fake_aux, illustration):
    with pytest.raises(LineartExtractionError, match="annotator_path"):
        extract_lineart(illustration, method="lineart_anime", annotator_path="/missing/annotators")
