"""The training loop (`trainer`) and its spread over several processes (`distributed`)."""
