"""The networks and their objectives: the VAE families (families), the seed's VAE (vae), its convolutions
(convgrad), the loss and the KL schedule (losses), latent operations (latent), where generated codes come from
(samplers), pixels as a network sees them (pixels), and the memory a run needs (memory)."""
