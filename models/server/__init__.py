"""A LiteRT model server that speaks TensorFlow Serving's REST and gRPC APIs."""
