"""What the gateway and the model server share: TF-Serving's wire protocol and tensor encoding."""
