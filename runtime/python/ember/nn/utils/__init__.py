from . import clip_grad, convert_parameters, parametrizations, parametrize, rnn, spectral_norm, weight_norm
from .clip_grad import clip_grad_norm_, clip_grad_value_
from .convert_parameters import parameters_to_vector, vector_to_parameters
from .spectral_norm import remove_spectral_norm, spectral_norm  # noqa: F811
from .weight_norm import remove_weight_norm, weight_norm  # noqa: F811

__all__ = ["rnn", "clip_grad", "clip_grad_norm_", "clip_grad_value_", "parameters_to_vector", "vector_to_parameters",
           "weight_norm", "remove_weight_norm", "spectral_norm", "remove_spectral_norm", "parametrize",
           "parametrizations", "convert_parameters"]
