"""ember.autograd."""
