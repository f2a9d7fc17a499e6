"""Simulation environments (MuJoCo and PyBullet robot tasks); filled by the simulation issue."""
