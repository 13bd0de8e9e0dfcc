"""What the model may call (the design card's top-level ``tools``): :mod:`tools.base` holds the one base class
and the kinds of call; each other module is one tool. Tools know the agent's vocabulary (spaces, records,
errors) but nothing that steers a study."""
