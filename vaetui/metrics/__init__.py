"""How good a model is: the evaluation protocol (evaluate), disentanglement (disentangle), sample fidelity
(fidelity), and the feature networks they measure in (features)."""
