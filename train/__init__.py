"""Training and evaluation of the SER model on RAVDESS (`python -m train --help`)."""
