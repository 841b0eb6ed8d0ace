"""Property-based fuzzing of every public entry point (`hypothesis`; profiles `ci` and `deep` in conftest.py).

The property, for any input: either a correct result (sizes, dtypes, ranges, mask and line invariants hold) or an
exception of a documented type whose message names the argument (library: `TypeError`, `ValueError`,
`FileNotFoundError`; `load_pipeline`: also `OSError`; CLI: exit code 2 and one line `stablepaint <cmd>: error: ...`).
Never another exception, a hang or a silent wrong result. Every defect found is kept below as an `@example`.
"""

import contextlib
import io
import json
import os
import warnings

import numpy as np
import PIL.Image
import pytest
import torch
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from stablepaint.image_processor import ColorizationImageProcessor
from stablepaint.utils.image_io import MAX_PIXELS_ENV, load_batch, load_image

LIBRARY_ERRORS = (TypeError, ValueError, FileNotFoundError)
ARGUMENTS = ("lineart", "hints", "mask", "image", "height", "width", "short_side", "sketch", "artwork", "stage")
PIL_MODES = ("1", "L", "LA", "P", "RGB", "RGBA", "I;16", "I", "CMYK", "F")
MAX_SIDE = 24
# Fuzzed example functions share one set of fixtures across examples: none of ours hold state between examples.
FIXTURES = settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def names_an_argument(error: Exception, names=ARGUMENTS) -> bool:
    event(f"refused: {type(error).__name__}")
    return any(f"`{name}" in str(error) for name in names)  # "`image`", "`image=`", "`output_type=.."


# ---------------------------------------------------------------------------------------------------- strategies

sides = st.integers(1, MAX_SIDE)
BOOLEANS = st.booleans()
special_floats = st.sampled_from([0.0, 1.0, 0.5, -0.1, 1.5, np.nan, np.inf, -np.inf, 255.0])


@st.composite
def pil_images(draw, modes=PIL_MODES, height=None, width=None):
    mode = draw(st.sampled_from(modes))
    height = height or draw(sides)
    width = width or draw(sides)
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    if mode == "F":
        array = rng.random((height, width), dtype=np.float32)
        if draw(st.booleans()):
            array[rng.integers(height), rng.integers(width)] = draw(special_floats)
        return PIL.Image.fromarray(array, "F")
    if mode == "I;16":
        return PIL.Image.fromarray(rng.integers(0, 65536, (height, width), dtype=np.uint16))
    if mode == "I":
        low = draw(st.sampled_from([0, -5]))
        return PIL.Image.fromarray(rng.integers(low, 70000, (height, width), dtype=np.int32), "I")
    channels = {"1": 1, "L": 1, "P": 1, "LA": 2, "RGB": 3, "RGBA": 4, "CMYK": 4}[mode]
    array = rng.integers(0, 256, (height, width, channels), dtype=np.uint8)
    if mode == "1":
        return PIL.Image.fromarray(array[..., 0] > 127)
    if mode in ("L", "P"):
        image = PIL.Image.fromarray(array[..., 0], "L")
        return image.convert("P") if mode == "P" else image
    return PIL.Image.fromarray(array, mode)


@st.composite
def arrays(draw, height=None, width=None):
    height = height or draw(sides)
    width = width or draw(sides)
    shape = draw(st.sampled_from([(height, width), (height, width, 1), (height, width, 3), (height, width, 4)]))
    if draw(st.integers(0, 9)) == 0:  # a wrong layout now and then
        shape = draw(
            st.sampled_from([(height, width, 2), (height, width, 5), (height,), (0, width), (1, height, width, 3)])
        )
    dtype = draw(st.sampled_from(["uint8", "bool", "float32", "float64", "float16", "int64", "uint16", "complex64"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    if dtype == "bool":
        return rng.random(shape) > 0.5
    if dtype.startswith(("float", "complex")):
        array = rng.random(shape).astype(dtype)
        if array.size and draw(st.booleans()):
            array.flat[rng.integers(array.size)] = draw(special_floats)
        return array
    high = draw(st.sampled_from([256, 300])) if dtype != "uint8" else 256
    return rng.integers(0, high, shape).astype(dtype)


@st.composite
def tensors(draw, height=None, width=None):
    array = draw(arrays(height, width))
    if array.ndim == 3:
        array = np.moveaxis(array, -1, 0)
    elif array.ndim == 2 and draw(st.booleans()):
        array = array[None]
    if array.dtype in (np.uint16,):
        array = array.astype(np.int32)
    return torch.from_numpy(np.ascontiguousarray(array))


WRONG_TYPES = st.sampled_from([42, 1.5, {"r": 1}, b"bytes", [], [None], object(), True])


@st.composite
def files(draw, folder):
    """A path: a saved image of any mode, a truncated one, random bytes, an empty file, a folder or a missing file."""
    kind = draw(st.sampled_from(["png", "tiff", "jpeg", "truncated", "bytes", "empty", "folder", "missing"]))
    path = folder / f"{kind}_{draw(st.integers(0, 10**9))}"
    if kind == "folder":
        path.mkdir(exist_ok=True)
        return str(path)
    if kind == "missing":
        return str(path) + ".png"
    if kind in ("png", "tiff", "jpeg", "truncated"):
        modes = {"jpeg": ("L", "RGB", "CMYK"), "tiff": PIL_MODES}.get(
            kind, ("1", "L", "LA", "P", "RGB", "RGBA", "I;16")
        )
        buffer = io.BytesIO()
        draw(pil_images(modes)).save(buffer, {"truncated": "PNG"}.get(kind, kind.upper()))
        data = buffer.getvalue()
        if kind == "truncated":
            data = data[: draw(st.integers(0, len(data) - 1))]
        path = path.with_suffix(".png" if kind == "truncated" else f".{kind}")
        path.write_bytes(data)
    else:
        path.write_bytes(b"" if kind == "empty" else draw(st.binary(min_size=1, max_size=64)))
    return str(path)


def images_of_any_kind(folder, height=None, width=None):
    return st.one_of(
        pil_images(height=height, width=width),
        arrays(height, width),
        tensors(height, width),
        files(folder),
        WRONG_TYPES,
    )


# ---------------------------------------------------------------------------------------------------- load_image


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


@FIXTURES
@given(data=st.data())
def test_load_image(folder, data):
    value = data.draw(images_of_any_kind(folder), label="image")
    try:
        image = load_image(value, "image")
    except LIBRARY_ERRORS as error:
        assert names_an_argument(error, ("image",)), error
        return
    assert isinstance(image, PIL.Image.Image)
    assert image.mode in ("1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "YCbCr")
    assert image.width >= 1 and image.height >= 1
    if isinstance(value, PIL.Image.Image):
        assert image.size == value.size


@pytest.mark.parametrize(
    "value, expected",
    [
        # 16-bit gray: [0, 65535] scaled to 8 bits; "I" as Pillow opens 16-bit PNG; float "F" in [0, 1]
        (PIL.Image.fromarray(np.array([[0, 65535, 257]], dtype=np.uint16)), [0, 255, 1]),
        (PIL.Image.fromarray(np.array([[0, 65535, 32896]], dtype=np.int32), "I"), [0, 255, 128]),
        (PIL.Image.fromarray(np.array([[0.0, 1.0, 0.5]], dtype=np.float32), "F"), [0, 255, 128]),
    ],
)
def test_high_precision_gray_modes_become_l(value, expected):
    image = load_image(value, "lineart")
    assert image.mode == "L" and np.asarray(image)[0].tolist() == expected


@pytest.mark.parametrize(
    "value",
    [
        PIL.Image.fromarray(np.array([[0.0, 1.5]], dtype=np.float32), "F"),
        PIL.Image.fromarray(np.array([[0.0, np.nan]], dtype=np.float32), "F"),
        PIL.Image.fromarray(np.array([[-1, 0]], dtype=np.int32), "I"),
        PIL.Image.fromarray(np.array([[70000, 0]], dtype=np.int32), "I"),
        PIL.Image.new("HSV", (2, 2)),
    ],
)
def test_gray_modes_out_of_range_are_refused(value):
    with pytest.raises(ValueError, match="`lineart`"):
        load_image(value, "lineart")


# ---------------------------------------------------------------------------------------------------- size limit


def test_size_limit_is_named_and_overridable(tmp_path, monkeypatch):
    big = tmp_path / "big.png"
    PIL.Image.new("L", (300, 200), 255).save(big)
    monkeypatch.setenv(MAX_PIXELS_ENV, "50000")
    for value in (str(big), PIL.Image.new("L", (300, 200)), np.zeros((200, 300), np.uint8), torch.zeros(1, 200, 300)):
        with pytest.raises(ValueError, match=r"`lineart` is 200x300 .*limit of 50000 pixels.*STABLEPAINT_MAX_IMAGE"):
            load_image(value, "lineart")
    assert load_image(str(big), "lineart", max_pixels=60000).size == (300, 200)  # the argument wins
    monkeypatch.setenv(MAX_PIXELS_ENV, "60000")
    assert load_image(str(big), "lineart").size == (300, 200)
    # The working size is checked before it is allocated
    with pytest.raises(ValueError, match="`height`/`width`.*limit of 60000"):
        ColorizationImageProcessor().preprocess(np.zeros((8, 8), np.uint8), height=800, width=800)
    monkeypatch.setenv(MAX_PIXELS_ENV, "lots")
    with pytest.raises(ValueError, match=MAX_PIXELS_ENV):
        load_image(str(big), "lineart")


def test_huge_file_is_refused_from_its_header_before_decoding(tmp_path, monkeypatch):
    """A 100000 x 100000 PNG header (a decompression bomb: 10^10 pixels) is refused without decoding a pixel."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 100000, 100000, 8, 0, 0, 0, 0)
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    )
    with pytest.raises(ValueError, match="`mask`.*(limit|decompression bomb)"):
        load_image(str(bomb), "mask")
    monkeypatch.setenv(MAX_PIXELS_ENV, str(10**11))  # past our limit, PIL's own bomb check still names the argument
    with pytest.raises(ValueError, match="`mask`.*decompression bomb"):
        load_image(str(bomb), "mask")


# ---------------------------------------------------------------------------------------------------- preprocess


def check_inputs(inputs, batch_size, processor):
    lineart, hints, mask = inputs.lineart, inputs.hints, inputs.mask
    b, _, height, width = lineart.shape
    assert b == batch_size and lineart.shape[1] == 1 and lineart.dtype == torch.float32
    assert height % processor.config.multiple_of == 0 and width % processor.config.multiple_of == 0
    assert torch.isfinite(lineart).all() and lineart.min() >= -1 and lineart.max() <= 1
    scale = processor.config.hint_scale
    assert hints.shape == (b, 4, height // scale, width // scale)
    stroke = hints[:, 3:]
    assert set(stroke.unique().tolist()) <= {0.0, 1.0}
    assert (hints[:, :3] * (1 - stroke) == 0).all() and hints[:, :3].abs().max() <= 1
    assert mask.shape == (b, 1, height, width) and set(mask.unique().tolist()) <= {0.0, 1.0}
    if inputs.image is not None:
        assert inputs.image.shape == (b, 3, height, width) and inputs.image.abs().max() <= 1
    assert len(inputs.original_sizes) == b


@st.composite
def preprocess_arguments(draw, folder):
    height, width = draw(sides), draw(sides)
    if draw(st.booleans()):  # the same aspect ratio, at 1/4 or full size, most of the time
        kwargs = {"lineart": draw(st.one_of(pil_images(height=height, width=width), arrays(height, width)))}
    else:
        kwargs = {"lineart": draw(images_of_any_kind(folder))}
    for name in ("hints", "mask", "image"):
        if draw(st.booleans()):
            scale = draw(st.sampled_from([1, 1, 4])) if name == "hints" else 1
            h, w = max(1, height // scale), max(1, width // scale)
            kwargs[name] = draw(
                st.one_of(pil_images(height=h, width=w), arrays(h, w), tensors(h, w), images_of_any_kind(folder))
            )
    if draw(st.booleans()):
        kwargs["lineart"] = [kwargs["lineart"]] * draw(st.integers(0, 2))
    for name in ("height", "width", "short_side"):
        if draw(st.integers(0, 3)) == 0:
            kwargs[name] = draw(st.one_of(st.sampled_from([8, 16, 24, 0, -8, 12, 8.0, True, "16"]), st.none()))
    return kwargs


@FIXTURES
@given(data=st.data())
def test_preprocess(folder, data):
    processor = ColorizationImageProcessor()
    kwargs = data.draw(preprocess_arguments(folder), label="kwargs")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a silent cast (e.g. NaN to uint8) warns: make it fail
            inputs = processor.preprocess(**kwargs)
    except LIBRARY_ERRORS as error:
        assert names_an_argument(error, tuple(kwargs)), error
        return
    batch = len(kwargs["lineart"]) if isinstance(kwargs["lineart"], list) else None
    check_inputs(inputs, batch or inputs.lineart.shape[0], processor)


@FIXTURES
@given(
    shape=st.sampled_from([(1, 3, 8, 8), (2, 3, 8, 16), (1, 3, 1, 1), (1, 4, 8, 8), (3, 8, 8), (1, 3, 0, 8)]),
    special=st.one_of(st.none(), special_floats),
    dtype=st.sampled_from([torch.float32, torch.float16, torch.bfloat16, torch.float64, torch.uint8]),
    output_type=st.sampled_from(["pil", "np", "pt", "latent", None]),
    sizes=st.one_of(st.none(), st.lists(st.tuples(st.integers(-1, 40), st.integers(1, 40)), max_size=3)),
)
@example(shape=(1, 3, 8, 8), special=np.nan, dtype=torch.float32, output_type="pil", sizes=None)  # defect 1
@example(shape=(1, 3, 8, 8), special=None, dtype=torch.uint8, output_type="np", sizes=None)  # defect 2
def test_postprocess(shape, special, dtype, output_type, sizes):
    images = torch.rand(shape) * 2 - 1
    if special is not None and images.numel():
        images.view(-1)[0] = float(special)
    images = images.to(dtype)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            out = ColorizationImageProcessor().postprocess(images, output_type=output_type, original_sizes=sizes)
    except LIBRARY_ERRORS as error:
        assert names_an_argument(error, ("images", "output_type", "original_sizes")), error
        return
    expected = [tuple(size) for size in sizes] if sizes is not None else [tuple(shape[-2:])] * shape[0]
    if output_type == "pil":
        assert [image.size[::-1] for image in out] == expected and all(image.mode == "RGB" for image in out)
    else:
        array = out if output_type == "np" else out.permute(0, 2, 3, 1).numpy()
        assert array.shape == (shape[0], *expected[0], 3) and array.dtype == np.float32
        assert np.isfinite(array).all() and array.min() >= 0 and array.max() <= 1


# ---------------------------------------------------------------------------------------------------- pipelines


def make_pipelines():
    from test_art_workflow import get_dummy_components as art_components
    from test_paintstorch_pipeline import get_dummy_components as gan_components
    from test_stablepaint import get_dummy_components as diffusion_components

    from stablepaint import (
        ArtWorkflowPipeline,
        FlatFillPipeline,
        PaintsTorchPipeline,
        StablePaintPipeline,
        StencilTorchPipeline,
    )

    pipes = {
        "paintstorch": PaintsTorchPipeline(**gan_components(PaintsTorchPipeline, features=False)),
        "stenciltorch": StencilTorchPipeline(**gan_components(StencilTorchPipeline, features=False)),
        "flat-fill": FlatFillPipeline(),
        "stablepaint": StablePaintPipeline(**diffusion_components()),
        "art-workflow": ArtWorkflowPipeline(**art_components()),
    }
    for pipe in pipes.values():
        if hasattr(pipe, "set_progress_bar_config"):
            pipe.set_progress_bar_config(disable=True)
    return pipes


@pytest.fixture(scope="module")
def pipelines():
    return make_pipelines()


@st.composite
def pipeline_arguments(draw, folder, inpaints=True):
    height, width = draw(sides), draw(sides)
    kwargs = {
        "lineart": draw(
            st.one_of(pil_images(height=height, width=width), arrays(height, width), tensors(height, width))
        )
    }
    if draw(st.integers(0, 4)) == 0:
        kwargs["lineart"] = draw(images_of_any_kind(folder))
    names = ("hints", "mask", "image") if inpaints else ("hints",)
    for name in names:
        if draw(st.booleans()):
            kwargs[name] = draw(
                st.one_of(pil_images(height=height, width=width), arrays(height, width), images_of_any_kind(folder))
            )
    kwargs["output_type"] = draw(st.sampled_from(["pil", "np", "np", "pt", "latent"]))
    if draw(st.booleans()):
        kwargs["keep_lines"] = True
    return kwargs


def check_output(images, kwargs, size):
    """Sizes, dtypes and ranges; outside the mask the image bit for bit, and the kept lines exactly."""
    output_type = kwargs["output_type"]
    if output_type == "latent":  # StablePaint's documented latent output (diffusers' `output_type="latent"`)
        assert torch.isfinite(torch.as_tensor(images)).all()
        return
    if output_type == "pil":
        assert all(image.mode == "RGB" and image.size == size[::-1] for image in images)
        arrays_ = [np.asarray(image) for image in images]
    else:
        array = images if output_type == "np" else images.permute(0, 2, 3, 1).numpy()
        assert array.dtype == np.float32 and array.shape[1:] == (*size, 3)
        assert np.isfinite(array).all() and array.min() >= 0 and array.max() <= 1
        arrays_ = list(np.round(array * 255).astype(np.uint8))
    simple = {
        name: kwargs.get(name)
        for name in ("lineart", "mask", "image")
        if isinstance(kwargs.get(name), np.ndarray)
        and kwargs[name].dtype == np.uint8
        and kwargs[name].shape[:2] == size
    }
    if "mask" in simple and "image" in simple and simple["image"].ndim == 3 and simple["image"].shape[-1] == 3:
        outside = (simple["mask"] if simple["mask"].ndim == 2 else simple["mask"][..., 0]) < 128
        for array in arrays_:
            assert np.array_equal(array[outside], simple["image"][outside])
    if kwargs.get("keep_lines") and "lineart" in simple and simple["lineart"].ndim == 2 and "mask" not in kwargs:
        line = simple["lineart"] < 128
        for array in arrays_:
            assert np.array_equal(array[line], np.repeat(simple["lineart"][line][:, None], 3, axis=1))


CALL_ERRORS = ("lineart", "hints", "mask", "image", "output_type", "sketch", "height", "width")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["paintstorch", "stenciltorch", "flat-fill", "stablepaint"])
@FIXTURES
@given(data=st.data())
def test_pipeline_call(pipelines, folder, name, data):
    pipe = pipelines[name]
    kwargs = data.draw(pipeline_arguments(folder), label="kwargs")
    call = dict(kwargs, generator=torch.Generator().manual_seed(0))
    if name == "stablepaint":
        call["num_inference_steps"] = 1
    if name == "flat-fill":
        call.pop("keep_lines", None)
        kwargs.pop("keep_lines", None)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            images = pipe(**call).images
    except LIBRARY_ERRORS as error:
        assert names_an_argument(error, CALL_ERRORS), error
        return
    lineart = load_batch(kwargs["lineart"], "lineart")[0]
    check_output(images, kwargs, (lineart.height, lineart.width))


BAD_INTEGERS = np.full((8, 8, 4), 300, np.int64)  # an integer array out of 0..255


@pytest.mark.slow
@FIXTURES
@given(data=st.data(), fixed=st.none())
# defect 3: `generate(bad)` and `edit(state, stage, image=bad)` named `lineart`, an argument they do not have
@example(data=None, fixed={"sketch": BAD_INTEGERS[..., 0]})
@example(data=None, fixed={"stage": 0, "image": BAD_INTEGERS})
@example(data=None, fixed={"stage": 1, "image": BAD_INTEGERS})
def test_art_workflow_generate_invert_edit(pipelines, folder, data, fixed):
    pipe = pipelines["art-workflow"]
    if fixed is None:
        kwargs = data.draw(pipeline_arguments(folder, inpaints=False), label="kwargs")
        kwargs.pop("keep_lines", None)
    else:
        kwargs = {"lineart": fixed.get("sketch", np.full((8, 8), 200, np.uint8)), "output_type": "np"}
    sketch = kwargs.pop("lineart")
    try:
        images = pipe.generate(sketch, hint_steps=1, generator=torch.Generator().manual_seed(0), **kwargs).images
    except LIBRARY_ERRORS as error:
        assert names_an_argument(error, CALL_ERRORS), error
        return
    size = load_batch(sketch, "sketch")[0]
    check_output(images, kwargs, (size.height, size.width))
    # invert the result, then edit a fuzzed stage with a fuzzed image or latent
    artwork = images if kwargs["output_type"] == "pil" else images[:1]
    try:
        steps = 0 if fixed else data.draw(st.integers(0, 1))
        state = pipe.invert(artwork, optimize_steps=steps, perceptual_weight=0.0, output_type="np")
    except LIBRARY_ERRORS as error:
        assert names_an_argument(error, ("artwork", "output_type")), error
        return
    if fixed:
        stage, edit, what = fixed["stage"], {"image": fixed["image"]}, "fixed"
    else:
        stage = data.draw(
            st.sampled_from([0, 1, 2, 3, -1, "sketch", "flat", "final", "nope", 1.0, True]), label="stage"
        )
        edit = {}
        what = data.draw(st.sampled_from(["image", "latent", "none"]), label="edit")
    if what == "image":
        edit["image"] = data.draw(images_of_any_kind(folder, size.height, size.width), label="image")
    elif what == "latent":
        edit["latent"] = torch.randn(data.draw(st.sampled_from([(1, 4), (1, 3), (2, 4), (4,)])))
        if data.draw(st.booleans()):
            edit["latent"][0] = float("nan")
    try:
        new = pipe.edit(state, stage, generator=torch.Generator().manual_seed(1), **edit)
    except LIBRARY_ERRORS as error:
        assert names_an_argument(error, ("stage", "image", "latent", "latents", "state")), error
        return
    assert new.images.shape == state.images.shape and np.isfinite(new.images).all()


# ---------------------------------------------------------------------------------------------------- load_pipeline


@st.composite
def pipeline_names(draw, folder):
    kind = draw(st.sampled_from(["text", "hub", "file", "empty-folder", "bad-json", "bad-class", "no-class", "type"]))
    if kind == "text":
        return draw(st.text(max_size=12))
    if kind == "hub":
        return draw(st.from_regex(r"[a-z]{1,5}/[a-z]{1,5}", fullmatch=True))
    if kind == "type":
        return draw(st.sampled_from([None, 3, 1.5, b"flat-fill", ["flat-fill"]]))
    path = folder / f"{kind}_{draw(st.integers(0, 10**9))}"
    if kind == "file":
        path.write_bytes(b"x")
        return str(path)
    path.mkdir(exist_ok=True)
    index = {
        "bad-json": "{not json",
        "bad-class": json.dumps({"_class_name": "Nope"}),
        "no-class": draw(st.sampled_from(["{}", "[]", "1"])),
    }
    if kind in index:
        (path / "model_index.json").write_text(index[kind])
    return draw(st.sampled_from([str(path), path]))


@FIXTURES
@given(data=st.data(), index=st.none())
# defect 4: a folder whose model_index.json is not JSON (json.JSONDecodeError), not an object (AttributeError) or
# names no class ("None is not a stablepaint pipeline class") gave an error that did not name the folder
@example(data=None, index="{not json")
@example(data=None, index="{}")
@example(data=None, index="[]")
@example(data=None, index='{"_class_name": "Nope"}')
@example(data=None, index="~0")  # defect 8 (deep run): load_pipeline("~0") raised RuntimeError (no home directory)
def test_load_pipeline(folder, data, index):
    from stablepaint.hub.loading import load_pipeline

    if index == "~0":
        name = index
    elif index is not None:  # a folder holding this model_index.json
        name = folder / f"index_example_{abs(hash(index))}"
        name.mkdir(exist_ok=True)
        (name / "model_index.json").write_text(index)
    else:
        name = data.draw(pipeline_names(folder), label="name_or_path")
    try:
        pipe = load_pipeline(name)
    except (TypeError, ValueError, OSError) as error:
        message = str(error)
        assert "`name_or_path`" in message or repr(os.fspath(name)) in message, message
        return
    assert type(pipe).__name__ == "FlatFillPipeline"  # nothing else loads from fuzzed names


# ---------------------------------------------------------------------------------------------------- command line

CLI_NAMES = ("--", "-o/", "LINEART", "IN", "OUT", "SRC")
VALUES = st.sampled_from(["0", "1", "-1", "8", "16", "nan", "inf", "abc", "", "1.5", "none,hints", "0-3"])


@st.composite
def command_lines(draw, folder, command):
    """`stablepaint COMMAND` with fuzzed positional paths and flags, some valid, some not."""
    good = folder / "good.png"
    if not good.exists():
        PIL.Image.fromarray(np.full((16, 16, 3), 200, np.uint8)).save(good)
    path = st.one_of(st.just(str(good)), files(folder))
    out = str(folder / f"out_{draw(st.integers(0, 10**9))}")
    flags = {
        "colorize": [
            "--hints",
            "--mask",
            "--image",
            "--steps",
            "--seed",
            "--num-images",
            "--guidance-scale",
            "--device",
            "--dtype",
            "--keep-lines",
            "--flatten-regions",
            "--extract-lineart",
            "--no-hint-regions",
        ],
        "lineart": ["--method", "--sigma", "--threshold", "--detect-resolution"],
        "prepare": ["--resolution", "--seed", "--num-proc", "--max-samples", "--n-colors", "--segmentation", "--eval"],
        "evaluate": [
            "--regimes",
            "--num-samples",
            "--resolution",
            "--batch-size",
            "--steps",
            "--include-ids",
            "--guidance-scale",
            "--reference",
        ],
    }[command]
    argv = [command]
    if command == "colorize":
        argv += [
            draw(path),
            "-o",
            draw(st.sampled_from([out + ".png", out + ".xyz", out + "_{i}.png", out])),
            "--model",
            "flat-fill",
            "--no-progress",
        ]
    elif command == "lineart":
        argv += [draw(path), draw(st.sampled_from([out + ".png", out + ".nope"]))]
    elif command == "prepare":
        argv += [draw(st.sampled_from([str(folder / "missing"), str(good), draw(files(folder))])), out]
    else:
        argv += [
            "--model",
            draw(st.sampled_from(["flat-fill", "nope", str(good)])),
            "--data",
            draw(st.sampled_from([str(folder / "missing"), str(good), draw(files(folder))])),
            "--out",
            out,
        ]
    for flag in draw(st.lists(st.sampled_from(flags), max_size=3, unique=True)):
        argv.append(flag)
        if flag in ("--hints", "--mask", "--image"):
            argv.append(draw(path))
        elif flag not in ("--keep-lines", "--flatten-regions", "--extract-lineart", "--no-hint-regions", "--eval"):
            argv.append(draw(st.one_of(VALUES, st.sampled_from(["cpu", "float32", "xdog", "otsu", "slic", "auto"]))))
    return argv


# Defects 5 and 6: `prepare` and `evaluate` said `source`, `batch_size`, `regimes` (the library's names), and `lineart`
# with an unknown OUT suffix failed after extracting, naming no argument; 9 and 10 (deep run): `--sigma 0` and
# `--sigma inf` (OverflowError in scipy). Each with the flag its message must start with.
CLI_DEFECTS = [
    (("prepare", "{missing}", "{out}"), "SRC"),
    (("evaluate", "--model", "flat-fill", "--data", "{missing}", "--out", "{out}"), "--data"),
    (("evaluate", "--model", "flat-fill", "--data", "{missing}", "--out", "{out}", "--batch-size", "0"), "--batch"),
    (("evaluate", "--model", "flat-fill", "--data", "{missing}", "--out", "{out}", "--regimes", ","), "--regimes"),
    (("lineart", "{good}", "{out}.nope"), "OUT"),
    (("lineart", "{good}", "{out}.png", "--sigma", "0"), "--sigma"),
    (("lineart", "{good}", "{out}.png", "--sigma", "inf"), "--sigma"),
]


def _with_examples(test, examples):
    for argv, flag in examples:
        test = example(data=None, fixed=(argv, flag))(test)
    return test


@pytest.mark.slow
@pytest.mark.parametrize("command", ["colorize", "lineart", "prepare", "evaluate"])
@FIXTURES
@given(data=st.data(), fixed=st.none())
@lambda test: _with_examples(test, CLI_DEFECTS)
def test_command_line(folder, command, data, fixed):
    """Exit 0, or exit 2 with one line `stablepaint <command>: error: ...` (argparse: usage, then `error:`)."""
    from stablepaint.commands.stablepaint_cli import main

    if fixed is None:
        argv, flag = data.draw(command_lines(folder, command), label="argv"), None
    else:
        argv, flag = fixed
        if argv[0] != command:  # the examples of the other parametrizations
            return
        good = folder / "good.png"
        PIL.Image.new("RGB", (16, 16), (200, 200, 200)).save(good)
        paths = {"missing": str(folder / "missing"), "out": str(folder / "out_example"), "good": str(good)}
        argv = [arg.format(**paths) for arg in argv]
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            code = main(argv)
        except SystemExit as exit:  # argparse refused an argument
            code = exit.code
            assert code == 2 and f"stablepaint {command}: error: argument" in stderr.getvalue(), stderr.getvalue()
            return
    lines = stderr.getvalue().strip().splitlines()
    event(f"exit {code}: {lines[-1][:60] if lines and code else ''}")
    if code == 2:
        assert lines and lines[-1].startswith(f"stablepaint {command}: error: "), stderr.getvalue()
        # names the argument as the command line spells it: a flag or a positional's metavar
        message = lines[-1].split(": error: ", 1)[1]
        assert any(name in message for name in CLI_NAMES), message
        assert flag is None or (len(lines) == 1 and message.startswith(flag)), lines
    else:
        assert flag is None and code == 0, stderr.getvalue()


# ---------------------------------------------------------------------------------------------------- dataset transform


@FIXTURES
@given(data=st.data(), fixed=st.none())
# defect 7: a `lineart` cell of a wrong type raised AttributeError ('bytes' object has no attribute 'convert')
@example(data=None, fixed={"image": PIL.Image.new("CMYK", (9, 23)), "lineart": [b"bytes"]})
# defect 7: a float "F" illustration in [0, 1] was clipped to a black image (PIL's convert), silently
@example(data=None, fixed={"image": PIL.Image.fromarray(np.full((16, 16), 0.8, np.float32), "F")})
def test_dataset_transform(folder, data, fixed):
    from stablepaint.data.dataset import EXAMPLE_COLUMNS, ColorizationTransform, SynthesisConfig

    draw = data.draw if fixed is None else (lambda strategy, label=None: False if strategy is BOOLEANS else "pil")
    config = SynthesisConfig(resolution=8, n_colors=4, segmentation="slic", simplify=draw(BOOLEANS))
    transform = ColorizationTransform(config, seed=0, output=draw(st.sampled_from(["pt", "pil"])))
    if fixed is not None:
        image = fixed["image"]
        batch = {"image": [image], "__index__": [0], **({"lineart": fixed["lineart"]} if "lineart" in fixed else {})}
    else:
        height, width = data.draw(sides), data.draw(sides)
        image = data.draw(
            st.one_of(pil_images(height=height, width=width), arrays(height, width), WRONG_TYPES), label="image"
        )
        batch = {"image": [image], "__index__": [0]}
    if fixed is None and data.draw(BOOLEANS):
        batch["lineart"] = [
            data.draw(
                st.one_of(st.none(), pil_images(height=height, width=width), pil_images(), WRONG_TYPES),
                label="lineart",
            )
        ]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            out = transform(batch)
    except (TypeError, ValueError) as error:
        event(str(error)[:50])
        assert names_an_argument(error, ("image", "lineart")), error
        return
    assert set(out) == set(EXAMPLE_COLUMNS) and all(len(out[name]) == 1 for name in EXAMPLE_COLUMNS)
    if transform.output == "pt":
        lineart, hints, mask = out["lineart"][0], out["hints"][0], out["mask"][0]
        assert lineart.shape == (1, 8, 8) and hints.shape == (4, 2, 2) and mask.shape == (1, 8, 8)
        assert set(mask.unique().tolist()) <= {0.0, 1.0} and set(lineart.unique().tolist()) <= {-1.0, 1.0}
    else:
        assert out["lineart"][0].size == (8, 8) and out["hints"][0].mode == "RGBA"
    if isinstance(image, PIL.Image.Image) and image.mode == "F" and transform.output == "pil":
        # a float image keeps its gray level: [0, 1] floats are not clipped to black (defect 7)
        values = np.asarray(image, np.float64)
        if np.isfinite(values).all() and 0 <= values.min() and values.max() <= 1 and np.ptp(values) == 0:
            assert np.asarray(out["image"][0]).min() == round(values.flat[0] * 255)
