"""Python-level parts of ember.Tensor (repr, conversions) attached to the C++ class."""
