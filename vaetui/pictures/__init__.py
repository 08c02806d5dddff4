"""What the screens and their headless twins draw: figures (PIL), tensors to images and files (imaging), fitting a
picture to terminal cells (layout), matplotlib plots (plots)."""
