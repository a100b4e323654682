"""Integration tests of the city model on the real Jakarta data (skipped only off CI without data)."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

MAINLAND_WITHOUT_NODES = {
    "Balekambang", "Baru", "Batu Ampar", "Cijantung", "Cilangkap", "Cipayung", "Cipedak",
    "Ciracas", "Kalisari", "Kebayoran Lama Selatan", "Lubang Buaya", "Pondok Ranggon", "Setu", "Tengah",
}  # fmt: skip


def test_kelurahan_counts(real_city) -> None:  # type: ignore[no-untyped-def]
    table = real_city.table
    assert len(table) == 267
    per_kota = table.groupby(table["kota"].str.replace("Kota Administrasi ", "")).size().to_dict()
    assert per_kota["Jakarta Pusat"] == 44
    assert per_kota["Jakarta Timur"] == 65
    assert int(real_city.is_seribu.sum()) == 6


def test_known_places(real_city) -> None:  # type: ignore[no-untyped-def]
    locate = real_city.kelurahan.locate
    gambir = locate(106.8272, -6.1754)  # Monas
    assert real_city.table.set_index("kode_kemendagri").at[gambir, "kelurahan"] == "Gambir"
    assert locate(106.65, -6.20) is None  # Tangerang
    assert locate(106.85, -6.00) is None  # Java Sea


def test_kelurahan_without_roads_match_the_data_readme(real_city) -> None:  # type: ignore[no-untyped-def]
    table = real_city.table
    missing = ~real_city.kelurahan_has_roads & ~real_city.is_seribu
    assert set(table.loc[missing, "kelurahan"]) == MAINLAND_WITHOUT_NODES
    assert any("14 mainland kelurahan" in w for w in real_city.warnings)


def test_network_is_strongly_connected_and_sized(real_city) -> None:  # type: ignore[no-untyped-def]
    net = real_city.network
    assert 25_000 < net.n_nodes < 40_000
    assert 4_500 < net.road_km() < 5_700
    assert (net.travel_time_s > 0).all()
    assert (real_city.depots["snap_m"][real_city.kelurahan_has_roads] < 1_500).all()


def test_tables_agree_with_networkx_dijkstra(real_city) -> None:  # type: ignore[no-untyped-def]
    net = real_city.network
    rng = np.random.default_rng(7)
    graph = nx.DiGraph()
    graph.add_weighted_edges_from(
        zip(net.edge_u.tolist(), net.edge_v.tolist(), net.travel_time_s.tolist(), strict=True),
        weight="t",
    )
    for region in rng.choice(np.unique(real_city.tables.region_of_node), 6, replace=False):
        nodes = real_city.tables.region_nodes(int(region))
        a, b = (int(x) for x in rng.choice(nodes, 2))
        expected = nx.shortest_path_length(graph, a, b, weight="t")
        assert real_city.tables.time_s(a, b) == pytest.approx(expected, abs=0.51)


def test_locate_all_depots_in_their_own_kelurahan(real_city) -> None:  # type: ignore[no-untyped-def]
    d = real_city.depots
    published = d["source"] == "kantor_lurah_point"
    codes = real_city.kelurahan.codes[real_city.kelurahan.locate_many(d["lon"], d["lat"])]
    # office points lie inside their kelurahan; the border rule may give a sliver to a neighbour
    assert (codes[published] == d["kode_kemendagri"][published]).mean() > 0.95


def test_scalar_locate_agrees_with_the_vectorised_one(real_city) -> None:  # type: ignore[no-untyped-def]
    """The scalar path (lookup grid + exact border test) follows the same border rule."""
    import shapely

    index = real_city.kelurahan
    rng = np.random.default_rng(11)
    lon = rng.uniform(106.6, 107.05, 20_000)
    lat = rng.uniform(-6.45, -6.0, 20_000)
    vertices = shapely.get_coordinates(index.table.geometry.to_numpy())[::5]  # exactly on borders
    lon = np.r_[lon, vertices[:, 0]]
    lat = np.r_[lat, vertices[:, 1]]
    rows = index.locate_many(lon, lat)
    expected = [None if r < 0 else str(index.codes[r]) for r in rows]
    assert [index.locate(x, y) for x, y in zip(lon.tolist(), lat.tolist(), strict=True)] == expected
