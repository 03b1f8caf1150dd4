"""The networks (`networks`: generator and critic, SPEC sections 4-5) and the losses (`losses`:
WGAN-GP and the audio reconstruction loss)."""
