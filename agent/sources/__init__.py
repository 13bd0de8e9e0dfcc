"""Earlier studies a new study learns from (``--learn-from``): reading them (:mod:`~agent.sources.reading`),
mapping each into the new study's space (:mod:`~agent.sources.mapping`; the model's judgment in
:mod:`~agent.sources.judge`, answered through the tool in :mod:`~agent.sources.map_study`), and the study's
record of what it learned from (:mod:`~agent.sources.experience`). The optimizer that carries the mapped data
is :mod:`agent.strategies.transfer`."""
