"""The paper's eight datasets: ``catalog`` (what each holds and how it is scored), one module per
raw source, ``rows`` (reading raw rows with one-line errors) and ``prepare`` (raw source ->
canonical JSON Lines)."""
