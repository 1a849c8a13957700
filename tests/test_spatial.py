"""The difference channel's directional response (asdlib.spatial) against its closed form."""
import numpy as np

from asdlib.spatial import difference_response, far_field_dipole, mic_positions


def test_far_field_matches_the_dipole_closed_form():
    f = np.linspace(50, 8000, 60)
    az = np.arange(0, 360, 5.0)
    for pair, axis in [((0, 4), 0.0), ((2, 6), 90.0), ((1, 5), 45.0)]:
        np.testing.assert_allclose(difference_response(f, az, pair), far_field_dipole(f, az - axis), atol=1e-9)


def test_nulls_broadside_and_largest_on_axis_at_low_frequency():
    h = difference_response([500.0], np.arange(0, 360, 1.0), (0, 4))[0]
    assert h[90] < 1e-9 and h[270] < 1e-9
    assert np.argmax(h) in (0, 180)
    low, high = difference_response([250.0, 500.0], [0.0], (0, 4))[:, 0]
    assert abs(20 * np.log10(high / low) - 6.0) < 0.2  # 6 dB per octave


def test_near_field_adds_level_difference():
    far = difference_response([100.0], [0.0], (0, 4))[0, 0]
    near = difference_response([100.0], [0.0], (0, 4), distance=0.10)[0, 0]
    assert near > 3 * far  # valves at 10 cm: the 1/r term dominates at low frequency
    assert mic_positions().shape == (8, 3)
    assert np.allclose(np.linalg.norm(mic_positions()[0] - mic_positions()[4]), 0.073)
