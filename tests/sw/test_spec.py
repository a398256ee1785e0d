import pytest

from fireflys_sw.errors import SpecError
from fireflys_sw.spec import PRESETS, ConvSpec, FCSpec, PoolSpec, parse_spec


def test_scnn5_shapes():
    net = parse_spec("scnn5")
    assert net.input_shape == (1, 28, 28)
    assert net.layers[0] == ConvSpec(8, 3, 1)
    assert net.layers[2] == PoolSpec(2)
    assert net.layers[-1] == FCSpec(10)
    assert net.shapes[-2] == (64, 3, 3)
    assert net.classes == 10
    assert net.text == PRESETS["scnn5"]


@pytest.mark.parametrize("name, last", [("scnn7", (128, 6, 6)), ("scnn9", (256, 2, 2))])
def test_presets(name, last):
    assert parse_spec(name).shapes[-2] == last


def test_bare_number_is_fully_connected_and_padding_defaults_to_zero():
    net = parse_spec("2x10x10-4c3-7")
    assert net.layers == (ConvSpec(4, 3, 0), FCSpec(7))
    assert net.shapes[1] == (4, 8, 8)


@pytest.mark.parametrize("text, message", [
    ("28x28-8c3p1-10fc", r"the first token '28x28' must be the input shape"),
    ("1x28x28", r"no layers after the input shape"),
    ("1x28x28-8c3p1-banana-10fc", r"unknown layer token 'banana'"),
    ("1x4x4-8c5p0-10fc", r"layer '8c5p0' has a 5x5 kernel but its input is only 4x4"),
    ("1x4x4-8c3p3-10fc", r"layer '8c3p3' pads by 3, which must be smaller than the kernel 3"),
    ("1x3x3-mp4-10fc", r"layer 'mp4' pools 4x4 windows but its input is only 3x3"),
    ("1x8x8-8c3p1-mp1-10fc", r"layer 'mp1' needs a window of at least 2"),
    ("1x8x8-8c3p1-mp2", r"the last layer 'mp2' must be the readout"),
    ("1x8x8-8c3p1", r"the last layer '8c3p1' must be the readout"),
    ("1x8x8-0c3p1-10fc", r"layer '0c3p1' needs at least one channel"),
    ("0x8x8-10fc", r"input shape '0x8x8' has a zero dimension"),
])
def test_bad_specs_name_the_token(text, message):
    with pytest.raises(SpecError, match=message) as info:
        parse_spec(text)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("text, message", [
    ("1x28x28-8c3p1-" + "9" * 4000 + "fc", r"has a number of 4000 digits \(at most 6\)"),
    ("1x28x28-8c3p1-1000000fc", r"'1000000fc' has a number of 7 digits"),
    ("1x28x28-8c3p1-70000fc", r"'70000fc' has the number 70000, more than the limit of 65536"),
    ("1x28x28-8c3p1-\u0661\u0660fc", r"unknown layer token '\u0661\u0660fc'"),
    ("\u0661x28x28-10fc", r"the first token '\u0661x28x28' must be the input shape"),
    ("1x28x28-mp2-8c3p1-10fc", r"layer 'mp2' must directly follow a conv or fc layer"),
    ("1x28x28-8c3p1-mp2-mp2-10fc", r"layer 'mp2' must directly follow a conv or fc layer"),
    ("1x1024x1024-8c3p1-10fc", r"makes a map of 8x1024x1024 = 8388608 neurons, more than the "
                               r"limit of 1048576"),
    ("1x64x64-4096fc-4096fc-10fc", r"33554432 weights up to '4096fc', more than the limit of "
                                   r"16777216"),
    ("1x128x128-64c3p1-64c9p4-10fc", r"multiply-accumulates per time step up to '64c9p4', "
                                     r"more than the limit of 2147483648"),
    ("1x8x8-" + "-".join(["4c1"] * 300) + "-10fc", r"301 layers, more than the limit of 256"),
    ("1x8x8-" + "4c1-" * 2000 + "10fc", r"characters, more than the limit of 4096"),
])
def test_spec_limits_give_one_line(text, message):
    with pytest.raises(SpecError, match=message) as info:
        parse_spec(text)
    assert "\n" not in str(info.value) and len(str(info.value)) < 400


def test_input_map_limit():
    with pytest.raises(SpecError, match=r"input shape '2x1024x1024' has 2097152 neurons, more "
                                        r"than the limit of 1048576"):
        parse_spec("2x1024x1024-10fc")
