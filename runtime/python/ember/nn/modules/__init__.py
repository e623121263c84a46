from .attention import MultiheadAttention
from .container import ModuleDict, ModuleList, Sequential
from .layers import (GELU, Dropout, Embedding, Identity, LayerNorm, Linear, ReLU, RMSNorm, Sigmoid, SiLU, Softmax,
                     Tanh)
from .module import Module
from .rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNBase, RNNCell, RNNCellBase

__all__ = ["Module", "Linear", "Embedding", "LayerNorm", "RMSNorm", "Dropout", "GELU", "ReLU", "SiLU", "Tanh",
           "Sigmoid", "Softmax", "Identity", "Sequential", "ModuleList", "ModuleDict", "MultiheadAttention",
           "RNNBase", "RNN", "LSTM", "GRU", "RNNCellBase", "RNNCell", "LSTMCell", "GRUCell"]
