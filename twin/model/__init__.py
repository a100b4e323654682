"""The simulation model: scenarios, demand, the SimPy process, dispatch policies and one run.

`run_scenario(city, scenario)` draws the reports from the demand model (each activity on its own
named random stream), simulates their handling and returns the records and KPIs of one run.
"""

from twin.model.demand import generate_reports
from twin.model.runner import RunResult, run_scenario
from twin.model.scenario import Scenario, load_scenario, scenario_from_dict
from twin.model.streams import RandomStreams

__all__ = [
    "RandomStreams",
    "RunResult",
    "Scenario",
    "generate_reports",
    "load_scenario",
    "run_scenario",
    "scenario_from_dict",
]
