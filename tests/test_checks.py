"""Input checks: hand cases of what passes, what fails, and what the message says."""
import numpy as onp
import pytest
from autograd import grad

from minivq.checks import (check_finite, check_images, check_indices, check_vectors, shape_matches,
                           shape_text)


def test_shape_patterns_by_hand():
    assert shape_matches((2, 7, 7), ("B", 7, 7))
    assert not shape_matches((2, 7, 6), ("B", 7, 7))
    assert not shape_matches((7, 7), ("B", 7, 7))
    assert shape_matches((5, 16), (..., 16)) and shape_matches((2, 3, 3, 16), (..., 16))
    assert shape_matches((16,), (..., 16)) and not shape_matches((), (..., 16))
    assert not shape_matches((2, 3, 3, 8), (..., 16))
    assert shape_text(("B", 7, 7)) == "(B, 7, 7)"
    assert shape_text((..., 16)) == "(..., 16)"
    assert shape_text((3,)) == "(3,)"


def test_indices_pass_and_come_back_as_arrays():
    out = check_indices([[0, 3], [1, 2]], 4, ("B", 2))
    onp.testing.assert_array_equal(out, [[0, 3], [1, 2]])
    assert isinstance(out, onp.ndarray)
    check_indices(onp.zeros((0, 2), onp.int64), 1)                  # empty is fine unless nonempty=True
    check_indices(onp.array([7, 9000]), None)                       # K unknown: only >= 0


@pytest.mark.parametrize("indices, kwargs, message", [
    (onp.array([0, 4]), {}, r"indices must lie in \[0, 4\), got range \[0, 4\]"),
    (onp.array([-1, 2]), {}, r"must lie in \[0, 4\), got range \[-1, 2\]"),
    (onp.array([0.0, 1.0]), {}, r"must be integers in \[0, 4\), got dtype float64"),
    (onp.zeros((2, 3), int), dict(shape=("B", "h", "w")), r"of shape \(B, h, w\), got shape \(2, 3\)"),
    (onp.zeros((2, 3), int), dict(shape=(2, 4)), r"of shape \(2, 4\), got shape \(2, 3\)"),
    (onp.zeros(0, int), dict(nonempty=True), "at least one index"),
    (onp.array([0, 1]), dict(name="labels", num_codes=1), r"labels must lie in \[0, 1\)"),
    (onp.array([-3]), dict(num_codes=None), r"must be non-negative, got range \[-3, -3\]"),
])
def test_bad_indices_say_what_was_expected(indices, kwargs, message):
    kwargs = dict(dict(num_codes=4), **kwargs)
    with pytest.raises(ValueError, match=message):
        check_indices(indices, **kwargs)


def test_vectors():
    z = onp.ones((2, 3, 3, 4), onp.float32)
    assert check_vectors(z, (..., 4)) is z                          # returned unchanged
    with pytest.raises(ValueError, match=r"z_e must have shape \(\.\.\., 5\), got \(2, 3, 3, 4\)"):
        check_vectors(z, (..., 5), name="z_e")
    with pytest.raises(ValueError, match=r"codes must be a float array of shape \(B, 2\), got int64"):
        check_vectors(onp.zeros((3, 2), onp.int64), ("B", 2), name="codes")
    with pytest.raises(ValueError, match="got NoneType"):
        check_vectors(None, ("B", 2))
    with pytest.raises(ValueError, match=r"contains NaN or inf"):
        check_vectors(onp.array([[0.0, onp.inf]]), ("B", 2))


def test_checks_read_through_autograd_boxes():
    # Inside a traced function the checks see the plain value and let the box through.
    def f(z):
        return (check_vectors(z, (..., 2)) ** 2).sum()
    onp.testing.assert_allclose(grad(f)(onp.array([[1.0, -2.0]])), [[2.0, -4.0]])


def test_images():
    x = onp.full((2, 4, 4, 1), 0.5, onp.float32)
    assert check_images(x, (4, 4, 1)) is x
    check_images(x)                                                  # any (B, H, W, C)
    with pytest.raises(ValueError, match=r"x must have shape \(B, 4, 4, 3\), channels last, got \(2, 4,"):
        check_images(x, (4, 4, 3))
    with pytest.raises(ValueError, match=r"must have shape \(B, H, W, C\)"):
        check_images(x[..., 0])
    with pytest.raises(ValueError, match="float array.*divide uint8 images by 255"):
        check_images(onp.zeros((2, 4, 4, 1), onp.uint8))
    with pytest.raises(ValueError, match="NaN or inf"):
        check_images(onp.full((1, 2, 2, 1), onp.nan))
    check_images(x * 2, value_range=(0, 1.5))
    with pytest.raises(ValueError, match=r"images must hold pixels in \[0, 1\], got range \[0, 255\]"):
        check_images(onp.array([0.0, 255.0]).reshape(1, 1, 2, 1), name="images", value_range=(0, 1))


def test_finite():
    check_finite(onp.zeros(3))
    with pytest.raises(ValueError, match=r"w of shape \(2,\) contains NaN or inf"):
        check_finite(onp.array([0.0, onp.nan]), "w")
