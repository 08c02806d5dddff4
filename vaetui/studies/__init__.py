"""Studies on Optuna: the space and its storage (spec), the worker that trains trials (worker), what a study found
(results)."""
