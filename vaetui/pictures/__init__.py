"""What the screens and their headless twins draw: figures (PIL), tensors to images and files (imaging), fitting a
picture to terminal cells (layout), matplotlib plots (plots)."""

# What a lockstep comparison shows (vaetui.pictures.lockstep), here so `vaetui --help` names them without torch.
LOCKSTEP_SHOWS = ("recon", "error", "samples", "interp")
