"""A map of the city: kelurahan boundaries, roads by class, and the PPSU depots."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from pathlib import Path

    from twin.city.assembly import City

# Line widths by road class: the arterials should read at a glance over the residential mesh.
_WIDTH = {"motorway": 1.4, "trunk": 1.2, "primary": 1.0, "secondary": 0.8, "tertiary": 0.6}


def draw_city_map(city: City, out: Path) -> Path:
    """Draw the mainland city to a PNG and return its path.

    Kelurahan with no road node are hatched; depots more than 500 m from a road are orange.
    The Kepulauan Seribu islands lie far north and are listed in the title, not drawn.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import shapely
    from matplotlib.collections import LineCollection

    table = city.table
    mainland = ~city.is_seribu
    fig, ax = plt.subplots(figsize=(11, 11), dpi=130)
    table[mainland].boundary.plot(ax=ax, color="#7a7a7a", linewidth=0.4, zorder=1)
    gaps = mainland & ~city.kelurahan_has_roads
    if gaps.any():
        table[gaps].plot(
            ax=ax, facecolor="none", edgecolor="#c0392b", hatch="///", linewidth=0.6, zorder=2
        )

    net = city.network
    segments = np.split(net.geom_xy, net.geom_offset[1:-1])
    cls = net.highway
    base = np.array([c.removesuffix("_link") for c in cls])
    widths = np.array([_WIDTH.get(c, 0.25) for c in base])
    colours = np.where(widths >= 0.6, "#1f4e79", "#8fa9c4")
    ax.add_collection(LineCollection(segments, linewidths=widths, colors=colours, zorder=3))

    d = city.depots[mainland]
    far = d["snap_m"].to_numpy() > 500
    ax.scatter(
        d["lon"][~far],
        d["lat"][~far],
        s=9,
        c="#d62728",
        zorder=4,
        label="PPSU depot (kantor lurah)",
    )
    ax.scatter(
        d["lon"][far],
        d["lat"][far],
        s=14,
        c="#ff9f1c",
        zorder=4,
        label="depot > 500 m from a road node",
    )
    ax.plot([], [], color="#1f4e79", label="arterial roads")
    ax.plot([], [], color="#8fa9c4", label="local roads")
    if gaps.any():
        ax.fill(
            [],
            [],
            facecolor="none",
            edgecolor="#c0392b",
            hatch="///",
            label="kelurahan without road nodes",
        )
    minx, miny, maxx, maxy = shapely.total_bounds(table[mainland].geometry.to_numpy())
    ax.set_xlim(minx - 0.01, maxx + 0.01)
    ax.set_ylim(miny - 0.01, maxy + 0.01)
    ax.set_aspect(1.0)
    ax.set_xlabel("longitude")
    ax.set_ylabel("latitude")
    n_seribu = int(city.is_seribu.sum())
    ax.set_title(
        f"Jakarta: {int(mainland.sum())} mainland kelurahan, {net.n_nodes:,} road nodes, "
        f"{net.road_km():,.0f} km of road\n(+{n_seribu} Kepulauan Seribu island kelurahan, not drawn)"
    )
    ax.legend(loc="lower left", fontsize=8, framealpha=0.9)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out
