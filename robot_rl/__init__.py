"""robot_rl: train robot policies in simulation, export verified ONNX bundles, deploy them."""

__version__ = "0.1.0"
