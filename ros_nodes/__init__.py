"""ROS 2 nodes (thin shells around ROS-free logic in ros_nodes/core); filled by the ROS 2 deployment issue."""
