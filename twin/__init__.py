"""jakarta-twin's model: a digital twin of Jakarta's citizen-complaint handling.

Layers, each importing only those before it (see docs/architecture.md):

``twin.city``
    The data and the city: kelurahan, roads, speeds, travel tables, depots, maps.
``twin.model``
    Scenarios, demand, the SimPy process model, dispatch policies, random streams, one run.
``twin.experiments``
    Replications in parallel, statistics across them, variants and sweeps, validation.
``twin.reports``
    What people read: run files, plots, HTML reports of studies.

Beside them, the shared vocabulary the intake service also uses: ``twin.entities`` (statuses,
categories, channels), ``twin.kpis`` (the KPIs of a set of reports) and ``twin.errors``.
The model knows nothing of the intake service or the load tests; the ``twin`` command that
joins the three faces lives in the ``twin_cli`` package.
"""
