"""Ember harness: drives an LLM agent to verified changes of `runtime/`."""

__version__ = "0.1.0"
