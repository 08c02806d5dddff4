"""Training: the loop (engine), its state on disk (state), what it is built from (setup), validation and previews
(observe), intents from other threads and processes (control), torchrun glue (distributed), the child process
(process)."""
