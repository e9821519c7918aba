"""Asks a running TF Serving for the PCM's Pr(k|x) of PNG images or a .npy batch.

    python -m gmmgan_tf.serving_client --server=localhost:8500 --images=a.png,b.png   # gRPC
    python -m gmmgan_tf.serving_client --rest=http://localhost:8501 --images=batch.npy  # REST

uint8 images (PNGs, uint8 .npy) go to the `serving_uint8` signature, float ones (in [-1, 1])
to `serving_default`. The batch is checked here before sending (rank 4 NHWC, one shape,
1 or 3 channels, --image_shape when given; dtype and values by image_range.py, the rule the
export's graph applies too, which refuses [0, 1] floats); the server checks it against the
training size again and its message is printed as one line. Exports that serve a novelty score
get a `novelty` column, and NOVEL beside images above the calibrated threshold.
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from gmmgan_tf import image_range

FLOAT_SIGNATURE, UINT8_SIGNATURE = "serving_default", "serving_uint8"


class ClientError(Exception):
    """A bad request or a refused one: printed as one line."""


def load_images(paths: list[str]) -> np.ndarray:
    """PNGs (greyscale as [H, W, 1], colour as [H, W, 3]) stacked, or one .npy batch."""
    if len(paths) == 1 and paths[0].endswith(".npy"):
        return np.load(paths[0])
    from PIL import Image

    pictures = []
    for path in paths:
        try:
            pil = Image.open(path)
        except (OSError, ValueError) as e:
            raise ClientError(f"--images: cannot read {path!r} as an image ({e})") from None
        pil = pil.convert("L") if pil.mode in ("L", "LA", "I", "I;16", "1") else pil.convert("RGB")
        array = np.asarray(pil, np.uint8)
        pictures.append(array[..., None] if array.ndim == 2 else array)
    shapes = {p.shape for p in pictures}
    if len(shapes) > 1:
        raise ClientError(f"--images: the images have different shapes {sorted(shapes)}; send "
                          "images of the training size only")
    return np.stack(pictures)


def validate_images(images: np.ndarray, image_shape: tuple[int, int, int] | None = None
                    ) -> np.ndarray:
    """The batch as uint8 or float32 [N, H, W, C], or a ClientError naming the problem."""
    images = np.asarray(images)
    if images.ndim != 4:
        raise ClientError(f"images must have rank 4 [N, H, W, C] (NHWC); got shape "
                          f"{images.shape}")
    if image_shape is not None and images.shape[1:] != tuple(image_shape):
        h, w, c = image_shape
        what = "channel(s)" if images.shape[1:3] == (h, w) else "pixels"
        raise ClientError(f"images must be [N, {h}, {w}, {c}] (the training size); got "
                          f"{images.shape}: wrong {what}")
    if images.shape[-1] not in (1, 3):
        raise ClientError(f"images must have 1 or 3 channels (NHWC); got {images.shape[-1]}")
    problem = image_range.refusal(images)
    if problem:
        raise ClientError(problem)
    return images if images.dtype == np.uint8 else images.astype(np.float32)


def signature_for(images: np.ndarray) -> str:
    return UINT8_SIGNATURE if images.dtype == np.uint8 else FLOAT_SIGNATURE


def build_predict_request(images: np.ndarray, model_name: str = "gmmgan_pcm",
                          signature: str | None = None):
    """A tensorflow_serving PredictRequest with the batch as the `images` input."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature or signature_for(images)
    request.inputs["images"].CopyFrom(tf.make_tensor_proto(images))
    return request


def parse_predict_response(response) -> dict[str, np.ndarray]:
    import tensorflow as tf

    return {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}


def predict_grpc(server: str, images: np.ndarray, model_name: str = "gmmgan_pcm",
                 timeout: float = 30.0) -> dict[str, np.ndarray]:
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    with grpc.insecure_channel(server) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        try:
            response = stub.Predict(build_predict_request(images, model_name), timeout=timeout)
        except grpc.RpcError as e:
            raise ClientError(f"{server}: {e.code().name}: {_first_line(e.details())}") from None
    return parse_predict_response(response)


def rest_body(images: np.ndarray) -> dict:
    """The REST predict body in the columnar ("inputs") form."""
    return {"signature_name": signature_for(images), "inputs": {"images": images.tolist()}}


def predict_rest(url: str, images: np.ndarray, model_name: str = "gmmgan_pcm",
                 timeout: float = 30.0) -> dict[str, np.ndarray]:
    import requests

    endpoint = f"{url.rstrip('/')}/v1/models/{model_name}:predict"
    try:
        reply = requests.post(endpoint, data=json.dumps(rest_body(images)), timeout=timeout)
    except requests.RequestException as e:
        raise ClientError(f"{endpoint}: {e}") from None
    body = reply.json() if reply.content else {}
    if reply.status_code != 200 or "outputs" not in body:
        raise ClientError(f"{endpoint}: HTTP {reply.status_code}: "
                          f"{_first_line(str(body.get('error', reply.text)))}")
    return {name: np.asarray(value) for name, value in body["outputs"].items()}


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "(no message)"


def format_table(names: list[str], outputs: dict[str, np.ndarray]) -> str:
    """One row per image: component and Pr(k|x); with an export that serves novelty, also the
    score and NOVEL when it is above the threshold (which flags 5 % of the run's validation
    images, which it never trained on)."""
    probs = outputs["responsibilities"]
    served = "novelty" in outputs
    header = ("image\tcomponent\t" + ("novelty\tnovel\t" if served else "")
              + "\t".join(f"p{k}" for k in range(probs.shape[1])))
    rows = []
    for i, (name, c, row) in enumerate(zip(names, outputs["component"], probs)):
        cells = [name, str(int(c))]
        if served:
            cells += [f"{float(outputs['novelty'][i]):.3f}",
                      "NOVEL" if outputs["is_novel"][i] else "-"]
        rows.append("\t".join(cells + [f"{p:.3f}" for p in row]))
    lines = [header] + rows
    if served and len(probs):
        threshold = float(np.asarray(outputs["novelty_threshold"]).ravel()[0])
        lines.append(f"# novelty > {threshold:.3f} marks NOVEL (5 % of the validation images "
                     "are): the image may belong to none of the components")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--server", help="gRPC host:port of tensorflow_model_server (8500)")
    target.add_argument("--rest", help="REST base URL, e.g. http://localhost:8501")
    parser.add_argument("--images", required=True,
                        help="comma-separated PNG files, or one .npy batch [N, H, W, C]")
    parser.add_argument("--model", default="gmmgan_pcm", help="served model name")
    parser.add_argument("--image_shape", default="",
                        help="H,W,C the model was trained on, to check before sending")
    args = parser.parse_args(argv)
    try:
        shape = tuple(int(v) for v in args.image_shape.split(",")) if args.image_shape else None
        if shape is not None and len(shape) != 3:
            raise ClientError(f"--image_shape: want H,W,C; got {args.image_shape!r}")
        paths = [p for p in args.images.split(",") if p]
        images = validate_images(load_images(paths), shape)
        outputs = (predict_grpc(args.server, images, args.model) if args.server
                   else predict_rest(args.rest, images, args.model))
    except (ClientError, OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    names = paths if len(paths) == len(images) else [f"{paths[0]}[{i}]"
                                                      for i in range(len(images))]
    print(format_table(names, outputs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
