"""The run store: a run's folder (store, folder), its events and their log (events, logfile), the one fold of the log
(history, series), the runs list's numbers (summaries), and checkpoints (checkpoint)."""
