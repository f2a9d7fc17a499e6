"""Numpy-only safety filter chain; filled by the ROS 2 deployment issue."""
