"""The networks and their objective: the seed's VAE (vae), its convolutions (convgrad), losses, latent operations,
and the memory a run will need (memory)."""
