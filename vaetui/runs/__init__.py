"""The run store: a run's folder (store, folder), its events and their log (events, logfile), the one fold of the
log (history, series), its status (status), the runs list's numbers (summaries), checkpoints and loading a run's
model (checkpoint)."""
