"""The `twin` command line: the composition root that joins the model (`twin`), the intake service
(`intake`) and the load tests (`loadtest`). Run it as `twin ...` or `python -m twin_cli ...`."""
