"""A plain nn.Module that follows the protocol gets every default of LatentModel, and keeps what it defines itself."""

from __future__ import annotations

import torch
from torch import nn

from vaetui.models.protocol import LatentModel
from vaetui.models.user import protocol_class


class Plain(nn.Module):
    latent = 2
    image_size = (4, 4)

    def __init__(self):
        super().__init__()
        self.enc = nn.Linear(48, 4)
        self.dec = nn.Linear(2, 48)

    def encode(self, x):
        mu, logvar = self.enc(x.flatten(1)).chunk(2, 1)
        return mu, logvar

    def decode_logits(self, z):
        return self.dec(z).view(-1, 3, 4, 4)

    def kl(self, mu, logvar, z=None):  # its own: kept
        return torch.full((mu.shape[0],), 7.0)

    def forward(self, x):  # a plain module's own contract: not what vaetui calls
        raise AssertionError("not the protocol")


def test_a_plain_module_gets_every_default_and_keeps_its_own():
    cls = protocol_class(Plain, "plain.py:Plain")
    model = cls()
    names = [k for k in LatentModel.__dict__ if not k.startswith("__") and k not in ("encode", "decode_logits")]
    assert {"aux", "aux_loss", "main_parameters", "prior_sample"} <= set(names)
    for k in names:
        assert hasattr(model, k), k
    assert model.kl(torch.zeros(3, 2), torch.zeros(3, 2)).tolist() == [7.0, 7.0, 7.0]
    out = model(torch.rand(3, 3, 4, 4))  # the protocol's forward
    assert out.mu.shape == (3, 2) and out.logits.shape == (3, 3, 4, 4)
    assert model.aux() is None and len(model.main_parameters()) == 4
