"""An async LLM agent for hyperparameter optimization."""

__version__ = "0.1.0"
