# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Reproduce Jakarta's published complaint-handling outcomes
#
# This notebook reruns the twin's validation at a small size: each period scenario
# (`jakarta-2016`, `jakarta-2020`, `jakarta-2024`, or its calibrated version when
# `twin calibrate` has written one) for a few replications of one simulated week, and compares
# the published KPIs with the simulated means and their 95 % confidence intervals. Rates are
# compared per day, so a short run is judged fairly. The full run is
# `twin validate --replications 10`; everything here is computed by the `twin` package, the
# notebook only calls it.

# %%
import os
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from twin.experiments.replications import Runner
from twin.experiments.validation import PUBLISHED, validate
from twin.reports.study_report import plot_validation

REPLICATIONS = int(os.environ.get("NOTEBOOK_REPLICATIONS", "2"))
DAYS = int(os.environ.get("NOTEBOOK_DAYS", "7"))
data_dir = os.environ.get("TWIN_DATA_DIR")  # None: the twin's own search order
print(f"{REPLICATIONS} replications x {DAYS} days per period; data: {data_dir or 'default'}")

# %% [markdown]
# ## The published targets
# Only aggregates are public (`data/jakarta/README.md`).

# %%
pd.DataFrame(
    [
        {"period": p, "kpi": t.kpi, "published": t.published, "tolerance": t.tolerance, "relative": t.relative}
        for p, targets in PUBLISHED.items()
        for t in targets
    ]
)

# %% [markdown]
# ## Simulated against published

# %%
table = validate(list(PUBLISHED), REPLICATIONS, Runner(data_dir=data_dir, workers=1), days=DAYS)
table[["period", "kpi", "published", "simulated", "ci_low", "ci_high", "tolerance", "pass"]]

# %%
out = Path("validation_notebook.png")
plot_validation(table, out)
img = plt.imread(out)
plt.figure(figsize=(10, 5))
plt.imshow(img)
plt.axis("off")
plt.show()
out.unlink()

# %% [markdown]
# ## Reading the result
# Green points lie within the stated tolerance of the published figure; a red point is a
# published outcome the twin misses. Every period is calibrated: `twin calibrate
# scenarios/<period>.toml` fits its unpublished parameters (agency share and delay, and the
# share of reports never picked up, within their assumed ranges) and writes
# `<period>-calibrated.toml`, which validation uses. At the full period length (`twin validate`)
# all nine published KPIs are within tolerance; this one-week run is a smaller sample, so a
# yearly figure such as the 2024 peak day may fall outside.

# %%
print(f"{int(table['pass'].sum())} of {len(table)} published KPIs within tolerance")
