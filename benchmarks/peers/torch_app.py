"""The peer a user would copy: FastAPI + torch MobileNetV3-Large, served by gunicorn with uvicorn workers.

Written the way the published PyTorch/FastAPI serving references do it: an ``UploadFile``, PIL,
torchvision's classification transforms (Resize 256, CenterCrop 224, ToTensor, Normalize), the
model in eval mode under ``torch.no_grad()``, softmax and top-5 with labels. torchvision cannot be
imported with the CPU torch wheel (see mobilenet_v3.py), so its four transforms are written out
with PIL and torch exactly as torchvision applies them to a PIL image. Random weights.

    gunicorn benchmarks.peers.torch_app:app -w 2 -k uvicorn_worker.UvicornWorker
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import torch
from fastapi import FastAPI, UploadFile
from PIL import Image

from benchmarks.peers.mobilenet_v3 import MobileNetV3Large

LABELS = json.loads((Path(__file__).resolve().parents[2] / "gateway" / "data" / "imagenet1k_labels.json").read_text())
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)

model = MobileNetV3Large().eval()
app = FastAPI()


def transform(image: Image.Image, resize: int = 256, crop: int = 224) -> torch.Tensor:
    width, height = image.size
    scale = resize / min(width, height)  # transforms.Resize(256): the shorter side to 256, bilinear
    image = image.resize((round(width * scale), round(height * scale)), Image.Resampling.BILINEAR)
    left, top = round((image.width - crop) / 2), round((image.height - crop) / 2)  # transforms.CenterCrop(224)
    image = image.crop((left, top, left + crop, top + crop))
    tensor = torch.from_numpy(np.array(image)).permute(2, 0, 1).float().div(255)  # transforms.ToTensor()
    return (tensor - MEAN) / STD  # transforms.Normalize(ImageNet mean, std)


@app.post("/classify")
async def classify(file: UploadFile) -> dict:
    image = Image.open(io.BytesIO(await file.read())).convert("RGB")
    batch = transform(image).unsqueeze(0)
    with torch.no_grad():
        probabilities = torch.softmax(model(batch)[0], dim=0)
    scores, indices = torch.topk(probabilities, 5)
    return {
        "predictions": [
            {"label": LABELS[i], "index": i, "score": s} for s, i in zip(scores.tolist(), indices.tolist(), strict=True)
        ]
    }
