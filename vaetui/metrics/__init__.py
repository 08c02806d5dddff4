"""How good a model is: likelihood and reconstruction, the protocol `vaetui eval` runs (likelihood),
disentanglement (disentangle), sample fidelity (fidelity), and the feature networks they measure in (features)."""
