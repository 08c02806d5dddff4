"""Files on disk: atomic writes and the cache folder (files), locks with their holder and heartbeat (locks)."""
