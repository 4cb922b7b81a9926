"""An OpenStreetMap extract becomes the street network: drivable ways only, kinds, one-way
direction (``-1`` reversed), speeds; junk features are skipped, never a crash."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from planning import InvalidValue, StreetKind
from planning.network import StreetNetwork
from planning.osm import streets_from_geojson


def way(highway: str, coordinates: list[list[float]], **tags: Any) -> dict[str, Any]:
    return {
        "type": "Feature",
        "geometry": {"type": "LineString", "coordinates": coordinates},
        "properties": {"highway": highway, **tags},
    }


A, B, C = [105.77, 20.97], [105.772, 20.97], [105.772, 20.972]


def test_drivable_ways_become_streets_with_their_tags() -> None:
    found = streets_from_geojson(
        {
            "type": "FeatureCollection",
            "features": [
                way("primary", [A, B], name="Đường Quang Trung", maxspeed="50"),
                way("service", [B, C], oneway="-1"),
                way("footway", [A, C]),
                way("residential", [A, C], access="private"),
                {"type": "Feature", "geometry": {"type": "Point", "coordinates": A}},
                way("tertiary", [[999, 20.9], B]),
            ],
        }
    )
    assert found.skipped == 4
    main, alley = found.streets
    assert (main.kind, main.name, main.speed_kmh, main.one_way) == (
        StreetKind.PRIMARY, "Đường Quang Trung", 50.0, False,
    )  # fmt: skip
    # oneway=-1: drivable against the drawing direction, stored the way it is driven
    assert (alley.kind, alley.one_way, alley.line) == (
        StreetKind.ALLEY, True, ((C[0], C[1]), (B[0], B[1])),
    )  # fmt: skip
    network = StreetNetwork.from_streets(found.streets)
    c_to_b = network.travel([(C[1], C[0]), (B[1], B[0])])
    assert c_to_b.durations_s[0, 1] < c_to_b.durations_s[1, 0]  # the one-way alley


def test_a_file_that_is_not_a_feature_collection_is_refused() -> None:
    with pytest.raises(InvalidValue, match="FeatureCollection"):
        streets_from_geojson({"type": "Feature"})


@given(
    st.lists(
        st.dictionaries(
            st.text(max_size=8),
            st.recursive(
                st.none() | st.booleans() | st.floats(allow_nan=True) | st.text(max_size=8),
                lambda inner: (
                    st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=5), inner, max_size=3)
                ),
                max_leaves=8,
            ),
            max_size=4,
        ),
        max_size=5,
    )
)
def test_hostile_features_are_skipped_never_a_crash(features: list[dict[str, Any]]) -> None:
    found = streets_from_geojson({"type": "FeatureCollection", "features": features})
    assert found.skipped <= len(features)
    if not any(isinstance(f.get("properties"), dict) for f in features):
        # no tags, no highway: every feature is skipped, none becomes a street
        assert found.skipped == len(features)
        assert found.streets == []
    for street in found.streets:
        assert len(street.line) >= 2
