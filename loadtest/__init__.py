"""Locust load tests of the intake API, driven by the twin's demand model.

Only `loadtest.locustfile` and `loadtest.shapes` import Locust (``import locust`` monkey-patches
gevent into the process); they run in Locust's own processes. Everything else here
(`profiles`, `payloads`, `runner`) is plain Python that `twin loadtest` and the tests import.
"""
