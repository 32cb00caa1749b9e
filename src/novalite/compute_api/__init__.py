"""The Compute (Nova) API under /compute."""
