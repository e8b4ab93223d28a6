"""`bastion-run`: protection with no code change (see run.py and sitecustomize.py)."""
