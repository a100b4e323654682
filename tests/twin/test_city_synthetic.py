"""The city model on tiny synthetic cities built in code."""

from __future__ import annotations

import json
from pathlib import Path

import networkx as nx
import numpy as np
import osmnx as ox
import pandas as pd
import pytest

from tests.synthetic import LAT0, LON0, SIDE, road_frame
from twin.city.assembly import load_city
from twin.city.datadir import DATA_DIR_ENV, DEFAULT_DATA_DIR, resolve_data_dir
from twin.city.kelurahan import KelurahanIndex, load_kelurahan
from twin.city.roads import load_network_file, network_from_lines
from twin.city.speeds import SpeedSettings
from twin.city.travel import depot_tables
from twin.errors import CoordinateError, DataError
from twin_cli.main import main


def test_data_dir_resolution_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    assert resolve_data_dir().root == DEFAULT_DATA_DIR
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "env"))
    assert resolve_data_dir().root == tmp_path / "env"
    assert resolve_data_dir(tmp_path / "arg").root == tmp_path / "arg"


def test_locate_inside_gap_and_outside(synthetic_dir: Path) -> None:
    index = KelurahanIndex(load_kelurahan(synthetic_dir / "boundaries" / "kelurahan.geojson"))
    assert index.locate(LON0 + 0.005, LAT0 + 0.005) == "31.71.01.1001"
    assert index.locate(LON0 + 0.015, LAT0 + 0.015) == "31.71.02.1002"
    # exactly on the shared border: in both polygons, the lowest code wins
    assert index.locate(LON0 + SIDE, LAT0 + 0.005) == "31.71.01.1001"
    # 100 m outside the edge: within the gap tolerance, nearest polygon
    assert index.locate(LON0 - 0.0009, LAT0 + 0.005) == "31.71.01.1001"
    # 1 km outside: not Jakarta
    assert index.locate(LON0 - 0.009, LAT0 + 0.005) is None
    many = index.locate_many([LON0 + 0.005, LON0 - 0.5], [LAT0 + 0.015, LAT0])
    assert many.tolist() == [2, -1]


@pytest.mark.parametrize(
    ("lon", "lat", "fragment"),
    [
        (float("nan"), -6.2, "not a number"),
        (106.8, float("inf"), "not a number"),
        (-6.2, 106.8, "swapped"),
        (206.8, -6.2, "out of range"),
    ],
)
def test_locate_rejects_bad_coordinates(
    synthetic_dir: Path, lon: float, lat: float, fragment: str
) -> None:
    index = KelurahanIndex(load_kelurahan(synthetic_dir / "boundaries" / "kelurahan.geojson"))
    with pytest.raises(CoordinateError, match=fragment):
        index.locate(lon, lat)


def test_network_from_lines_honours_oneway_and_drops_footways() -> None:
    net = network_from_lines(road_frame(), SpeedSettings())
    n = round(2 * SIDE / 0.002) + 1
    assert net.n_nodes == n * n  # every grid crossing is a node, nothing else
    assert "footway" not in set(net.highway)
    graph = net.to_networkx()
    xy = {(round(d["x"], 6), round(d["y"], 6)): node for node, d in graph.nodes(data=True)}
    col3 = LON0 + 3 * 0.002
    a, b = (
        xy[(round(col3, 6), round(LAT0 + 0.002, 6))],
        xy[(round(col3, 6), round(LAT0 + 0.004, 6))],
    )
    assert graph.has_edge(a, b)  # oneway=yes runs in drawing order
    assert not graph.has_edge(b, a)
    col7 = LON0 + 7 * 0.002
    c, d = (
        xy[(round(col7, 6), round(LAT0 + 0.002, 6))],
        xy[(round(col7, 6), round(LAT0 + 0.004, 6))],
    )
    assert graph.has_edge(d, c)  # oneway=-1 runs against it
    assert not graph.has_edge(c, d)
    for _, _, data in graph.edges(data=True):
        expected = data["length"] / (SpeedSettings().speed_kph(data["highway"]) / 3.6)
        assert data["travel_time"] == pytest.approx(expected)
    assert nx.is_strongly_connected(graph)
    route = ox.routing.shortest_path(graph, a, c, weight="travel_time")
    assert route[0] == a
    assert route[-1] == c


def test_largest_strongly_connected_component_only() -> None:
    roads = road_frame()
    # a one-way spur leading out of the grid into a dead end: it cannot be left, so it is dropped
    from shapely.geometry import LineString

    spur = type(roads)(
        [
            {
                "TYPE": "residential",
                "ONEWAY": "yes",
                "geometry": LineString([(LON0, LAT0), (LON0 - 0.003, LAT0 - 0.003)]),
            }
        ],
        crs=4326,
    )
    net = network_from_lines(pd.concat([roads, spur], ignore_index=True), SpeedSettings())
    assert net.n_nodes == network_from_lines(roads, SpeedSettings()).n_nodes
    assert net.node_x.min() >= LON0 - 1e-9


def test_speed_override_changes_travel_time() -> None:
    slow = SpeedSettings(speeds_kph={"primary": 10.0, "residential": 5.0})
    fast = network_from_lines(road_frame(), SpeedSettings())
    net = network_from_lines(road_frame(), slow)
    assert net.travel_time_s.sum() > fast.travel_time_s.sum() * 2


def test_travel_tables_match_networkx(synthetic_city) -> None:  # type: ignore[no-untyped-def]
    city = synthetic_city
    graph = city.network.to_networkx()
    rng = np.random.default_rng(3)
    for region in np.unique(city.tables.region_of_node):
        nodes = city.tables.region_nodes(int(region))
        for a, b in rng.choice(nodes, size=(20, 2)):
            expected = nx.shortest_path_length(graph, int(a), int(b), weight="travel_time")
            assert city.tables.time_s(int(a), int(b)) == round(expected)
            assert city.tables.node_time_s([a], [b])[0] == round(expected)


def test_depot_tables_match_the_all_pairs_tables(synthetic_city) -> None:  # type: ignore[no-untyped-def]
    city = synthetic_city
    has = city.kelurahan_has_roads
    depots = city.depots["node"].to_numpy()[has]
    out, back = depot_tables(city.network, depots, city.tables.region_of_node)
    for i, depot in enumerate(depots):
        nodes = city.tables.region_nodes(int(city.tables.region_of_node[depot]))
        assert np.allclose(
            np.rint(out[i, nodes]), city.tables.node_time_s(np.full(len(nodes), depot), nodes)
        )
        assert np.allclose(
            np.rint(back[i, nodes]), city.tables.node_time_s(nodes, np.full(len(nodes), depot))
        )


def test_cache_is_keyed_by_inputs_and_settings(synthetic_dir: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = load_city(synthetic_dir, cache_dir=cache)
    again = load_city(synthetic_dir, cache_dir=cache)
    assert (first.cache["status"], again.cache["status"]) == ("built", "hit")
    assert again.cache["path"] == first.cache["path"]
    slower = load_city(synthetic_dir, cache_dir=cache, speeds=SpeedSettings(default_speed_kph=5.0))
    assert slower.cache["status"] == "built"
    assert slower.cache["path"] != first.cache["path"]
    np.testing.assert_array_equal(again.tables.flat, first.tables.flat)


def test_kelurahan_without_roads_uses_the_fallback_and_is_warned(synthetic_city) -> None:  # type: ignore[no-untyped-def]
    city = synthetic_city
    assert city.kelurahan_has_roads.tolist() == [True, True, True, True, False]
    assert any("Lima" in w for w in city.warnings)
    lon1, lat1 = LON0 + 2 * SIDE + 0.002, LAT0 + SIDE + 0.005
    lon2, lat2 = lon1 + 0.005, lat1
    s = city.speeds
    straight = 0.005 * 111_195 * np.cos(np.radians(lat1))  # metres along the parallel
    expected = straight * s.detour_factor / (s.default_speed_kph / 3.6)
    assert city.travel_time_s(lon1, lat1, lon2, lat2)[0] == pytest.approx(expected, rel=0.01)


def test_travel_time_between_points_and_congestion(synthetic_city) -> None:  # type: ignore[no-untyped-def]
    city = synthetic_city
    night = city.travel_time_s(LON0 + 0.001, LAT0 + 0.001, LON0 + 0.019, LAT0 + 0.009, hour=3)[0]
    peak = city.travel_time_s(LON0 + 0.001, LAT0 + 0.001, LON0 + 0.019, LAT0 + 0.009, hour=18)[0]
    assert 60 < night < 600
    assert peak > night
    with pytest.raises(CoordinateError, match="one kecamatan"):
        city.travel_time_s(LON0 + 0.001, LAT0 + 0.001, LON0 + 0.001, LAT0 + 0.019)
    with pytest.raises(CoordinateError, match="outside Jakarta"):
        city.travel_time_s(LON0 - 1, LAT0, LON0 + 0.001, LAT0 + 0.001)


def test_depots_are_snapped_with_distance(synthetic_city) -> None:  # type: ignore[no-untyped-def]
    depots = synthetic_city.depots
    assert len(depots) == 5
    assert (depots["snap_m"][:4] < 150).all()
    assert set(depots.columns) >= {"kode_kemendagri", "node", "snap_m", "lon", "lat"}


def test_graphml_round_trip_and_missing_travel_time(synthetic_city, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    graph = synthetic_city.network.to_networkx()
    path = tmp_path / "city.graphml"
    ox.save_graphml(graph, path)
    net = load_network_file(path, SpeedSettings())
    assert net.n_nodes == synthetic_city.network.n_nodes
    assert net.travel_time_s.sum() == pytest.approx(synthetic_city.network.travel_time_s.sum())
    for _, _, data in graph.edges(data=True):
        del data["travel_time"]
    ox.save_graphml(graph, tmp_path / "bare.graphml")
    with pytest.raises(DataError, match="no 'travel_time'"):
        load_network_file(tmp_path / "bare.graphml", SpeedSettings())


OSM_XML = """<?xml version="1.0" encoding="UTF-8"?>
<osm version="0.6" generator="test">
  <node id="1" lat="-6.2000" lon="106.8000" version="1"/>
  <node id="2" lat="-6.2000" lon="106.8050" version="1"/>
  <node id="3" lat="-6.1950" lon="106.8050" version="1"/>
  <node id="4" lat="-6.1950" lon="106.8000" version="1"/>
  <way id="10" version="1"><nd ref="1"/><nd ref="2"/><nd ref="3"/><nd ref="4"/><nd ref="1"/>
    <tag k="highway" v="residential"/></way>
  <way id="11" version="1"><nd ref="1"/><nd ref="3"/><tag k="highway" v="primary"/></way>
</osm>
"""


def test_osm_xml_file(tmp_path: Path) -> None:
    path = tmp_path / "tiny.osm"
    path.write_text(OSM_XML)
    net = load_network_file(path, SpeedSettings())
    assert net.n_nodes == 2  # osmnx simplification keeps only the junctions of both ways
    assert net.n_edges == 6
    assert set(net.highway) <= {"residential", "primary"}
    assert (net.travel_time_s > 0).all()


def test_empty_road_file_is_refused(synthetic_dir: Path, tmp_path: Path) -> None:
    empty = road_frame().iloc[:0]
    path = tmp_path / "empty.shp"
    empty.to_file(path)
    with pytest.raises(DataError, match=r"empty\.shp"):
        load_network_file(path, SpeedSettings())


def test_polygon_file_without_expected_columns(synthetic_dir: Path, tmp_path: Path) -> None:
    path = synthetic_dir / "boundaries" / "kelurahan.geojson"
    gdf = load_kelurahan(path).drop(columns=["kecamatan"])
    gdf.to_file(path, driver="GeoJSON")
    with pytest.raises(DataError, match=r"kelurahan.geojson: missing column\(s\) kecamatan"):
        load_city(synthetic_dir, cache_dir=tmp_path / "c")


def test_offices_with_bad_coordinates(synthetic_dir: Path, tmp_path: Path) -> None:
    path = synthetic_dir / "offices" / "kelurahan_offices.csv"
    df = pd.read_csv(path, dtype=str)
    df.loc[2, "lat"] = "not-a-number"
    df.to_csv(path, index=False)
    with pytest.raises(DataError, match="line 4"):
        load_city(synthetic_dir, cache_dir=tmp_path / "c")


@pytest.mark.parametrize(
    "victim",
    ["boundaries/kelurahan.geojson", "roads/jakarta_roads.shp", "offices/kelurahan_offices.csv"],
)
def test_cli_missing_file_is_one_line_exit_2(
    synthetic_dir: Path, victim: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (synthetic_dir / victim).unlink()
    assert main(["city", "info", "--data", str(synthetic_dir)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert victim.split("/")[-1] in err
    assert "Traceback" not in err


def test_cli_info_json_and_map(
    synthetic_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TWIN_CACHE_DIR", str(tmp_path / "cache"))
    assert main(["city", "info", "--json", "--data", str(synthetic_dir)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["kelurahan"] == 5
    assert info["kelurahan_without_roads"] == ["Lima"]
    assert info["cache"]["status"] in {"built", "hit"}
    out = tmp_path / "map.png"
    assert main(["city", "map", "--out", str(out), "--data", str(synthetic_dir)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_commands_run_on_a_small_city(
    synthetic_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The shipped benchmarks run end to end (a smoke test: timings are not asserted)."""
    monkeypatch.setenv("TWIN_CACHE_DIR", str(tmp_path / "cache"))
    assert main(["bench", "city", "--data", str(synthetic_dir), "--repeat", "1", "--json"]) == 0
    city = json.loads(capsys.readouterr().out)
    assert {
        "cold_build_s",
        "warm_load_s",
        "depot_tables_s",
        "batched_lookups_per_s",
        "single_lookup_us",
    } <= set(city)
    assert (
        main(
            ["bench", "sim", "--data", str(synthetic_dir), "--days", "2", "--repeat", "1", "--json"]
        )
        == 0
    )
    sim = json.loads(capsys.readouterr().out)
    assert sim["reports"] > 0
    assert sim["ratio_to_bare_simpy"] > 0


def _load_in_child(args: tuple[str, str]) -> int:
    from twin.city.assembly import load_city

    return load_city(args[0], cache_dir=Path(args[1])).n_kelurahan


def test_processes_building_the_same_city_at_once_all_succeed(
    synthetic_dir: Path, tmp_path: Path
) -> None:
    """A pool's workers on a cold cache build the same city together: none may fail."""
    import multiprocessing

    cache = tmp_path / "cold-cache"
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        counts = pool.map(_load_in_child, [(str(synthetic_dir), str(cache))] * 4)
    assert counts == [5, 5, 5, 5]
    built = [p.name for p in cache.iterdir()]
    assert len(built) == 1  # one cache folder, no temporary folder left behind
    assert not built[0].endswith(".tmp")
