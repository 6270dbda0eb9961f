"""The serving contract every model, server and client here shares: TF-Serving's default signature
taking uint8 RGB images [N, 224, 224, 3] and answering softmax probabilities [N, 1000] in
ImageNet-1k order. Changing a value here changes the export, the model server and the gateway."""

from __future__ import annotations

SIGNATURE = "serving_default"
INPUT_NAME = "images"
INPUT_DTYPE = "uint8"  # numpy, Keras and TensorFlow all accept this spelling
OUTPUT_NAME = "probabilities"
OUTPUT_DTYPE = "float32"
IMAGE_SIZE = 224  # input height and width
NUM_CLASSES = 1000
