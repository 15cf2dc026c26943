"""Test support: fakes of the outside world that speak its real protocols."""
