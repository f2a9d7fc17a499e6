"""Human-in-the-loop learning over ROS 2: the learner side and the messages it shares with the robot."""
