"""Transformer building blocks written once against the torch API and instantiated per backend
(`blocks(torch)` or `blocks(ember)`), so the PyTorch twin is the very same model definition."""
from __future__ import annotations

import functools
from types import SimpleNamespace


@functools.lru_cache(maxsize=None)
def blocks(lib) -> SimpleNamespace:
    nn, F = lib.nn, lib.nn.functional

    class SelfAttention(nn.Module):
        def __init__(self, dim: int, heads: int, causal: bool, dropout: float = 0.0):
            super().__init__()
            self.heads, self.causal, self.dropout = heads, causal, dropout
            self.qkv = nn.Linear(dim, 3 * dim)
            self.proj = nn.Linear(dim, dim)

        def forward(self, x):
            B, T, C = x.shape
            H = self.heads
            qkv = self.qkv(x).reshape(B, T, 3, H, C // H).permute(2, 0, 3, 1, 4)  # (3, B, H, T, D)
            q, k, v = qkv[0], qkv[1], qkv[2]
            p = self.dropout if self.training else 0.0  # attention-weight dropout (nanoGPT's attn_dropout)
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=self.causal)
            return self.proj(y.transpose(1, 2).reshape(B, T, C))

    class MLP(nn.Module):
        def __init__(self, dim: int, hidden: int):
            super().__init__()
            self.fc1 = nn.Linear(dim, hidden)
            self.act = nn.GELU()
            self.fc2 = nn.Linear(hidden, dim)

        def forward(self, x):
            return self.fc2(self.act(self.fc1(x)))

    class Block(nn.Module):
        """Pre-norm transformer block: x + attn(ln(x)), then x + mlp(ln(x))."""

        def __init__(self, dim: int, heads: int, causal: bool, mlp_ratio: int = 4, dropout: float = 0.0):
            super().__init__()
            self.ln1 = nn.LayerNorm(dim)
            self.attn = SelfAttention(dim, heads, causal, dropout)
            self.ln2 = nn.LayerNorm(dim)
            self.mlp = MLP(dim, mlp_ratio * dim)
            self.drop = nn.Dropout(dropout)  # residual dropout; 0 keeps the twins identical

        def forward(self, x):
            x = x + self.drop(self.attn(self.ln1(x)))
            return x + self.drop(self.mlp(self.ln2(x)))

    class Encoder(nn.Module):
        def __init__(self, dim: int, heads: int, layers: int, causal: bool, dropout: float = 0.0):
            super().__init__()
            self.blocks = nn.ModuleList([Block(dim, heads, causal, dropout=dropout) for _ in range(layers)])
            self.ln_f = nn.LayerNorm(dim)
            self.drop = nn.Dropout(dropout)  # on the embeddings, as nanoGPT

        def forward(self, x):
            x = self.drop(x)
            for blk in self.blocks:
                x = blk(x)
            return self.ln_f(x)

    return SimpleNamespace(SelfAttention=SelfAttention, MLP=MLP, Block=Block, Encoder=Encoder)
